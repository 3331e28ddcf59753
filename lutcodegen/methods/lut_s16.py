"""Method ``lut`` with int16 input: two-level exp table, exact integer sum, divider-free reciprocal.

Output is TFLite's int16 softmax convention: ``q = min(round(32768 p), 32767)``, zero point 0.
Algorithm, per row of int16 logits ``x`` (all integer; s = beta * input_scale):

1. ``m = max(x)``; ``d_i = m - x_i`` in [0, 65535], split as ``d = 256 h + l``.
2. ``w_i = floor(E_hi[h] * E_lo[l] / 2^32)``, the high word of a 32 x 32 -> 64-bit product (one
   instruction on Cortex-M3 and up and on RV32M). ``E_lo[l] = b_l 2^10`` with the 22-bit
   ``b_l = round((2^22 - 1) exp(-s l))``; ``E_hi[h] = m_h 2^e_h`` is ``A exp(-256 s h)``,
   ``A = 2^30 - 1``, rounded to 21 significant bits (``m_h < 2^21``, ``e_h <= 9``). So
   ``w_i ~= top exp(-s d_i)`` with ``top = w(0) < 2^30``, and every weight carries about 21
   significant bits. Both tables have 256 ``uint32_t`` entries. ``compact`` stores only the
   nonzero prefix of ``E_hi`` and checks the index. Past ``s = 1/255`` the split is ``d = 2^k h
   + l`` with the largest ``k < 8`` for which ``s (2^k - 1) <= 1`` (so every ``b_l`` keeps 21
   or more significant bits); then ``E_lo`` has ``2^k`` entries, ``E_hi`` only its nonzero
   ones (at most 43), and ``h`` is checked. Read 256 as ``2^k`` below.
3. ``S = sum w_i``, exactly, in 64 bits.
4. ``j = max(0, bitlen(S) - 32)``, ``S' = S >> j`` (32 bits); ``k = normalize_shift(S')``;
   ``R = round(2^(32+P) / (S' << k))``, by Newton's method (cores with a 64-bit product) or by
   shift-and-subtract, exactly, no divide. With ``n = 32 - k + j`` the bit length of S,
   ``R ~= 2^(n+P) / S``.
5. ``y_i = min((w_i * R + 2^(g-1)) >> g, 32767)`` with ``g = n + P - 15`` in [33, 63] for every
   row: the high word of ``w_i * R``, plus ``2^(g-33)``, shifted by ``g - 32``. Only a row maximum
   can reach 32768 (every other element has ``p <= 1/2``) and ``w`` is largest there, so a row
   whose maximum stays below it skips the clamp.

Why the tables have these widths: cores whose multiplier gives only the low 32 bits
(Cortex-M0+) compute the same weight with two 32-bit products, exactly. With ``b_l = b1 2^11 +
b0`` (``b1, b0 < 2^11``), ``floor(E_hi E_lo / 2^32) = floor(m_h b_l / 2^(22 - e_h)) =
(m_h b1 + ((m_h b0) >> 11)) >> (11 - e_h)``; ``m_h b1 <= (2^21 - 1)(2^11 - 1) < 2^32 - 2^21``
and ``(m_h b0) >> 11 < 2^21``, so nothing overflows. A 30-bit ``E_hi`` in fixed point would
need four products there; 21 significant bits in each factor keep about 2^-21 relative error
per weight, which is what the measured accuracy needs, and the floating exponent of ``E_hi``
keeps the small weights' absolute error near one unit, which is what long rows need.

Error bound, in output LSB (2^-15) before the final rounding. Let ``e_i = top exp(-s d_i)`` and
``p_i = e_i / E`` with ``E = sum e``. The design finds, over all 65536 differences, the smallest
``rho`` with ``|w(d) - top exp(-s d)| <= rho top exp(-s d) + beta`` for ``beta = ABS_ERROR``
(the final floor and the rounding of the small, unnormalized ``E_hi`` entries; ``rho`` is about
2^-21 from the two roundings to 21 and 22 bits), plus margins for the float64 evaluation of exp
(``2^-40`` relative, ``2^-16`` absolute). Every row's maximum has ``w = e = top`` exactly, so
``|S - E| <= rho (E - top) + (L-1) beta <= lambda E`` with ``lambda = rho + (L-1) beta / top``
(``E >= top``), and ``S >= (1 - lambda) E``. For an element that is not a maximum (``p_i <=
1/2``):

    |w_i / S - p_i| <= |w_i - e_i| / S + e_i |S - E| / (S E)
                    <= (rho + lambda) / (2 (1 - lambda)) + beta / top,

and for a maximum ``|top / S - p_i| = p_i |E - S| / S <= lambda / (1 - lambda)``. Let
``delta`` be the larger of the two. Relative errors do not add up along the row, so only the
absolute part ``beta`` grows with L.

Dropping ``j`` low bits of S changes ``1/S`` by a factor within ``1 + 2^-31``, which moves an
output (at most 2^15) by less than 2^-16. The reciprocal is off by at most 1/2, which moves
``w_i R / 2^g`` by at most ``w_i 2^-(g+1) < 2^(15-P-1)`` (``w_i <= S < 2^n``). So the value that is
rounded differs from the exact ``32768 p_i`` by less than

    eps = 2^15 (delta + 2^-31) + 2^(14-P),

and since rounding and the clamp at 32767 are monotone and move by at most one step, ``eps < 1``
proves every output within 1 LSB of ``min(round(32768 p), 32767)`` for every row of every length
up to ``max_row`` (``top ~= 2^30``: rows up to about 21,000 elements).

Overflow proof: ``E_hi < 2^30`` and ``E_lo < 2^32``, so ``w <= top < 2^30`` (both tables decrease
from their first entry) and four weights add up in 32 bits; ``S <= L top < 2^50`` for ``L <=
2^20``; ``R <= 2^(P+1)`` (the restoring division's unhalved quotient, ``<= 2^(P+2)``, fits 32 bits
for ``P <= 29``), so ``w R < 2^(31+P)`` and ``w R + 2^(g-1) < 2^64``; the shifts ``j``, ``k`` and
``g - 32`` stay below 32 (checked when the design is made). Without a 64-bit product the high
word of ``w R`` is ``w1 R1 + ((w1 R0 + w0 R1 + ((w0 R0) >> 16)) >> 16)`` with 16-bit halves,
exactly; ``R1 <= 2^9`` keeps the inner sum below 2^31. Differences are formed in int32
(``m - x <= 65535``).

Outputs that are provably 0 are not computed (on cores without the Arm DSP extension, where
that saves more than it costs): ``E_hi[h] >= w(2^k h)`` bounds every weight with that ``h`` or
a larger one (both tables decrease, ``E_lo[0] < 2^32``), and ``y`` does not decrease with
``w``, so once ``E_hi[h] < t``, ``t`` the smallest weight with ``y(t) >= 1``, every element
with ``d >= 2^k h`` has ``y = 0``. The C compares with a lower bound of ``t`` from ``S / 2^16``
(derived in the template) and finds the first such ``h`` by bisection; a looser limit only
computes a few more zeros, so the outputs do not depend on it and the reference does not model
it. Comparing ``d`` (unsigned) with that limit also keeps every table index in range whatever
the buffer holds when the output pass reads it (a partially overlapping output). On Cortex-M0+
an output row that does not overlap its input carries the weights of its first ``(L - 1) / 8``
groups of four from the sum pass to the output pass (the same weights, computed once); the
rest of it is set to 0 first, and only the outputs below the limit are stored.
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

#: Scale of E_hi: the largest 30-bit value, so that a weight is below 2^30 and four add up in 32
#: bits.
HI_SCALE = (1 << 30) - 1

#: Significant bits of an E_hi entry (its mantissa m_h) and bits of b_l in E_lo = b_l 2^10:
#: m_h b_l / 2^11 fits 32 bits, so two 32-bit products give the weight exactly.
HI_BITS = 21
LO_BITS = 22

#: Largest s (2^k - 1) that the E_lo entries span: they stay above 2^22 / e.
LO_RANGE = 1.0

#: Largest s (2^k - 1) that the E_lo entries span: they stay above 2^22 / e.
LO_RANGE = 1.0

#: beta: absolute part of the per-weight error bound (the final floor, below 1, and the rounding
#: of the E_hi entries below 2^21, at most 1/2).
ABS_ERROR = 1.5

#: Margins for the float64 evaluation of the exact exp: relative (the argument s d is exact to
#: 2^-53 relative, and only s d < 2^12 leaves a nonzero weight) and absolute.
EXACT_MARGIN_REL = 2.0**-40
EXACT_MARGIN = 2.0**-16

#: Reciprocal precision: 2^(14-P) = 2^-10 LSB; the Newton path is checked up to P = 24.
PRECISION = 24


@dataclass(frozen=True)
class LutS16Design:
    """Every constant and table the C and the reference share for one int16 ``lut`` spec."""

    spec: Spec
    #: E_hi[h] = m_h 2^e_h, uint32; 256 entries (``full``) or the nonzero prefix
    hi_table: np.ndarray
    lo_table: np.ndarray  #: E_lo[l] = b_l 2^10, uint32, 2^k entries
    hi_nonzero: int  #: entries of E_hi that are nonzero
    top: int  #: w at d = 0, the integer weight of the row maximum
    precision: int  #: P: the reciprocal has P+1 significant bits
    rel_error: float  #: rho: relative part of the per-weight error bound, with its margin
    abs_error: float  #: beta: absolute part of the per-weight error bound, with its margin
    error_bound: float  #: eps, in output LSB; < 1 proves the 1-LSB guarantee

    @property
    def table_bytes(self) -> int:
        return int(self.hi_table.nbytes + self.lo_table.nbytes)

    @property
    def lo_bits(self) -> int:
        """k: d = 2^k h + l."""
        return int(len(self.lo_table)).bit_length() - 1

    @property
    def checked(self) -> bool:
        """Whether the C checks h against the table (compact layout, or k < 8)."""
        return len(self.hi_table) << self.lo_bits < 65536

    @property
    def hi_table_mul32(self) -> np.ndarray:
        """E_hi for cores without a 64-bit product: ``m_h << 8 | (11 - e_h)``. The low byte is
        the right shift of step 2 (a register shift on Cortex-M0+ reads only the low byte)."""
        out = []
        for a in self.hi_table.tolist():
            e = max(0, a.bit_length() - HI_BITS)
            if (a >> e) << e != a:
                raise AssertionError("E_hi entry with more than 21 significant bits")
            out.append(((a >> e) << 8) | (LO_BITS - HI_BITS + 10 - e))
        return np.array(out, dtype=np.uint32)

    @property
    def lo_table_mul32(self) -> np.ndarray:
        """E_lo for cores without a 64-bit product: ``b1 << 16 | b0``, ``b_l = b1 2^11 + b0``."""
        b = self.lo_table.astype(np.uint64) >> np.uint64(32 - LO_BITS)
        half = np.uint64(LO_BITS // 2)
        mask = np.uint64((1 << (LO_BITS // 2)) - 1)
        packed: np.ndarray = ((b >> half) << np.uint64(16)) | (b & mask)
        return packed.astype(np.uint32)

    @property
    def exp_table_mul32(self) -> np.ndarray:
        """The one table of the 32-bit-product format: E_lo, then E_hi."""
        return np.concatenate([self.lo_table_mul32, self.hi_table_mul32])

    @property
    def max_sum_bits(self) -> int:
        """Bit length of the largest possible row sum, ``max_row * top``."""
        return (self.spec.max_row * self.top).bit_length()

    def normalize_steps(self) -> list[tuple[int, int]]:
        """(threshold, shift) pairs of the C binary search for the normalizing shift."""
        return [(1 << (32 - step), step) for step in (16, 8, 4, 2, 1)]


def _round_significant(value: float, bits: int) -> int:
    """``value`` rounded (ties up) to an integer with at most ``bits`` significant bits."""
    shift = max(0, int(round_half_up(value)).bit_length() - bits)
    mantissa = int(round_half_up(value / 2.0**shift))
    if mantissa >> bits:  # rounded up to 2^bits: one more bit of exponent
        shift += 1
        mantissa = int(round_half_up(value / 2.0**shift))
    return mantissa << shift


def lo_bits_for(scale: float) -> int:
    """k, the bits of d that index E_lo: 8, or fewer when exp(-s (2^k - 1)) would drop below
    1/e, so that every E_lo entry keeps 21 or more significant bits. Then E_hi has at most
    43 nonzero entries and larger h are read as 0 (the index is checked)."""
    k = 8
    while k > 0 and ((1 << k) - 1) * scale > LO_RANGE:
        k -= 1
    return k


def _tables(scale: float) -> tuple[np.ndarray, np.ndarray]:
    """(E_hi, E_lo): 256 and 2^k entries, unsigned 32-bit values."""
    k = lo_bits_for(scale)
    h = np.arange(256, dtype=np.float64)
    low = np.arange(1 << k, dtype=np.float64)
    # scale * (2^k h), not (scale * 2^k) * h: at h = 0 it is 0 even when scale * 2^k overflows
    # to inf (inf * 0 would be NaN); an overflow elsewhere is -inf in the exponent, an entry 0.
    with np.errstate(over="ignore"):
        exact_hi = HI_SCALE * np.exp(-scale * (2.0**k * h))
        b = round_half_up(((1 << LO_BITS) - 1) * np.exp(-scale * low)).astype(np.uint64)
    hi = [_round_significant(v, HI_BITS) for v in exact_hi.tolist()]
    return np.array(hi, dtype=np.uint64), b << np.uint64(32 - LO_BITS)


def weights(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """w = floor(E_hi[h] * E_lo[l] / 2^32) for every difference d = 2^k h + l (index d), with
    2^k = len(lo) and E_hi[h] = 0 past the table."""
    rows = 65536 // len(lo)
    full_hi = np.zeros(rows, dtype=np.uint64)
    full_hi[: min(len(hi), rows)] = hi[:rows]
    high: np.ndarray = ((full_hi[:, None] * lo[None, :]) >> np.uint64(32)).reshape(-1)
    return high


def table_error(scale: float) -> tuple[int, float, float]:
    """(top, rho, beta): the row maximum's weight and the smallest rho with ``|w(d) - top
    exp(-s d)| <= rho top exp(-s d) + beta`` over all 65536 differences, margins included."""
    hi, lo = _tables(scale)
    w = weights(hi, lo).astype(np.float64)
    top = int(w[0])
    with np.errstate(over="ignore"):  # an overflow is -inf in the exponent: exp is 0
        exact = top * np.exp(-scale * np.arange(65536, dtype=np.float64))
    excess = np.abs(w - exact) - ABS_ERROR
    if (excess[exact == 0] > 0).any():
        raise AssertionError("a weight of an exp that underflows exceeds beta")
    positive = exact > 0
    rho = float((np.maximum(excess[positive], 0.0) / exact[positive]).max())
    return top, rho + EXACT_MARGIN_REL, ABS_ERROR + EXACT_MARGIN


def _bound(spec: Spec, top: int, rho: float, beta: float) -> float | None:
    """eps for ``max_row``, or None if a shift would leave its range or lambda >= 1."""
    L, P = spec.max_row, PRECISION
    n_min, n_max = top.bit_length(), (L * top).bit_length()
    if n_min + P - OUT_BITS < 33 or n_max + P - OUT_BITS > 63 or n_max > 64:
        return None
    lam = rho + (L - 1) * beta / top
    if lam >= 1:
        return None
    delta = max(lam / (1 - lam), (rho + lam) / (2 * (1 - lam)) + beta / top)
    return (1 << OUT_BITS) * (delta + 2.0**-31) + 2.0 ** (OUT_BITS - 1 - P)


def design(spec: Spec) -> LutS16Design:
    """The tables, and the bound that proves <= 1 LSB for every row up to max_row."""
    top, rho, beta = table_error(spec.scale)
    eps = _bound(spec, top, rho, beta)
    if eps is None or eps >= 1:
        raise SpecError(
            f"no int16 lut design proves 1-LSB accuracy for max_row={spec.max_row}; "
            f"--input-bits 16 supports max_row up to "
            f"{_longest_supported_row(spec, top, rho, beta)}"
        )
    hi, lo = _tables(spec.scale)
    nonzero = int(np.count_nonzero(hi))  # decreasing, so the nonzeros are a prefix
    length = 256 if spec.table_layout == "full" and len(lo) == 256 else nonzero
    return LutS16Design(
        spec,
        hi[:length].astype(np.uint32),
        lo.astype(np.uint32),
        nonzero,
        top,
        PRECISION,
        rho,
        beta,
        eps,
    )


def _longest_supported_row(spec: Spec, top: int, rho: float, beta: float) -> int:
    """Binary search for the largest max_row whose bound holds (it grows with max_row)."""
    lo, hi = 1, spec.max_row
    while lo + 1 < hi:
        mid = (lo + hi) // 2
        eps = _bound(replace(spec, max_row=mid), top, rho, beta)
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
    k = dsg.lo_bits
    return [
        f"exp tables ({spec.table_layout}): E_hi {len(dsg.hi_table)} + E_lo {len(dsg.lo_table)} "
        f"x uint32_t = {dsg.table_bytes} bytes; exp(-{spec.scale!r} * d) ~ "
        f"E_hi[d >> {k}] * E_lo[d & {(1 << k) - 1}]",
        f"  weight w = (E_hi * E_lo) >> 32, {dsg.top} for the row maximum; "
        f"|w - {dsg.top} exp(-s d)| <= {dsg.rel_error:.3g} {dsg.top} exp(-s d) + "
        f"{dsg.abs_error:.4f}",
        f"row sum: uint64_t, exact; reciprocal: {dsg.precision + 1} bits, Newton's method or "
        "shift-and-subtract by target, no divide",
        "output: TFLite int16 convention, q = min(round(32768 p), 32767), zero point 0",
        "accuracy: every output within 1 LSB of correctly rounded softmax for rows of",
        f"1..{spec.max_row} elements (proven error before rounding < {dsg.error_bound:.3f} LSB)",
    ]


def _is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def _search_steps(n: int) -> list[int]:
    """Steps of the C's search over n sorted entries, largest first: every power of two up to
    n, so that they can add up to n - 1 (a power-of-two n tests its last entry first instead of
    taking a step of n)."""
    top = n.bit_length() - (1 if _is_power_of_two(n) else 0)
    return [1 << b for b in reversed(range(top))]


def template_context(dsg: LutS16Design) -> dict[str, object]:
    """Numbers the ``lut_s16.c.j2`` template prints (templates do no arithmetic)."""
    k = dsg.lo_bits
    # The Cortex-M0+ sum loop counts groups of four below 2^16 (the proof ends far below).
    if dsg.spec.max_row >= 1 << 18:
        raise AssertionError("int16 lut design for rows of 2^18 or more elements")
    # The template's bounds for the clamp test and the zero limit take top >= 2^29 (g >= 38).
    if dsg.top >> 29 != 1:
        raise AssertionError("int16 lut design whose top is not a 30-bit number")
    return {
        "hex_sum": lambda v: f"0x{v:08x}u",
        # shift = g - 32 = (32 - k + j) + P - 15 - 32, k the normalizing shift, j the reduction
        "output_shift_base": dsg.precision - OUT_BITS,
        "newton_steps": newton_steps(dsg.precision),
        "lo_bits": k,
        "lo_mask": (1 << k) - 1,
        "hi_len": len(dsg.hi_table),
        # The search for the first E_hi entry below a bound: powers of two, largest first, that
        # add up to at least hi_len - 1; for a power-of-two hi_len, after a test of the last entry
        # the steps need no bound check.
        "hi_search_exact": _is_power_of_two(len(dsg.hi_table)),
        # rows with at least this sum cannot round their maximum up to 2^15 (see the template)
        "clamp_free_sum": dsg.top + (dsg.top >> 14) + 1 + (1 << 18),
        "hi_search_steps": _search_steps(len(dsg.hi_table)),
        "checked_limit": len(dsg.hi_table) << k,  # differences below it have an E_hi entry
        "d_range": 65536,  # one past the largest difference
        "lo_shift": 32 - LO_BITS,
        "lo_half": LO_BITS // 2,
        "hi_bits": HI_BITS,
        "lo_bits_b": LO_BITS,
        "hi_scale": HI_SCALE,
        "zero_point_abs": 0,
        "qmax": QMAX,
        "accuracy_note": [
            "Bit-exact with lutcodegen's reference model for the same options. Every output is",
            "within 1 LSB of min(round(32768 p), 32767), p the exact softmax.",
        ],
    }
