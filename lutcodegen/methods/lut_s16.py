"""Method ``lut`` with int16 input: two-level exp table, exact integer sum, divider-free reciprocal.

Output is TFLite's int16 softmax convention: ``q = min(round(32768 p), 32767)``, zero point 0.
Algorithm, per row of int16 logits ``x`` (all integer; s = beta * input_scale):

1. ``m = max(x)``; ``d_i = m - x_i`` in [0, 65535], split as ``d = 256 h + l``.
2. ``t_i = (E_hi[h] * E_lo[l] + 2^(c-1)) >> c`` with ``E_lo[l] = min(round(2^32 exp(-s l)),
   2^32 - 1)`` and ``E_hi[h] = round(A exp(-256 s h))``, ``A = top * 2^(c-32)`` in [2^30, 2^31):
   so ``t_i ~= top * exp(-s d_i)``, and ``t = top`` exactly at ``d = 0``. Both tables have 256
   ``uint32_t`` entries; ``compact`` stores only the nonzero prefix of ``E_hi`` and checks ``h``.
   Since ``c >= 33`` the rounding constant has no low word, so the C takes the high word of the
   32 x 32 -> 64-bit product (one instruction on Cortex-M3 and up and on RV32M), adds
   ``2^(c-33)`` and shifts by ``c - 32``: the same integer.
3. ``S = sum t_i`` in W = 32 (or 64) bits.
4. ``k = normalize_shift(S)``; ``R = round(2^(W+P) / (S << k))`` by restoring shift-and-subtract
   (no divide). With ``n = W - k`` the bit length of S, ``R ~= 2^(n+P) / S``.
5. ``y_i = min((t_i * R + 2^(g-1)) >> g, 32767)`` with ``g = n + P - 15``. P is chosen so that
   ``33 <= g <= 63`` for every row, and then that is the high word of ``t_i * R``, plus
   ``2^(g-33)``, shifted by ``g - 32``.

Error bound, in output LSB (2^-15) before the final rounding. Let ``e_i = top exp(-s d_i)`` and
``p_i = e_i / sum e``. The design computes ``alpha = max |t(d) - top exp(-s d)|`` over all 65536
differences (exhaustively, plus 2^-16 for the float64 evaluation of exp, whose error is below
2^-20 here). Every row's maximum has ``t = e = top`` exactly, so ``|S - sum e| <= (L-1) alpha``
and ``S >= top``; an element that is not a maximum has ``p_i <= 1/2``. Hence for every element

    |t_i / S - p_i| <= (|t_i - e_i| sum e + e_i |S - sum e|) / (S sum e) <= alpha L / top.

The reciprocal is off by at most 1/2, which moves ``t_i R / 2^g`` by at most
``t_i 2^-(g+1) < 2^(15-P-1)`` (``t_i < 2^n``). So the value that is rounded differs from the
exact ``32768 p_i`` by less than ``eps = 2^15 (alpha L / top + 2^-(P+1))``; rounding and the clamp
at 32767 are monotone and move by at most one step, so ``eps < 1`` proves every output within
1 LSB of ``min(round(32768 p), 32767)`` for every row of every length up to ``max_row``. The design
keeps the largest ``top`` the sum width allows and takes 64-bit sums only when 32-bit ones cannot
prove the bound with a comfortable margin (about 450-element rows).

Overflow proof: ``E_hi * E_lo <= (2^31 - 1)(2^32 - 1) < 2^63``, so the rounded product fits 64
bits; ``t <= top`` (both tables decrease from their first entry), so ``S <= L top <= 2^W - 1`` by
the choice of ``top``; ``R <= 2^(P+1) <= 2^30`` (the unhalved quotient, ``<= 2^(P+2)``, fits 32
bits) and ``t R + 2^(g-1) < 2^61 + 2^62``; the shifts ``c - 32``, ``g - 32`` and ``k`` stay
below 32 (checked when the design is made). Differences are formed in int32 (``m - x`` is at
most 65535), and ``h`` and ``l`` index 256-entry tables.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..fixedpoint import normalize_shift, reciprocal, round_half_up
from ..spec import Spec, SpecError

#: Output precision F: the output scale is 2^-15 (TFLite's 1/32768) and the largest code 32767.
OUT_BITS = 15
QMAX = (1 << OUT_BITS) - 1

#: Largest row weight: keeps ``c = 63 - bitlen(top) >= 33`` (rounding without the low word).
TOP_LIMIT = (1 << 30) - 1

#: Margin added to the measured table error for the float64 evaluation of the exact exp.
EXACT_MARGIN = 2.0**-16

#: As in the int8 ``lut`` method: a cheaper storage is taken only with this margin below 1 LSB.
COMFORTABLE_BOUND = 0.6


@dataclass(frozen=True)
class LutS16Design:
    """Every constant and table the C and the reference share for one int16 ``lut`` spec."""

    spec: Spec
    hi_table: np.ndarray  #: E_hi[h], uint32; 256 entries (``full``) or its nonzero prefix
    lo_table: np.ndarray  #: E_lo[l], uint32, 256 entries
    hi_nonzero: int  #: entries of E_hi that are nonzero
    top: int  #: t at d = 0, the integer weight of the row maximum
    product_shift: int  #: c: t = (E_hi * E_lo + 2^(c-1)) >> c
    sum_bits: int  #: W: width of the row sum (32 or 64)
    precision: int  #: P: the reciprocal has P+1 significant bits
    table_error: float  #: alpha: max |t(d) - top exp(-s d)| over all d, with its margin
    error_bound: float  #: eps, in output LSB; < 1 proves the 1-LSB guarantee

    @property
    def table_bytes(self) -> int:
        return int(self.hi_table.nbytes + self.lo_table.nbytes)

    @property
    def hi_scale(self) -> int:
        """A = E_hi[0] = top * 2^(c-32)."""
        return self.top << (self.product_shift - 32)

    @property
    def max_sum_bits(self) -> int:
        """Bit length of the largest possible row sum, ``max_row * top``."""
        return (self.spec.max_row * self.top).bit_length()

    def normalize_steps(self) -> list[tuple[int, int]]:
        """(threshold, shift) pairs of the C binary search for the normalizing shift."""
        steps = []
        step = self.sum_bits // 2
        while step >= 1:
            steps.append((1 << (self.sum_bits - step), step))
            step //= 2
        return steps


def _tables(scale: float, top: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(E_hi, E_lo, c) for weight ``top``: 256 entries each, unsigned 32-bit values."""
    c = 63 - top.bit_length()
    a = top << (c - 32)
    k = np.arange(256, dtype=np.float64)
    lo = np.minimum(round_half_up(2.0**32 * np.exp(-scale * k)), 2.0**32 - 1)
    hi = round_half_up(a * np.exp(-scale * 256.0 * k))
    return hi.astype(np.uint64), lo.astype(np.uint64), c


def products(hi: np.ndarray, lo: np.ndarray, c: int) -> np.ndarray:
    """t for every difference d = 256 h + l (index d), as the C computes it."""
    full_hi = np.zeros(256, dtype=np.uint64)
    full_hi[: len(hi)] = hi
    prod = full_hi[:, None] * lo[None, :] + (np.uint64(1) << np.uint64(c - 1))
    return (prod >> np.uint64(c)).reshape(-1)


def table_error(scale: float, top: int) -> float:
    """alpha: the largest |t(d) - top exp(-s d)| over all 65536 differences, plus the margin."""
    hi, lo, c = _tables(scale, top)
    t = products(hi, lo, c).astype(np.float64)
    exact = top * np.exp(-scale * np.arange(65536, dtype=np.float64))
    return float(np.abs(t - exact).max()) + EXACT_MARGIN


def _precision(max_row: int, top: int, sum_bits: int) -> int | None:
    """Largest P <= 29 with 33 <= g <= 63 for every row, or None (the restoring division's
    unhalved quotient reaches 2^(P+2), which must fit 32 bits)."""
    n_max = (max_row * top).bit_length()
    n_min = top.bit_length()
    precision = min(29, 63 + OUT_BITS - n_max)
    if n_min + precision - OUT_BITS < 33 or n_max > sum_bits:
        return None
    return precision


def _candidate(spec: Spec, sum_bits: int, limit: float) -> LutS16Design | None:
    """The most accurate design with W-bit sums whose bound is below ``limit``, if any."""
    L = spec.max_row
    largest = min(TOP_LIMIT, ((1 << sum_bits) - 1) // L)
    best: tuple[float, int, int, float] | None = None
    for shift in range(0, 20):
        top = largest >> shift
        if top < 1 << 14:
            break
        precision = _precision(L, top, sum_bits)
        if precision is None:
            continue
        alpha = table_error(spec.scale, top)
        eps = (1 << OUT_BITS) * (alpha * L / top + 2.0 ** -(precision + 1))
        if eps < limit and (best is None or eps < best[0]):
            best = (eps, top, precision, alpha)
    if best is None:
        return None
    eps, top, precision, alpha = best
    hi, lo, c = _tables(spec.scale, top)
    t0 = int(products(hi[:1], lo[:1], c)[0])
    if t0 != top:
        raise AssertionError("t(0) must equal top")
    nonzero = int(np.count_nonzero(hi))  # decreasing, so the nonzeros are a prefix
    length = 256 if spec.table_layout == "full" else nonzero
    return LutS16Design(
        spec, hi[:length].astype(np.uint32), lo.astype(np.uint32), nonzero, top, c, sum_bits,
        precision, alpha, eps,
    )


def design(spec: Spec) -> LutS16Design:
    """The cheapest sum width whose bound proves <= 1 LSB for every row up to max_row,
    preferring one with a comfortable margin."""
    for limit in (COMFORTABLE_BOUND, 1.0):
        for sum_bits in (32, 64):
            found = _candidate(spec, sum_bits, limit)
            if found is not None:
                return found
    raise SpecError(
        f"no int16 lut design proves 1-LSB accuracy for max_row={spec.max_row}; "
        f"--input-bits 16 supports max_row up to {_longest_supported_row(spec)}"
    )


def _longest_supported_row(spec: Spec) -> int:
    """Binary search for the largest max_row that has a design (feasibility is monotone)."""
    lo, hi = 1, spec.max_row
    while lo + 1 < hi:
        mid = (lo + hi) // 2
        trial = replace(spec, max_row=mid)
        if _candidate(trial, 64, 1.0) is not None or _candidate(trial, 32, 1.0) is not None:
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
    t_of_d = products(dsg.hi_table.astype(np.uint64), dsg.lo_table.astype(np.uint64),
                      dsg.product_shift)
    t = t_of_d[rows.max(axis=1, keepdims=True) - rows]
    sums = t.sum(axis=1, dtype=np.uint64)
    P, W = dsg.precision, dsg.sum_bits
    recips = np.empty((rows.shape[0], 1), dtype=np.uint64)
    shifts = np.empty((rows.shape[0], 1), dtype=np.uint64)
    for r, s in enumerate(sums.tolist()):
        k = normalize_shift(s, W)
        recip = reciprocal(s << k, W, P)
        g = W - k + P - OUT_BITS
        if not 33 <= g <= 63 or recip > 1 << 31:
            raise AssertionError("overflow proof violated")  # cannot happen; see module doc
        recips[r, 0], shifts[r, 0] = recip, g
    y = (t * recips + (np.uint64(1) << (shifts - np.uint64(1)))) >> shifts
    return np.minimum(y, np.uint64(QMAX)).astype(np.int64).reshape(x.shape)


def describe(dsg: LutS16Design) -> list[str]:
    """Human-readable facts about the design, for the banner and for stderr."""
    spec = dsg.spec
    return [
        f"exp tables ({spec.table_layout}): E_hi {len(dsg.hi_table)} + E_lo {len(dsg.lo_table)} "
        f"x uint32_t = {dsg.table_bytes} bytes; exp(-{spec.scale!r} * d) ~ E_hi[d >> 8] * "
        "E_lo[d & 255]",
        f"  t = (E_hi * E_lo + 2^{dsg.product_shift - 1}) >> {dsg.product_shift}, "
        f"weight of the row maximum {dsg.top}, table error <= {dsg.table_error:.4f}",
        f"row sum: uint{dsg.sum_bits}_t; reciprocal: {dsg.precision + 1} bits, "
        "shift-and-subtract, no divide",
        "output: TFLite int16 convention, q = min(round(32768 p), 32767), zero point 0",
        "accuracy: every output within 1 LSB of correctly rounded softmax for rows of",
        f"1..{spec.max_row} elements (proven error before rounding < {dsg.error_bound:.3f} LSB)",
    ]


def template_context(dsg: LutS16Design) -> dict[str, object]:
    """Numbers the ``lut_s16.c.j2`` template prints (templates do no arithmetic)."""
    suffix = "u" if dsg.sum_bits == 32 else "ull"
    return {
        "sum_ctype": f"uint{dsg.sum_bits}_t",
        "hex_sum": lambda v: f"0x{v:0{dsg.sum_bits // 4}x}{suffix}",
        "product_round": f"0x{1 << (dsg.product_shift - 33):x}u",
        "product_high_shift": dsg.product_shift - 32,
        # shift = g - 32 = (W - k) + P - 15 - 32, k the normalizing shift
        "output_shift_base": dsg.sum_bits + dsg.precision - OUT_BITS - 32,
        "zero_point_abs": 0,
        "qmax": QMAX,
        "accuracy_note": [
            "Bit-exact with lutcodegen's reference model for the same options. Every output is",
            "within 1 LSB of min(round(32768 p), 32767), p the exact softmax.",
        ],
    }
