"""Method ``lut`` (the default): exp lookup table, exact integer sum, divider-free reciprocal.

Algorithm, per row of int8 logits ``x`` (all integer):

1. ``m = max(x)``; ``d_i = m - x_i`` in [0, 255].
2. ``t_i = T[d_i]`` where ``T[d] = round(top * exp(-s * d))``, 0 where that rounds to 0. The
   ``full`` layout stores all 256 entries (zeros included) so the lookup needs no bounds check;
   ``compact`` stores only the nonzero prefix and checks the index. ``T[0] = top`` exactly.
3. ``S = sum t_i`` in a W-bit unsigned integer (W = 32 or 64).
4. ``k = normalize_shift(S)``; ``R = round(2^(W+P) / (S << k))``, computed exactly without a divide:
   from a seed table, one Newton step in 32-bit products and one exact correction where the
   design allows it (``RecipSeed``), else Newton steps and a correction loop; shift-and-subtract
   on cores without a cheap multiply and with ``optimize`` size.
   Then ``R ~= 2^(n+P) / S`` with ``n = W - k`` the bit length of S: R keeps P + 1 significant
   bits whatever the row, so small outputs of long rows stay as precise as large ones.
5. ``y_i = min((t_i * R + 2^(h-1)) >> h, 2^B - 1)`` with ``h = n + P - B``;
   output ``y_i - 2^(B-1)``. Only the row maximum can reach 2^B, and only for small sums, so
   the C skips the clamp for rows whose sum is at least ``clamp_limit`` (same bits; ``optimize``
   size clamps every output instead).

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

import math
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
    #: Rows up to this length provably keep ``t * R + half`` below 2^32 and the shift below 32,
    #: so the C multiplies in 32 bits there; longer rows use products of ``product_bits``.
    #: Equal to ``max_row`` when ``product_bits`` is 32.
    narrow_rows: int = 0

    @property
    def table_bytes(self) -> int:
        """Bytes of the exp table (the figure compared with the papers' table budgets)."""
        return int(self.exp_table.nbytes)

    @property
    def const_bytes(self) -> int:
        """Bytes of every const table the C holds: the exp table and, where the seeded
        reciprocal applies, its seed table."""
        seed = recip_seed(self)
        return self.table_bytes + (int(seed.table.nbytes) if seed is not None else 0)

    @property
    def optimize(self) -> str:
        """``speed`` or ``size`` (the spec's choice; None means speed)."""
        return self.spec.optimize or "speed"

    def shift_range(self, rows: int) -> tuple[int, int]:
        """Smallest and largest output shift h = n + P - B over rows of 1..``rows`` elements:
        n, the bit length of the sum, is at least that of ``top`` (the maximum's own weight)
        and at most that of ``rows * top``."""
        low = self.top.bit_length() + self.precision - self.spec.bits
        high = (rows * self.top).bit_length() + self.precision - self.spec.bits
        return low, high

    def normalize_steps(self) -> list[tuple[int, int]]:
        """(threshold, shift) pairs of the C binary search for the normalizing shift."""
        steps = []
        step = self.sum_bits // 2
        while step >= 1:
            steps.append((1 << (self.sum_bits - step), step))
            step //= 2
        return steps


#: Elements per loop iteration of the loops over a row unless the spec says otherwise, with
#: ``optimize`` speed. Eight take the loop overhead below half an instruction per element;
#: ``optimize`` size uses 1.
DEFAULT_UNROLL = 8

#: A design with 64-bit products may lower its reciprocal precision so that rows up to this
#: length multiply in 32 bits (the default ``max_row``): a long-row kernel then costs no more
#: than the default one on such rows.
NARROW_ROWS = 256

#: Bound accepted for such a two-width design. Its precision keeps P >= B + 2, so at most
#: 2^-3 LSB of the bound is the reciprocal's; at max_row 4096 it gives 99.989 % of outputs
#: equal to correct rounding (P = 10), against 99.998 % with P = 16 and 64-bit products
#: everywhere, and 99.979 % for the default design.
NARROW_BOUND = 0.7

#: Storage options from cheapest to dearest: (entry bits, sum bits, product bits).
_CANDIDATES = ((16, 32, 32), (32, 32, 32), (32, 32, 64), (32, 64, 64))


def _products_fit(top: int, precision: int, bits: int, rows: int, product_bits: int) -> bool:
    """Whether ``t * R + half`` and the shift h fit ``product_bits`` for rows up to ``rows``."""
    n_max = (rows * top).bit_length()
    worst = top * (1 << (precision + 1)) + (1 << (n_max + precision - bits - 1))
    largest_shift = n_max + precision - bits
    # a shift by the full width is undefined in C
    return (
        worst <= (1 << product_bits) - 1
        and precision + 2 <= product_bits
        and largest_shift < product_bits
    )


def _bound(
    spec: Spec, top: int, product_bits: int, narrow: bool = False
) -> tuple[int, float] | None:
    """(P, eps) for weight ``top`` with products of ``product_bits``, or None if nothing fits.

    P is the largest precision whose products fit, capped at B + 8 (reciprocal error below 1/512
    LSB; more would only lengthen the per-row division loop). With ``narrow``, P must also let
    rows up to ``NARROW_ROWS`` multiply in 32 bits, and be at least B + 2.
    """
    L, B = spec.max_row, spec.bits
    precision = 0
    for p in range(B, B + 9):
        if not _products_fit(top, p, B, L, product_bits):
            break
        if narrow and not _products_fit(top, p, B, min(L, NARROW_ROWS), 32):
            break
        precision = p
    if precision < (B + 2 if narrow else B):
        return None
    return precision, (1 << B) * (L / (2 * top) + 2.0 ** -(precision + 1))


def narrow_rows(spec: Spec, top: int, precision: int, product_bits: int) -> int:
    """The longest row length up to max_row whose products provably fit 32 bits."""
    if product_bits == 32:
        return spec.max_row
    lo, hi = 0, spec.max_row  # feasibility is monotone in the row length
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _products_fit(top, precision, spec.bits, mid, 32):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _try_candidate(
    spec: Spec,
    entry_bits: int,
    sum_bits: int,
    product_bits: int,
    limit: float = 1.0,
    narrow: bool = False,
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
        found = _bound(spec, top, product_bits, narrow)
        if found is not None and found[1] < limit and (best is None or found[1] < best[0]):
            best = (found[1], top, found[0])
    if best is None:
        return None
    eps, top, precision = best
    d = np.arange(256, dtype=np.float64)
    with np.errstate(over="ignore"):  # an overflow is -inf in the exponent: entry 0
        values = round_half_up(top * np.exp(-spec.scale * d))
    nonzero = int(np.count_nonzero(values))  # exp is decreasing, so the nonzeros are a prefix
    length = 256 if spec.table_layout == "full" else nonzero
    dtype = np.uint16 if entry_bits == 16 else np.uint32
    table = values[:length].astype(dtype)
    if int(table[0]) != top:
        raise AssertionError("T[0] must equal top")
    if spec.unroll is not None:
        unroll = spec.unroll
    else:
        unroll = 1 if spec.optimize == "size" else DEFAULT_UNROLL
    return LutDesign(
        spec,
        table,
        nonzero,
        entry_bits,
        top,
        sum_bits,
        product_bits,
        precision,
        eps,
        unroll,
        narrow_rows(spec, top, precision, product_bits),
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
            if candidate == (32, 32, 64):
                # Before 64-bit products everywhere: the same storage with a precision that
                # lets rows up to NARROW_ROWS multiply in 32 bits, if its bound allows. (With
                # 64-bit sums the weight is too large for that.)
                found = _try_candidate(
                    spec, *candidate, limit=max(limit, NARROW_BOUND), narrow=True
                )
                if found is not None:
                    return found
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
    seed = recip_seed(dsg)
    if seed is not None:
        reciprocal = (
            f"seed table ({seed.table.nbytes} bytes) and one Newton step or shift-and-subtract "
            "by target"
        )
    elif dsg.sum_bits == 32 and dsg.optimize == "speed":
        reciprocal = "Newton's method or shift-and-subtract by target"
    else:
        reciprocal = "shift-and-subtract"
    divide = recip_divide(dsg)
    if divide is not None:
        count = "two divide instructions" if divide.split else "one divide instruction"
        reciprocal = f"{count} on Cortex-M3 and up, else {reciprocal}"
    else:
        reciprocal += ", no divide"
    helium = has_mve_path(dsg) or has_mve32_path(dsg)
    facts = [
        f"exp table ({spec.table_layout}): {len(dsg.exp_table)} x uint{dsg.entry_bits}_t = "
        f"{dsg.table_bytes} bytes, T[d] = round({dsg.top} * exp(-{spec.scale!r} * d))",
        f"row sum: uint{dsg.sum_bits}_t; products: uint{dsg.product_bits}_t; reciprocal: "
        f"{dsg.precision + 1} bits, {reciprocal}",
        (
            f"loops unrolled x{dsg.unroll} (optimize speed)"
            if dsg.optimize == "speed"
            else "plain loops (optimize size)"
        )
        + "; Arm DSP cores use SIMD32 and SMMLAR"
        + (", Helium cores vector loops" if helium else ""),
    ]
    if spec.scratch_row == "on":
        facts.append(
            f"scratch row: the caller's, {spec.max_row} x uint{dsg.entry_bits}_t = "
            f"{scratch_bytes(dsg)} bytes, keeps T[d] from the sum pass for the "
            "output pass"
        )
    if 0 < dsg.narrow_rows < spec.max_row:
        facts.append(
            f"rows up to {dsg.narrow_rows} elements multiply in 32 bits, longer rows in "
            f"{dsg.product_bits}"
        )
    return facts + [
        "accuracy: every output within 1 LSB of correctly rounded softmax for rows of",
        f"1..{spec.max_row} elements (proven error before rounding < {dsg.error_bound:.3f} LSB)",
    ]


@dataclass(frozen=True)
class Path:
    """How the C forms ``q - zp``, ``q = (t * R + 2^(h-1)) >> h``, for rows up to ``rows``.

    Every form is exact for the output shifts ``h`` such rows can have (``LutDesign.shift_range``):

    - ``product_bits``: the plain form, ``t * R + half`` in 32 or 64 bits.
    - ``dsp_shift`` j (Arm DSP cores): with ``R' = R << (32 - h + j)``, j = 0 is ``SMMLAR(t, R',
      -zp)`` = ``(t R' + 2^31) >> 32 - zp``; j > 0 is ``SMMLA(t, R', 2^(j-1) - zp 2^j)`` then an
      arithmetic shift by j. Both equal ``q - zp`` because ``(t R' + 2^(31+j)) / 2^(32+j)`` is
      ``(t R + 2^(h-1)) / 2^h`` with numerator and denominator scaled by ``2^(32-h+j)``, and a
      floor of a floor by a power of two is one floor. Needs ``R' < 2^31`` (signed operand):
      ``j <= h_min - P - 3``, and ``j >= h_max - 32`` so that the left shift is not negative.
    - ``mulhi_shift`` j >= 1 (cores with a 32 x 32 -> 64-bit multiply): ``hi32(t R')`` plus
      ``2^(j-1)``, shifted right by j, is q by the same argument; ``R' < 2^32`` needs
      ``j <= h_min - P - 2``. The zero point is folded into the addend as ``+ (2^16 - zp) 2^j``,
      which changes q - zp by a multiple of 2^16 only, and the store keeps the low byte (or
      halfword).
    - ``mve_shift`` j (Helium's 32-bit lanes): the signed doubling multiply-accumulates of a
      scalar take ``R'' = R << (31 - h + j)``, so ``2 R''`` is the ``R'`` above. j = 0 is
      ``VQRDMLASH(t, R'', zw)`` = ``(2 t R'' + 2^31) >> 32 + zw`` = ``q + zw``; j > 0 is
      ``VQDMLASH(t, R'', 2^(j-1) + zw 2^j)`` then a shift right by j, ``q + zw`` by the
      high-multiply argument. ``zw = 256 - zp`` changes q - zp by 256 only, and the byte store
      keeps the low byte. Needs ``t < 2^31`` and ``R'' < 2^31`` (signed operands; then no lane
      saturates): ``j <= h_min - P - 2``, and ``j >= h_max - 31`` so that the left shift is not
      negative. None where no j fits.
    """

    rows: int
    shift_low: int
    shift_high: int
    product_bits: int
    dsp_shift: int | None
    mulhi_shift: int | None
    mve_shift: int | None

    def mulhi_addend(self, bits: int) -> int:
        """2^(j-1) + (2^16 - zp) 2^j: rounding and zero point of the high-multiply form."""
        assert self.mulhi_shift is not None
        j = self.mulhi_shift
        return (1 << (j - 1)) + (((1 << 16) - (1 << (bits - 1))) << j)

    def mve_addend(self, bits: int) -> int:
        """2^(j-1) + (256 - zp) 2^j for VQDMLASH (j > 0), 256 - zp for VQRDMLASH (j = 0)."""
        assert self.mve_shift is not None
        j = self.mve_shift
        return (1 << (j - 1) if j else 0) + (_zero_point_wrap(bits) << j)

    def dsp_addend(self, bits: int) -> int:
        """2^(j-1) - zp 2^j for SMMLA (j > 0), -zp for SMMLAR (j = 0)."""
        assert self.dsp_shift is not None
        j = self.dsp_shift
        return (1 << (j - 1) if j else 0) - ((1 << (bits - 1)) << j)


def _zero_point_wrap(bits: int) -> int:
    """256 - zp: the zero point as it wraps in the low byte of a 32-bit Helium lane."""
    return 256 - (1 << (bits - 1))


def _path(dsg: LutDesign, rows: int, product_bits: int) -> Path:
    """The forms that are exact for rows of 1..``rows`` elements (see ``Path``)."""
    low, high = dsg.shift_range(rows)
    P = dsg.precision
    signed_ok = dsg.top < (1 << 31)

    def smallest(lowest: int, largest: int) -> int | None:
        return lowest if lowest <= largest else None

    dsp = smallest(max(0, high - 32), low - P - 3) if signed_ok else None
    mulhi = smallest(max(1, high - 32), min(low - P - 2, 14))
    mve = smallest(max(0, high - 31), min(low - P - 2, 14)) if signed_ok else None
    return Path(rows, low, high, product_bits, dsp, mulhi, mve)


def paths(dsg: LutDesign) -> list[Path]:
    """One path, or two when rows up to ``narrow_rows`` multiply in 32 bits and longer ones
    need ``product_bits``; the C picks by the row length."""
    spec = dsg.spec
    if dsg.product_bits == 32 or dsg.narrow_rows >= spec.max_row:
        return [_path(dsg, spec.max_row, 32)]
    if dsg.narrow_rows == 0:
        return [_path(dsg, spec.max_row, dsg.product_bits)]
    return [_path(dsg, dsg.narrow_rows, 32), _path(dsg, spec.max_row, dsg.product_bits)]


def reversed_table(dsg: LutDesign) -> np.ndarray:
    """The table the C stores: T reversed, R[j] = T[len - 1 - j], so that a lookup of
    T[max - x] is R[len - 1 - max + x]: a per-row base plus the signed input byte."""
    return dsg.exp_table[::-1].copy()


def template_context(dsg: LutDesign) -> dict[str, object]:
    """Numbers the ``lut.c.j2`` template prints (templates do no arithmetic)."""
    spec = dsg.spec
    suffix = "u" if dsg.sum_bits == 32 else "ull"
    routes = paths(dsg)
    limit = clamp_limit(dsg)
    scratch = spec.scratch_row == "on"
    per_call = spec.table_layout == "full" and spec.bits <= 8 and not scratch
    # no sum a row can have is that large: every row takes the clamp
    clamp_always = limit > spec.max_row * dsg.top
    return {
        "entry_ctype": f"uint{dsg.entry_bits}_t",
        "sum_ctype": f"uint{dsg.sum_bits}_t",
        "product_ctype": f"uint{dsg.product_bits}_t",
        "hex_sum": lambda v: f"0x{v:0{dsg.sum_bits // 4}x}{suffix}",
        "newton_steps": newton_steps(dsg.precision),
        "mul32_recip": has_mul32_reciprocal(dsg),
        "seed": seed_constants(dsg),
        "divide": recip_divide(dsg),
        # int8 output moves on by as many bytes per row as the input, so whether they overlap is
        # the same for every row and the entry point tests it once; wider outputs test per row.
        # With a scratch row the output pass reads no input, so overlap needs no test at all.
        "overlap_per_call": per_call,
        # Arm DSP cores: a call whose rows are a multiple of 16 long (and take the first path)
        # runs them in a loop without tails; the speed design's unroll must divide 16.
        "whole_rows": per_call
        and spec.max_row >= 16
        and dsg.optimize == "speed"
        and 16 % dsg.unroll == 0
        and not clamp_always
        and routes[0].dsp_shift is not None,
        "scratch": scratch,
        "scratch_bytes": scratch_bytes(dsg),
        "clamp_limit": limit,
        "clamp_always": clamp_always,
        "rev_table": reversed_table(dsg),
        "table_len": len(dsg.exp_table),
        "table_last": len(dsg.exp_table) - 1,
        "paths": routes,
        "path_half_log2": [
            (r.rows * dsg.top).bit_length() + dsg.precision - spec.bits - 1 for r in routes
        ],
        "mulhi_addends": [
            r.mulhi_addend(spec.bits) if r.mulhi_shift is not None else 0 for r in routes
        ],
        # 2^(j-1), the rounding of the high-multiply and Helium forms (0 where j = 0 or absent)
        "mulhi_halves": [1 << (r.mulhi_shift - 1) if r.mulhi_shift else 0 for r in routes],
        "mve_addends": [r.mve_addend(spec.bits) if r.mve_shift is not None else 0 for r in routes],
        # the clamp of the Helium form's q + 256 - zp: 2^B - 1 + 256 - zp
        "mve_clamp": (1 << spec.bits) - 1 + _zero_point_wrap(spec.bits),
        "dsp_addends": [r.dsp_addend(spec.bits) if r.dsp_shift is not None else 0 for r in routes],
        # the sum bound of the 32-bit path of a two-width design, as a power of two
        "narrow_sum_log2": routes[0].shift_high - dsg.precision + spec.bits,
        "mve": has_mve_path(dsg),
        "mve32": has_mve32_path(dsg),
        "out_utype": "uint8_t" if spec.bits <= 8 else "uint16_t",
        "sat_max": (1 << (spec.bits - 1)) - 1,
        # the zero point as it wraps in the low byte of a 32-bit Helium lane
        "zero_point_wrap": _zero_point_wrap(spec.bits),
        "size": dsg.optimize == "size",
        "unroll_mask": dsg.unroll - 1,
        "sum_msb": dsg.sum_bits - 1,
        # optimize size: the normalizing shift loop runs until this bit is set, at most
        # sum_bits - bits(top) times (the sum is at least top)
        "sum_top_bit": 1 << (dsg.sum_bits - 1),
        "normalize_loop_steps": dsg.sum_bits - dsg.top.bit_length(),
        "recip_bits": dsg.precision + 1,
        # full layout: reversed entries below this index (d >= nonzero) are stored as 0
        "zero_entries_below": 256 - dsg.nonzero,
    }


def scratch_bytes(dsg: LutDesign) -> int:
    """Bytes of the caller's scratch row: one table entry for each element of the longest row."""
    return dsg.spec.max_row * dsg.entry_bits // 8


def has_mve_path(dsg: LutDesign) -> bool:
    """Whether the C gets the 16-bit Helium (MVE) path: its gather loads read 16-bit entries of
    the full table, its lanes hold 32-bit sums and products, and its byte store needs int8
    output. Not with a scratch row: the gathers already make the table cheap to read twice."""
    spec = dsg.spec
    return (
        spec.scratch_row == "off"
        and dsg.entry_bits == 16
        and dsg.sum_bits == 32
        and dsg.product_bits == 32
        and spec.bits <= 8
        and spec.table_layout == "full"
    )


def has_mve32_path(dsg: LutDesign) -> bool:
    """Whether the C gets the 32-bit Helium path (32-bit entries, four lanes): full table,
    32-bit sums, int8 output, and a lane form (``Path.mve_shift``) for every path; not with a
    scratch row, as ``has_mve_path``."""
    spec = dsg.spec
    return (
        spec.scratch_row == "off"
        and dsg.entry_bits == 32
        and dsg.sum_bits == 32
        and spec.bits <= 8
        and spec.table_layout == "full"
        and all(r.mve_shift is not None for r in paths(dsg))
    )


#: Largest P for the reciprocal from 32-bit products: q < 2^(P+2) must keep q * (den >> 16)
#: below 2^32.
MUL32_MAX_PRECISION = 14


def has_mul32_reciprocal(dsg: LutDesign) -> bool:
    """Whether the C gets the reciprocal built from 32 x 32 -> 32-bit products (for cores with a
    multiply but no cheap 64-bit one, such as Cortex-M0+): 32-bit sums and P <= 14, so that
    its product q * den splits into two 32-bit products. Not for ``optimize=size``: it costs
    about 250 bytes of code on Cortex-M0+ for about 50 instructions per row. Not where the
    seeded reciprocal (``recip_seed``) applies: that one needs only 32-bit products too, and
    serves every core with a multiply."""
    return (
        dsg.sum_bits == 32
        and dsg.precision <= MUL32_MAX_PRECISION
        and dsg.spec.optimize != "size"
        and recip_seed(dsg) is None
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


#: Index bits of the reciprocal's seed table: the top bits of the normalized sum after its
#: leading one. Seven give a relative seed error below 2^-8, which one Newton step squares.
SEED_INDEX_BITS = 7

#: Newton scale of the seeded reciprocal: the step's result x approximates 2^28 / D.
SEED_STEP_SCALE = 28


@dataclass(frozen=True)
class RecipSeed:
    """The seeded reciprocal: a seed table, one Newton step from 32-bit products, one exact
    correction. ``R = round(2^(32 + P) / den)`` for ``den = sum << k`` in [2^31, 2^32).

    The sum is below ``2^(32 - z)``, so den has z low zero bits and ``dz = den >> z`` is exact.
    With ``D = den / 2^32``:

    1. ``r0 = S[j]``, j the 7 bits of den after its leading one: ``X0 = r0 / 2^F ~ 1/D`` on
       that cell (``S[j] = round(2^F * 2 / (D_lo + D_hi))``).
    2. ``E = 2^Es (1 - D X0) + 2^(Es - 7)`` is ``bias - dz * r0`` modulo 2^32 (``Es = 32 - z + F
       >= 32``, so 2^Es vanishes), exact because ``|1 - D X0| < 2^-7``: E lies in (0, 2^(Es - 6)).
    3. ``x = r0 2^(G - F) + floor(r0 floor(E / 2^a) / 2^b) - r0 2^(G - F - 7)``, G = 28, with
       ``a + b = Es - G + F``: that is ``2^G X0 (1 + e)``, e = 1 - D X0, minus the two floors.
       ``X0 (1 + e) = (1 - e^2) / D``, so x never exceeds ``2^G / D``, and falls short of it by
       less than ``2^G (e^2 / D + 2^(1 + a - Es)) + 1``.
    4. ``r = (x + 2^(G - P - 1)) >> (G - P)`` is then at most ``R`` and at least ``R - 1``
       because ``2^P (e^2 / D + 2^(1 + a - Es) + 2^-G) < 1`` on every cell (``seed_margin``).
    5. ``R = r + 1`` exactly when ``(2r + 1) den <= 2^(33 + P)``; with ``V = 2^(33 + P - z) -
       (2r + 1) dz``, ``|V| < 2 dz < 2^31``, so V is known from its value modulo 2^32 (where
       ``2^(33 + P - z)`` vanishes) and its sign bit is the answer.
    """

    zero_bits: int  #: z: low bits of den that are always zero
    seed_bits: int  #: F: the seeds carry X0 * 2^F
    table: np.ndarray  #: S[j], uint16, 2^SEED_INDEX_BITS entries
    error_scale: int  #: Es
    e_shift: int  #: a
    product_shift: int  #: b
    worst: float  #: max over cells of 2^P (e^2 / D + 2^(1 + a - Es) + 2^-G), < 1

    @property
    def bias(self) -> int:
        """2^(Es - 7): keeps E non-negative for seeds off by up to 2^-7."""
        return 1 << (self.error_scale - 7)


def recip_seed(dsg: LutDesign) -> RecipSeed | None:
    """The seeded reciprocal for this design, or None where it does not apply: 32-bit sums,
    P <= 14, at least 6 zero bits below the largest sum, and not ``optimize`` size (its table
    is 256 bytes)."""
    if dsg.sum_bits != 32 or dsg.optimize == "size" or dsg.precision > 14:
        return None
    P = dsg.precision
    z = 32 - (dsg.spec.max_row * dsg.top).bit_length()
    if z < 6 or 33 + P - z < 32:
        return None
    F = min(15, z + 6)
    Es = 32 - z + F
    G = SEED_STEP_SCALE
    # r0 <= 2^(F+1) and E < 2^(Es - 6): r0 * (E >> a) must stay below 2^32
    a = max(0, Es + F - 37)
    b = Es - G + F - a
    cells = 1 << SEED_INDEX_BITS
    seeds = []
    worst = 0.0
    for j in range(cells):
        lo, hi = (cells + j) / (2 * cells), (cells + j + 1) / (2 * cells)
        s = int(round_half_up((1 << F) * 2 / (lo + hi)))
        x0 = s / (1 << F)
        for d in (lo, hi):  # e^2 / D is convex in D: its largest value is at an end
            e = 1 - d * x0
            if not abs(e) < 2.0**-7:
                return None
            worst = max(worst, (1 << P) * (e * e / d + 2.0 ** (1 + a - Es) + 2.0**-G))
        seeds.append(s)
    if not worst < 1 - 1e-6 or max(seeds) > 0xFFFF:
        return None
    table = np.array(seeds, dtype=np.uint16)
    return RecipSeed(z, F, table, Es, a, b, worst)


@dataclass(frozen=True)
class RecipDivide:
    """The reciprocal from the core's 32-bit divide instruction, for cores where it is fast.
    ``R = round(2^(32 + P) / den) = (Q + 1) >> 1`` with ``Q = floor(2^(33 + P) / den)``, the same
    bits as the seeded and Newton reciprocals.

    den = sum << k has z low zero bits (sum < 2^(32 - z)), so ``dz = den >> z`` is exact and
    ``Q = floor(2^E / dz)``, ``E = 33 + P - z``. Where E <= 31 that is one division. Otherwise
    two: ``2^31 = q1 dz + r1`` with ``0 <= r1 < dz < 2^(32 - z)``, and then
    ``Q = q1 2^s + floor(r1 2^s / dz)`` with ``s = E - 31``, exact by the division identity;
    ``r1 2^s`` stays below 2^32 when ``s <= z``, the condition for this form.
    """

    zero_bits: int  #: z
    exponent: int  #: E

    @property
    def split(self) -> int:
        """s: the second division's shift, 0 where one division suffices."""
        return max(0, self.exponent - 31)


def recip_divide(dsg: LutDesign) -> RecipDivide | None:
    """The divide-instruction reciprocal for this design (see ``RecipDivide``), or None where
    the sum is 64 bits wide or ``r1 2^s`` could overflow 32 bits (s > z)."""
    if dsg.sum_bits != 32:
        return None
    z = 32 - (dsg.spec.max_row * dsg.top).bit_length()
    exponent = 33 + dsg.precision - z
    if exponent - 31 > z:
        return None
    return RecipDivide(z, exponent)


def seed_constants(dsg: LutDesign) -> dict[str, object] | None:
    """The numbers the seeded reciprocal's C prints (see ``RecipSeed``), or None."""
    seed = recip_seed(dsg)
    if seed is None:
        return None
    G, F, P = SEED_STEP_SCALE, seed.seed_bits, dsg.precision
    return {
        "table": seed.table,
        "cells": len(seed.table),
        "index_bits": SEED_INDEX_BITS,
        "index_shift": 31 - SEED_INDEX_BITS,
        "z": seed.zero_bits,
        "F": F,
        "Es": seed.error_scale,
        "bias": seed.bias,
        "bias_log2": seed.error_scale - 7,
        "a": seed.e_shift,
        "b": seed.product_shift,
        "G": G,
        "lead": G - F,
        "bias_shift": G - F - 7,
        "round_shift": G - P,
        "round_half": 1 << (G - P - 1),
        "sum_log2": 32 - seed.zero_bits,
        "check_log2": 33 + P - seed.zero_bits,
        # the generator's bound on 2^P (e^2 / D + floors) over all cells, rounded up
        "worst": f"{math.ceil(seed.worst * 1000) / 1000:.3f}",
    }


def clamp_limit(dsg: LutDesign) -> int:
    """The smallest S such that no row whose sum is S or more has an output reaching 2^B.

    Only the row maximum (t = top) can reach 2^B: its q is ``(top R + 2^(h-1)) >> h`` with
    ``R <= 2^(n+P) / S + 1/2`` and ``h = n + P - B >= bits(top) + P - B``, so q is below
    ``2^B top / S + top / 2^(h+1) + 1/2``, which is below 2^B once
    ``S > 2^B top / (2^B - 1/2 - top / 2^(h+1))``. Below that bound, q does not grow with S:
    for a fixed bit length n neither does R, and from S = 2^m - 1 to 2^m (n and h one more) R
    goes from round(2^(m+P) / (2^m - 1)) >= 2^P to exactly 2^(P+1), which halves back to at most
    the previous q. So a binary search finds the first S whose maximum stays below 2^B.
    """
    B, P, W = dsg.spec.bits, dsg.precision, dsg.sum_bits
    h_min = dsg.top.bit_length() + P - B
    # exact rational bound, rounded up: S above it cannot reach 2^B
    num = (1 << B) * dsg.top * (1 << (h_min + 2))
    den = ((1 << B) << (h_min + 2)) - (1 << (h_min + 1)) - 2 * dsg.top
    bound = min(-(-num // den), dsg.spec.max_row * dsg.top)

    def reaches(s: int) -> bool:
        k = normalize_shift(s, W)
        h = W - k + P - B
        q = (dsg.top * reciprocal(s << k, W, P) + (1 << (h - 1))) >> h
        return bool(q >= 1 << B)

    lo, hi = dsg.top, bound + 1  # the answer lies in [lo, hi]; no sum above bound reaches 2^B
    while lo < hi:
        mid = (lo + hi) // 2
        if reaches(mid):
            lo = mid + 1
        else:
            hi = mid
    return lo
