"""Method ``lut`` with int16 input: two-level exp table, exact integer sum, divider-free reciprocal.

Output is TFLite's int16 softmax convention: ``q = min(round(32768 p), 32767)``, zero point 0.
Algorithm, per row of int16 logits ``x`` (all integer; s = beta * input_scale):

1. ``m = max(x)``; ``d_i = m - x_i`` in [0, 65535], split as ``d = 256 h + l``.
2. ``w_i = floor(E_hi[h] * E_lo[l] / 2^32)``, the high word of a 32 x 32 -> 64-bit product (one
   instruction on Cortex-M3 and up and on RV32M), with ``E_lo[l] = min(round(2^32 exp(-s l)),
   2^32 - 1)`` and ``E_hi[h] = round(A exp(-256 s h))``, ``A = 2^30 - 1``. So ``w_i ~= top
   exp(-s d_i)`` with ``top = w(0) = A - 1``. Both tables have 256 ``uint32_t`` entries, kept
   as one table, E_hi first (so that on Arm the two lookups share a base register).
   ``compact`` stores only the nonzero prefix of ``E_hi`` and checks the index.
3. ``S = sum w_i``, exactly, in 64 bits.
4. ``j = max(0, bitlen(S) - 32)``, ``S' = S >> j`` (32 bits); ``k = normalize_shift(S')``;
   ``R = round(2^(32+P) / (S' << k))``, by Newton's method (cores with a 64-bit product) or by
   shift-and-subtract, exactly, no divide. With ``n = 32 - k + j`` the bit length of S,
   ``R ~= 2^(n+P) / S``.
5. ``y_i = min((w_i * R + 2^(g-1)) >> g, 32767)`` with ``g = n + P - 15`` in [33, 63] for every
   row: the high word of ``w_i * R``, plus ``2^(g-33)``, shifted by ``g - 32``. Only a row maximum
   can reach 32768 (every other element has ``p <= 1/2``) and ``w`` is largest there, so a row
   whose maximum stays below it skips the clamp.

Error bound, in output LSB (2^-15) before the final rounding. Let ``e_i = top exp(-s d_i)`` and
``p_i = e_i / sum e``. The design computes ``alpha = max |w(d) - top exp(-s d)|`` over all 65536
differences (exhaustively, plus 2^-16 for the float64 evaluation of exp, whose error is below
2^-20 here; about 1.5, from the floor and E_hi's rounding). Every row's maximum has ``w = e =
top`` exactly, so ``|S - sum e| <= (L-1) alpha`` and ``S >= top``; an element that is not a
maximum has ``p_i <= 1/2``. Hence for every element

    |w_i / S - p_i| <= (|w_i - e_i| sum e + e_i |S - sum e|) / (S sum e) <= alpha L / top.

Dropping ``j`` low bits of S changes ``1/S`` by a factor within ``1 + 2^-31``, which moves an
output (at most 2^15) by less than 2^-16. The reciprocal is off by at most 1/2, which moves
``w_i R / 2^g`` by at most ``w_i 2^-(g+1) < 2^(15-P-1)`` (``w_i <= S < 2^n``). So the value that is
rounded differs from the exact ``32768 p_i`` by less than

    eps = 2^15 (alpha L / top + 2^-31) + 2^(14-P),

and since rounding and the clamp at 32767 are monotone and move by at most one step, ``eps < 1``
proves every output within 1 LSB of ``min(round(32768 p), 32767)`` for every row of every length
up to ``max_row`` (``top ~= 2^30``: rows up to about 20,000 elements).

Overflow proof: ``E_hi * E_lo <= (2^30 - 1)(2^32 - 1) < 2^62``; ``w <= top < 2^30`` (both tables
decrease from their first entry), so four weights add up in 32 bits and ``S <= L top < 2^50``
for ``L <= 2^20``; ``R <= 2^(P+1)`` (the restoring division's unhalved quotient, ``<= 2^(P+2)``,
fits 32 bits for ``P <= 29``), so ``w R < 2^(31+P)`` and ``w R + 2^(g-1) < 2^64``; the shifts
``j``, ``k`` and ``g - 32`` stay below 32 (checked when the design is made). Differences are
formed in int32 (``m - x <= 65535``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..fixedpoint import normalize_shift, reciprocal, round_half_up
from ..spec import Spec, SpecError
from .lut import newton_steps

#: Output precision F: the output scale is 2^-15 (TFLite's 1/32768) and the largest code 32767.
OUT_BITS = 15
QMAX = (1 << OUT_BITS) - 1

#: E_hi[0]: the largest 30-bit value, so that a weight is below 2^30 and four add up in 32 bits.
HI_SCALE = (1 << 30) - 1

#: Margin added to the measured table error for the float64 evaluation of the exact exp.
EXACT_MARGIN = 2.0**-16

#: Reciprocal precision: 2^(14-P) = 2^-10 LSB; the Newton path is checked up to P = 24.
PRECISION = 24


@dataclass(frozen=True)
class LutS16Design:
    """Every constant and table the C and the reference share for one int16 ``lut`` spec."""

    spec: Spec
    hi_table: np.ndarray  #: E_hi[h], uint32; 256 entries (``full``) or its nonzero prefix
    lo_table: np.ndarray  #: E_lo[l], uint32, 256 entries
    hi_nonzero: int  #: entries of E_hi that are nonzero
    top: int  #: w at d = 0, the integer weight of the row maximum
    precision: int  #: P: the reciprocal has P+1 significant bits
    table_error: float  #: alpha: max |w(d) - top exp(-s d)| over all d, with its margin
    error_bound: float  #: eps, in output LSB; < 1 proves the 1-LSB guarantee

    @property
    def table_bytes(self) -> int:
        return int(self.hi_table.nbytes + self.lo_table.nbytes)

    @property
    def exp_table(self) -> np.ndarray:
        """The one table the C keeps: E_hi at h, then E_lo at len(E_hi) + l."""
        return np.concatenate([self.hi_table, self.lo_table])

    @property
    def max_sum_bits(self) -> int:
        """Bit length of the largest possible row sum, ``max_row * top``."""
        return (self.spec.max_row * self.top).bit_length()

    def normalize_steps(self) -> list[tuple[int, int]]:
        """(threshold, shift) pairs of the C binary search for the normalizing shift."""
        return [(1 << (32 - step), step) for step in (16, 8, 4, 2, 1)]


def _tables(scale: float) -> tuple[np.ndarray, np.ndarray]:
    """(E_hi, E_lo): 256 entries each, unsigned 32-bit values."""
    k = np.arange(256, dtype=np.float64)
    lo = np.minimum(round_half_up(2.0**32 * np.exp(-scale * k)), 2.0**32 - 1)
    hi = round_half_up(HI_SCALE * np.exp(-scale * 256.0 * k))
    return hi.astype(np.uint64), lo.astype(np.uint64)


def weights(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """w = floor(E_hi[h] * E_lo[l] / 2^32) for every difference d = 256 h + l (index d)."""
    full_hi = np.zeros(256, dtype=np.uint64)
    full_hi[: len(hi)] = hi
    high: np.ndarray = ((full_hi[:, None] * lo[None, :]) >> np.uint64(32)).reshape(-1)
    return high


def table_error(scale: float) -> tuple[int, float]:
    """(top, alpha): the row maximum's weight and max |w(d) - top exp(-s d)| over all 65536
    differences, plus the margin."""
    hi, lo = _tables(scale)
    w = weights(hi, lo)
    top = int(w[0])
    exact = top * np.exp(-scale * np.arange(65536, dtype=np.float64))
    return top, float(np.abs(w.astype(np.float64) - exact).max()) + EXACT_MARGIN


def _bound(spec: Spec, top: int, alpha: float) -> float | None:
    """eps for ``max_row``, or None if a shift would leave its range."""
    L, P = spec.max_row, PRECISION
    n_min, n_max = top.bit_length(), (L * top).bit_length()
    if n_min + P - OUT_BITS < 33 or n_max + P - OUT_BITS > 63 or n_max > 64:
        return None
    return (1 << OUT_BITS) * (alpha * L / top + 2.0**-31) + 2.0 ** (OUT_BITS - 1 - P)


def design(spec: Spec) -> LutS16Design:
    """The tables, and the bound that proves <= 1 LSB for every row up to max_row."""
    top, alpha = table_error(spec.scale)
    eps = _bound(spec, top, alpha)
    if eps is None or eps >= 1:
        raise SpecError(
            f"no int16 lut design proves 1-LSB accuracy for max_row={spec.max_row}; "
            f"--input-bits 16 supports max_row up to {_longest_supported_row(spec, top, alpha)}"
        )
    hi, lo = _tables(spec.scale)
    nonzero = int(np.count_nonzero(hi))  # decreasing, so the nonzeros are a prefix
    length = 256 if spec.table_layout == "full" else nonzero
    return LutS16Design(
        spec,
        hi[:length].astype(np.uint32),
        lo.astype(np.uint32),
        nonzero,
        top,
        PRECISION,
        alpha,
        eps,
    )


def _longest_supported_row(spec: Spec, top: int, alpha: float) -> int:
    """Binary search for the largest max_row whose bound holds (it grows with max_row)."""
    lo, hi = 1, spec.max_row
    while lo + 1 < hi:
        mid = (lo + hi) // 2
        eps = _bound(replace(spec, max_row=mid), top, alpha)
        if eps is not None and eps < 1:
            lo = mid
        else:
            hi = mid
    return lo


def reference(dsg: LutS16Design, x: np.ndarray) -> np.ndarray:
    """Bit-exact model of the generated C: int16 rows (..., L) in, int16 outputs (int64) out."""
    spec = dsg.spec
    x = np.asarray(x)
    if x.shape[-1] < 1 or x.shape[-1] > spec.max_row:
        raise ValueError(f"row length {x.shape[-1]} outside 1..{spec.max_row}")
    rows = x.reshape(-1, x.shape[-1]).astype(np.int64)
    w_of_d = weights(dsg.hi_table.astype(np.uint64), dsg.lo_table.astype(np.uint64))
    w = w_of_d[rows.max(axis=1, keepdims=True) - rows]
    sums = w.sum(axis=1, dtype=np.uint64)
    P = dsg.precision
    recips = np.empty((rows.shape[0], 1), dtype=np.uint64)
    shifts = np.empty((rows.shape[0], 1), dtype=np.uint64)
    for r, s in enumerate(sums.tolist()):
        j = max(0, s.bit_length() - 32)
        reduced = s >> j
        k = normalize_shift(reduced, 32)
        recip = reciprocal(reduced << k, 32, P)
        g = 32 - k + j + P - OUT_BITS
        if not 33 <= g <= 63 or recip > 1 << (P + 1):
            raise AssertionError("overflow proof violated")  # cannot happen; see module doc
        recips[r, 0], shifts[r, 0] = recip, g
    y = (w * recips + (np.uint64(1) << (shifts - np.uint64(1)))) >> shifts
    out: np.ndarray = np.minimum(y, np.uint64(QMAX)).astype(np.int64).reshape(x.shape)
    return out


def describe(dsg: LutS16Design) -> list[str]:
    """Human-readable facts about the design, for the banner and for stderr."""
    spec = dsg.spec
    return [
        f"exp tables ({spec.table_layout}): E_lo 256 + E_hi {len(dsg.hi_table)} x uint32_t = "
        f"{dsg.table_bytes} bytes; exp(-{spec.scale!r} * d) ~ E_hi[d >> 8] * E_lo[d & 255]",
        f"  weight w = (E_hi * E_lo) >> 32, {dsg.top} for the row maximum, table error <= "
        f"{dsg.table_error:.4f}",
        f"row sum: uint64_t, exact; reciprocal: {dsg.precision + 1} bits, Newton's method or "
        "shift-and-subtract by target, no divide",
        "output: TFLite int16 convention, q = min(round(32768 p), 32767), zero point 0",
        "accuracy: every output within 1 LSB of correctly rounded softmax for rows of",
        f"1..{spec.max_row} elements (proven error before rounding < {dsg.error_bound:.3f} LSB)",
    ]


def template_context(dsg: LutS16Design) -> dict[str, object]:
    """Numbers the ``lut_s16.c.j2`` template prints (templates do no arithmetic)."""
    return {
        "hex_sum": lambda v: f"0x{v:08x}u",
        # shift = g - 32 = (32 - k + j) + P - 15 - 32, k the normalizing shift, j the reduction
        "output_shift_base": dsg.precision - OUT_BITS,
        "newton_steps": newton_steps(dsg.precision),
        "compact_limit": len(dsg.hi_table) * 256,  # differences below it have an E_hi entry
        "hi_scale": HI_SCALE,
        "zero_point_abs": 0,
        "qmax": QMAX,
        "accuracy_note": [
            "Bit-exact with lutcodegen's reference model for the same options. Every output is",
            "within 1 LSB of min(round(32768 p), 32767), p the exact softmax.",
        ],
    }
