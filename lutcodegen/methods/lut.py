"""Method ``lut`` (the default): exp lookup table, exact integer sum, divider-free reciprocal.

Algorithm, per row of int8 logits ``x`` (all integer):

1. ``m = max(x)``; ``d_i = m - x_i`` in [0, 255].
2. ``t_i = T[d_i]`` where ``T[d] = round(top * exp(-s * d))`` (``T[d] = 0`` past the table end,
   i.e. where the rounded value is 0). ``T[0] = top`` exactly.
3. ``S = sum t_i`` in a W-bit unsigned integer (W = 32 or 64).
4. ``k = normalize_shift(S)``; ``R = round(2^(W+P) / (S << k))``, computed bit by bit (no divide).
   Then ``R ~= 2^(n+P) / S`` with ``n = W - k`` the bit length of S.
5. ``y_i = min((t_i * R + 2^(h-1)) >> h, 2^B - 1)`` with ``h = n + P - B``;
   output ``y_i - 2^(B-1)``.

Error bound (in output LSB, before the final rounding). Let ``e_i = top * exp(-s d_i)`` be the
exact values, so ``p_i = e_i / sum e``; the table gives ``|t_i - e_i| <= 1/2`` (entries past the
end have ``e_i < 1/2``) and ``t_max = e_max = top``. Then

    |t_i/S - p_i| <= (|t_i - e_i| sum e + e_i |S - sum e|) / (S sum e) <= L / (2 top)

because ``S >= top`` and ``p_i <= 1``. The reciprocal is off by at most 1/2, which moves
``t_i R / 2^h`` by at most ``t_i / 2^(h+1) < 2^(B-P-1)`` LSB. Hence the value that is rounded
differs from the exact ``2^B p_i`` by less than ``eps = 2^B (L / (2 top) + 2^-(P+1))``.
Rounding is monotone and commutes with adding 1, so ``eps < 1`` proves every output within 1 LSB
of the correctly rounded softmax, for every row up to ``max_row``. The generator picks the
cheapest storage for which that proof holds.

Overflow proof: ``S <= L * top <= 2^W - 1`` by the choice of ``top``; ``R <= 2^(P+1)`` (and the
unrounded quotient, ``<= 2^(P+2)``, fits the product width);
``t_i * R + 2^(h-1) <= top * 2^(P+1) + 2^(n_max + P - B - 1) <= 2^Wp - 1`` (Wp: product width) is
checked for the largest ``n`` when the design is made; ``h >= 1`` since ``P >= B``, and
``h < Wp`` is required too (C leaves a shift by the full width undefined).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fixedpoint import normalize_shift, reciprocal, round_half_up
from ..spec import Spec, SpecError


@dataclass(frozen=True)
class LutDesign:
    """Every constant and table the C and the reference share for one ``lut`` spec."""

    spec: Spec
    exp_table: np.ndarray  #: T[d] for d = 0 .. len-1, all > 0; dtype uint16 or uint32
    entry_bits: int  #: 16 or 32: storage width of the table
    top: int  #: T[0], the integer weight of the row maximum
    sum_bits: int  #: W: width of the row sum (32 or 64)
    product_bits: int  #: Wp: width of t * R (32 or 64)
    precision: int  #: P: the reciprocal has P+1 significant bits
    error_bound: float  #: eps above, in output LSB; < 1 proves the 1-LSB guarantee

    @property
    def table_bytes(self) -> int:
        return int(self.exp_table.nbytes)

    def normalize_steps(self) -> list[tuple[int, int]]:
        """(threshold, shift) pairs of the C binary search for the normalizing shift."""
        steps = []
        step = self.sum_bits // 2
        while step >= 1:
            steps.append((1 << (self.sum_bits - step), step))
            step //= 2
        return steps


#: Storage options from cheapest to dearest: (entry bits, sum bits, product bits).
_CANDIDATES = ((16, 32, 32), (32, 32, 32), (32, 32, 64), (32, 64, 64))


def _try_candidate(
    spec: Spec, entry_bits: int, sum_bits: int, product_bits: int
) -> LutDesign | None:
    L, B = spec.max_row, spec.bits
    top = min((1 << entry_bits) - 1, ((1 << sum_bits) - 1) // L)
    if top < 1:
        return None
    # P = B + 6 keeps the reciprocal's share of the error below 1/128 LSB.
    precision = B + 6
    n_max = (L * top).bit_length()
    worst = top * (1 << (precision + 1)) + (1 << (n_max + precision - B - 1))
    if worst > (1 << product_bits) - 1:
        return None
    if n_max + precision - B >= product_bits:
        return None  # C leaves a shift by the operand's full width undefined
    eps = (1 << B) * (L / (2 * top) + 2.0 ** -(precision + 1))
    if eps >= 1:
        return None
    d = np.arange(256, dtype=np.float64)
    values = round_half_up(top * np.exp(-spec.scale * d))
    length = int(np.count_nonzero(values))  # exp is decreasing, so the nonzeros are a prefix
    dtype = np.uint16 if entry_bits == 16 else np.uint32
    table = values[:length].astype(dtype)
    if int(table[0]) != top:
        raise AssertionError("T[0] must equal top")
    return LutDesign(spec, table, entry_bits, top, sum_bits, product_bits, precision, eps)


def design(spec: Spec) -> LutDesign:
    """The cheapest storage whose error bound proves <= 1 LSB for every row up to max_row."""
    for candidate in _CANDIDATES:
        found = _try_candidate(spec, *candidate)
        if found is not None:
            return found
    raise SpecError(
        f"no table layout proves 1-LSB accuracy for bits={spec.bits} and max_row={spec.max_row}; "
        "lower --max-row"
    )


def reference(dsg: LutDesign, x: np.ndarray) -> np.ndarray:
    """Bit-exact model of the generated C: int8 rows (..., L) in, outputs (int64) out."""
    spec = dsg.spec
    x = np.asarray(x)
    if x.shape[-1] < 1 or x.shape[-1] > spec.max_row:
        raise ValueError(f"row length {x.shape[-1]} outside 1..{spec.max_row}")
    rows = x.reshape(-1, x.shape[-1]).astype(np.int64)
    table = np.append(dsg.exp_table.astype(np.uint64), np.uint64(0))
    d = rows.max(axis=1, keepdims=True) - rows
    t = table[np.minimum(d, len(table) - 1)]
    sums = t.sum(axis=1, dtype=np.uint64)
    B, P, W = spec.bits, dsg.precision, dsg.sum_bits
    recips = np.empty((rows.shape[0], 1), dtype=np.uint64)
    shifts = np.empty((rows.shape[0], 1), dtype=np.uint64)
    for r, s in enumerate(sums.tolist()):
        k = normalize_shift(s, W)
        recip = reciprocal(s << k, W, P)
        h = W - k + P - B
        if int(t[r].max()) * recip + (1 << (h - 1)) >= 1 << dsg.product_bits:
            raise AssertionError("overflow proof violated")  # cannot happen; see module doc
        if h >= dsg.product_bits:
            raise AssertionError("shift by the full width")  # undefined in C; see design()
        recips[r, 0], shifts[r, 0] = recip, h
    y = (t * recips + (np.uint64(1) << (shifts - np.uint64(1)))) >> shifts
    y = np.minimum(y, np.uint64((1 << B) - 1)).astype(np.int64) - (1 << (B - 1))
    return y.reshape(x.shape)


def describe(dsg: LutDesign) -> list[str]:
    """Human-readable facts about the design, for the banner and for stderr."""
    spec = dsg.spec
    return [
        f"exp table: {len(dsg.exp_table)} x uint{dsg.entry_bits}_t = {dsg.table_bytes} bytes, "
        f"T[d] = round({dsg.top} * exp(-{spec.scale!r} * d))",
        f"row sum: uint{dsg.sum_bits}_t; reciprocal: {dsg.precision + 1} bits, "
        f"{dsg.precision + 1} shift-subtract steps per row; products: uint{dsg.product_bits}_t",
        "accuracy: every output within 1 LSB of correctly rounded softmax for rows of",
        f"1..{spec.max_row} elements (proven error before rounding < {dsg.error_bound:.3f} LSB)",
    ]

