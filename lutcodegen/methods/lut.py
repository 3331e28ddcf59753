"""Method ``lut`` (the default): exp lookup table, exact integer sum, divider-free reciprocal.

Algorithm, per row of int8 logits ``x`` (all integer):

1. ``m = max(x)``; ``d_i = m - x_i`` in [0, 255].
2. ``t_i = T[d_i]`` where ``T[d] = round(top * exp(-s * d))``, 0 where that rounds to 0. The
   ``full`` layout stores all 256 entries (zeros included) so the lookup needs no bounds check;
   ``compact`` stores only the nonzero prefix and checks the index. ``T[0] = top`` exactly.
3. ``S = sum t_i`` in a W-bit unsigned integer (W = 32 or 64).
4. ``k = normalize_shift(S)``; ``R = round(2^(W+P) / (S << k))``, computed exactly without a divide
   (Newton steps and a correction loop, or shift-and-subtract on cores without a 64-bit product).
   Then ``R ~= 2^(n+P) / S`` with ``n = W - k`` the bit length of S: R keeps P + 1 significant
   bits whatever the row, so small outputs of long rows stay as precise as large ones.
5. ``y_i = min((t_i * R + 2^(h-1)) >> h, 2^B - 1)`` with ``h = n + P - B``;
   output ``y_i - 2^(B-1)``. Only the row maximum can reach 2^B, so when
   ``(top * R + 2^(h-1)) >> h < 2^B`` the C skips the clamp for the whole row (same bits).

Error bound (in output LSB, before the final rounding). Let ``e_i = top * exp(-s * d_i)`` be the
exact values, so ``p_i = e_i / sum e``; the table gives ``|t_i - e_i| <= 1/2`` (entries that round
to 0 have ``e_i < 1/2``) and ``t_max = e_max = top``. Then

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
checked for the largest ``n`` when the design is made, as is ``h < Wp`` (a shift by the full
width is undefined in C); ``h >= 1`` since ``P >= B``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..fixedpoint import normalize_shift, reciprocal, round_half_up
from ..spec import Spec, SpecError


@dataclass(frozen=True)
class LutDesign:
    """Every constant and table the C and the reference share for one ``lut`` spec."""

    spec: Spec
    exp_table: np.ndarray  #: T[d], d = 0 .. len-1 (256 for ``full``); dtype uint16 or uint32
    nonzero: int  #: entries of T that are nonzero (T[d] = 0 for d >= nonzero)
    entry_bits: int  #: 16 or 32: storage width of the table
    top: int  #: T[0], the integer weight of the row maximum
    sum_bits: int  #: W: width of the row sum (32 or 64)
    product_bits: int  #: Wp: width of t * R (32 or 64)
    precision: int  #: P: the reciprocal has P+1 significant bits
    error_bound: float  #: eps above, in output LSB; < 1 proves the 1-LSB guarantee
    unroll: int  #: elements per loop iteration in the C (no effect on the outputs)

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


#: Elements per loop iteration of the portable loops unless the spec says otherwise. Eight keep
#: RV32IMAC under 20 instructions per element at L = 256 (four give about 20.4); cores with the
#: Arm DSP extension use SIMD32 loops instead, so this costs code only on the others.
DEFAULT_UNROLL = 8

#: Storage options from cheapest to dearest: (entry bits, sum bits, product bits).
_CANDIDATES = ((16, 32, 32), (32, 32, 32), (32, 32, 64), (32, 64, 64))


def _bound(spec: Spec, top: int, product_bits: int) -> tuple[int, float] | None:
    """(P, eps) for weight ``top`` with products of ``product_bits``, or None if nothing fits.

    P is the largest precision whose products fit, capped at B + 8 (reciprocal error below 1/512
    LSB; more would only lengthen the per-row division loop).
    """
    L, B = spec.max_row, spec.bits
    n_max = (L * top).bit_length()
    precision = 0
    for p in range(B, B + 9):
        worst = top * (1 << (p + 1)) + (1 << (n_max + p - B - 1))
        largest_shift = n_max + p - B
        if worst > (1 << product_bits) - 1 or p + 2 > product_bits:
            break
        if largest_shift >= product_bits:  # a shift by the full width is undefined in C
            break
        precision = p
    if precision < B:
        return None
    return precision, (1 << B) * (L / (2 * top) + 2.0 ** -(precision + 1))


def _try_candidate(
    spec: Spec, entry_bits: int, sum_bits: int, product_bits: int, limit: float = 1.0
) -> LutDesign | None:
    """The most accurate design with this storage, if any proves the 1-LSB bound.

    A smaller ``top`` loosens the table's share of the bound but lets the products keep more
    reciprocal bits; the weights tried are the largest that fits and its halvings.
    """
    L = spec.max_row
    largest = min((1 << entry_bits) - 1, ((1 << sum_bits) - 1) // L)
    best: tuple[float, int, int] | None = None
    for k in range(0, 25):
        top = largest >> k
        if top < 1:
            break
        found = _bound(spec, top, product_bits)
        if found is not None and found[1] < limit and (best is None or found[1] < best[0]):
            best = (found[1], top, found[0])
    if best is None:
        return None
    eps, top, precision = best
    d = np.arange(256, dtype=np.float64)
    values = round_half_up(top * np.exp(-spec.scale * d))
    nonzero = int(np.count_nonzero(values))  # exp is decreasing, so the nonzeros are a prefix
    length = 256 if spec.table_layout == "full" else nonzero
    dtype = np.uint16 if entry_bits == 16 else np.uint32
    table = values[:length].astype(dtype)
    if int(table[0]) != top:
        raise AssertionError("T[0] must equal top")
    unroll = DEFAULT_UNROLL if spec.unroll is None else spec.unroll
    return LutDesign(
        spec, table, nonzero, entry_bits, top, sum_bits, product_bits, precision, eps, unroll
    )


#: A cheaper storage is taken only if its bound leaves this much margin below 1 LSB: a bound
#: near 1 still proves the guarantee, but measurably fewer outputs equal correct rounding
#: (99.93 % at max_row 2048 with 32-bit products, against 99.998 % with 64-bit ones).
COMFORTABLE_BOUND = 0.6


def design(spec: Spec) -> LutDesign:
    """The cheapest storage whose error bound proves <= 1 LSB for every row up to max_row,
    preferring one with a comfortable margin."""
    for limit in (COMFORTABLE_BOUND, 1.0):
        for candidate in _CANDIDATES:
            found = _try_candidate(spec, *candidate, limit=limit)
            if found is not None:
                return found
    raise SpecError(
        f"no table layout proves 1-LSB accuracy for bits={spec.bits} and max_row={spec.max_row}; "
        f"bits={spec.bits} supports max_row up to {_longest_supported_row(spec)}"
    )


def _longest_supported_row(spec: Spec) -> int:
    """Binary search for the largest max_row that has a design (feasibility is monotone)."""
    lo, hi = 1, spec.max_row
    while lo + 1 < hi:
        mid = (lo + hi) // 2
        trial = replace(spec, max_row=mid)
        if any(_try_candidate(trial, *c) is not None for c in _CANDIDATES):
            lo = mid
        else:
            hi = mid
    return lo


def reference(dsg: LutDesign, x: np.ndarray) -> np.ndarray:
    """Bit-exact model of the generated C: int8 rows (..., L) in, outputs (int64) out."""
    spec = dsg.spec
    x = np.asarray(x)
    if x.shape[-1] < 1 or x.shape[-1] > spec.max_row:
        raise ValueError(f"row length {x.shape[-1]} outside 1..{spec.max_row}")
    rows = x.reshape(-1, x.shape[-1]).astype(np.int64)
    table = np.zeros(257, dtype=np.uint64)
    table[: len(dsg.exp_table)] = dsg.exp_table
    t = table[rows.max(axis=1, keepdims=True) - rows]
    sums = t.sum(axis=1, dtype=np.uint64)
    B, P, W = spec.bits, dsg.precision, dsg.sum_bits
    recips = np.empty((rows.shape[0], 1), dtype=np.uint64)
    shifts = np.empty((rows.shape[0], 1), dtype=np.uint64)
    for r, s in enumerate(sums.tolist()):
        k = normalize_shift(s, W)
        recip = reciprocal(s << k, W, P)
        h = W - k + P - B
        if dsg.top * recip + (1 << (h - 1)) >= 1 << dsg.product_bits or h >= dsg.product_bits:
            raise AssertionError("overflow proof violated")  # cannot happen; see module doc
        recips[r, 0], shifts[r, 0] = recip, h
    y = (t * recips + (np.uint64(1) << (shifts - np.uint64(1)))) >> shifts
    y = np.minimum(y, np.uint64((1 << B) - 1)).astype(np.int64) - (1 << (B - 1))
    result: np.ndarray = y.reshape(x.shape)
    return result


def describe(dsg: LutDesign) -> list[str]:
    """Human-readable facts about the design, for the banner and for stderr."""
    spec = dsg.spec
    return [
        f"exp table ({spec.table_layout}): {len(dsg.exp_table)} x uint{dsg.entry_bits}_t = "
        f"{dsg.table_bytes} bytes, T[d] = round({dsg.top} * exp(-{spec.scale!r} * d))",
        f"row sum: uint{dsg.sum_bits}_t; products: uint{dsg.product_bits}_t; reciprocal: "
        f"{dsg.precision + 1} bits, "
        + (
            "Newton's method or shift-and-subtract by target, no divide"
            if dsg.sum_bits == 32
            else "shift-and-subtract, no divide"
        ),
        f"portable loops unrolled x{dsg.unroll}; Arm DSP cores use SIMD32 loops instead"
        + (", Helium cores vector loops" if has_mve_path(dsg) else ""),
        "accuracy: every output within 1 LSB of correctly rounded softmax for rows of",
        f"1..{spec.max_row} elements (proven error before rounding < {dsg.error_bound:.3f} LSB)",
    ]


def template_context(dsg: LutDesign) -> dict[str, object]:
    """Numbers the ``lut.c.j2`` template prints (templates do no arithmetic)."""
    spec = dsg.spec
    suffix = "u" if dsg.sum_bits == 32 else "ull"
    n_max = (spec.max_row * dsg.top).bit_length()
    return {
        "entry_ctype": f"uint{dsg.entry_bits}_t",
        "sum_ctype": f"uint{dsg.sum_bits}_t",
        "product_ctype": f"uint{dsg.product_bits}_t",
        "hex_sum": lambda v: f"0x{v:0{dsg.sum_bits // 4}x}{suffix}",
        "max_half_log2": n_max + dsg.precision - spec.bits - 1,
        "newton_steps": newton_steps(dsg.precision),
        "mve": has_mve_path(dsg),
        "sum_msb": dsg.sum_bits - 1,
        "recip_bits": dsg.precision + 1,
        "nonzero_last": dsg.nonzero - 1,
        # the zero point subtracted from each byte of a word of four outputs (SIMD32 path)
        "zero_point_bytes": "0x" + f"{1 << (spec.bits - 1):02x}" * 4 + "u",
    }


def has_mve_path(dsg: LutDesign) -> bool:
    """Whether the C gets a Helium (MVE) path: its gather loads read 16-bit entries of the full
    table, its lanes hold 32-bit sums and products, and its byte store needs int8 output."""
    spec = dsg.spec
    return (
        dsg.entry_bits == 16
        and dsg.sum_bits == 32
        and dsg.product_bits == 32
        and spec.bits <= 8
        and spec.table_layout == "full"
    )


def newton_steps(precision: int) -> int:
    """Newton steps for a P-bit reciprocal in the C: the seed's relative error is at most 1/17
    and each step squares it, so two leave about 2^-16.3 and three reach the 2^-29 that 32-bit
    fixed point allows. Enough steps keep the exact correction loop after them to at most one
    step (measured for every denominator at P = 2 .. 24); its result does not depend on the
    count."""
    if not 0 <= precision <= 28:
        raise ValueError(f"precision {precision} outside 0..28")
    return 2 if precision + 2 <= 16 else 3
