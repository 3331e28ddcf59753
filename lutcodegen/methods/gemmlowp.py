"""TFLite's int8 softmax arithmetic, written from its definition, on exact Python integers.

TFLite Micro (and CMSIS-NN, bit-identically) compute int8 softmax with gemmlowp's 32-bit
fixed-point primitives. Reproducing their outputs bit for bit means reproducing every rounding
step, so each primitive here states its exact integer semantics: int32 operands, C++ truncating
division, arithmetic right shifts, and the saturation gemmlowp specifies. Python integers never
overflow, so every place where the C++ would wrap is checked and raises instead: if a check ever
fired, the C++ would be relying on undefined behaviour and "bit-exact" would mean nothing.

Notation: a raw int32 ``v`` in format Qm.n (m integer bits, n = 31 - m fraction bits) stands for
the real number ``v / 2^n``.
"""

from __future__ import annotations

import math
from fractions import Fraction

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1

#: Integer bits of the exp argument (Q5.26) and of the sum of exps (Q12.19), as TFLite fixes them.
SCALED_DIFF_INTEGER_BITS = 5
ACCUMULATION_INTEGER_BITS = 12

#: exp(-2^k) in Q0.31 for k = -2 .. 4, gemmlowp's barrel-shifter constants.
_EXP_BARREL = (
    (-2, 1672461947),
    (-1, 1302514674),
    (0, 790015084),
    (1, 290630308),
    (2, 39332535),
    (3, 720401),
    (4, 242),
)
#: exp(-1/8) and 1/3 in Q0.31: the Taylor polynomial of exp on [-1/4, 0).
_EXP_MINUS_ONE_EIGHTH = 1895147668
_ONE_THIRD = 715827883
#: 48/17 and -32/17 in Q2.29: the Newton-Raphson start for 1/(1+x).
_48_OVER_17 = 1515870810
_NEG_32_OVER_17 = -1010580540


def checked(value: int) -> int:
    """``value`` if it fits int32; raises where the C++ would overflow (undefined behaviour)."""
    if not INT32_MIN <= value <= INT32_MAX:
        raise OverflowError(f"{value} does not fit int32")
    return value


def srdhm(a: int, b: int) -> int:
    """SaturatingRoundingDoublingHighMul: ``a * b / 2^31`` rounded half away from zero.

    The only overflow, INT32_MIN * INT32_MIN, saturates to INT32_MAX. The C++ adds a nudge of
    +2^30 (or 1 - 2^30 for negative products) and divides by 2^31 truncating toward zero.
    """
    if a == INT32_MIN and b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudged = ab + ((1 << 30) if ab >= 0 else 1 - (1 << 30))
    q = abs(nudged) >> 31
    return q if nudged >= 0 else -q


def rounding_divide_by_pot(x: int, exponent: int) -> int:
    """RoundingDivideByPOT: ``x / 2^exponent`` rounded to nearest, ties away from zero."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def saturating_shift_left(x: int, exponent: int) -> int:
    """SaturatingRoundingMultiplyByPOT for a positive exponent: ``x * 2^exponent``, saturated."""
    threshold = (1 << (31 - exponent)) - 1
    if x > threshold:
        return INT32_MAX
    if x < -threshold:
        return INT32_MIN
    return x << exponent


def rounding_half_sum(a: int, b: int) -> int:
    """RoundingHalfSum: ``(a + b) / 2`` rounded half away from zero, in 64-bit arithmetic."""
    total = a + b
    nudged = total + (1 if total >= 0 else -1)
    q = abs(nudged) // 2
    return q if nudged >= 0 else -q


def exp_on_interval_between_negative_one_quarter_and_0_excl(a: int) -> int:
    """exp(a) for a in [-1/4, 0), Q0.31 in and out: 4th-order Taylor polynomial around -1/8."""
    x = checked(a + (1 << 28))  # a + 1/8
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = rounding_divide_by_pot(checked(srdhm(checked(x4_over_4 + x3), _ONE_THIRD) + x2), 1)
    return checked(_EXP_MINUS_ONE_EIGHTH + srdhm(_EXP_MINUS_ONE_EIGHTH, checked(x + poly)))


def exp_on_negative_values(a: int) -> int:
    """gemmlowp ``exp_on_negative_values`` for a Q5.26 argument a <= 0; result in Q0.31.

    exp(a) = exp(a mod 1/4 - 1/4) * prod over set bits k of (-a rounded) of exp(-2^k): the
    polynomial covers the last quarter, seven constant factors the rest (down to -32).
    """
    if not INT32_MIN <= a <= 0:
        raise ValueError(f"argument {a} is not a non-positive int32")
    fraction_bits = 31 - SCALED_DIFF_INTEGER_BITS
    one_quarter = 1 << (fraction_bits - 2)
    a_mod_quarter_minus_one_quarter = (a & (one_quarter - 1)) - one_quarter
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        saturating_shift_left(a_mod_quarter_minus_one_quarter, SCALED_DIFF_INTEGER_BITS)
    )
    remainder = checked(a_mod_quarter_minus_one_quarter - a)
    for exponent, multiplier in _EXP_BARREL:
        if remainder & (1 << (fraction_bits + exponent)):
            result = srdhm(result, multiplier)
    return INT32_MAX if a == 0 else result


def one_over_one_plus_x_for_x_in_0_1(a: int) -> int:
    """gemmlowp ``one_over_one_plus_x_for_x_in_0_1``: 1/(1+a), a in [0, 1) in Q0.31, result Q0.31.

    Three Newton-Raphson steps on the half denominator (1+a)/2 in Q2.29; no division.
    """
    half_denominator = rounding_half_sum(a, INT32_MAX)
    one_q2 = 1 << 29
    x = checked(_48_OVER_17 + srdhm(half_denominator, _NEG_32_OVER_17))
    for _ in range(3):
        half_denominator_times_x = srdhm(half_denominator, x)
        one_minus = checked(one_q2 - half_denominator_times_x)
        x = checked(x + saturating_shift_left(srdhm(x, one_minus), 2))
    return saturating_shift_left(x, 1)


def reciprocal(sum_of_exps: int) -> tuple[int, int]:
    """TFLite's ``GetReciprocal(sum, 12, &num_bits_over_unit)`` for a Q12.19 sum.

    ``sum_of_exps`` is the sum read as unsigned 32 bits (TFLite casts it so before counting
    leading zeros). Returns (shifted_scale in Q0.31, num_bits_over_unit):
    1/sum = shifted_scale * 2^-num_bits_over_unit.
    """
    if not 1 <= sum_of_exps < 1 << 32:
        raise ValueError(f"sum {sum_of_exps} outside [1, 2^32)")
    headroom_plus_one = 32 - sum_of_exps.bit_length()
    num_bits_over_unit = ACCUMULATION_INTEGER_BITS - headroom_plus_one
    shifted_sum_minus_one = ((sum_of_exps << headroom_plus_one) - (1 << 31)) & 0xFFFFFFFF
    return one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), num_bits_over_unit


def tflite_round(x: Fraction) -> int:
    """``TfLiteRound`` (std::round): nearest integer, ties away from zero."""
    n = math.floor(abs(x) + Fraction(1, 2))
    return n if x >= 0 else -n


def quantize_multiplier(real: float) -> tuple[int, int]:
    """``QuantizeMultiplier``: (q, shift) with real ~= q * 2^(shift - 31), q in [2^30, 2^31)."""
    if real == 0:
        return 0, 0
    mantissa, shift = math.frexp(real)
    q = tflite_round(Fraction(mantissa) * (1 << 31))
    if q == 1 << 31:
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q, shift


def as_float32(name: str, value: float) -> float:
    """``value`` rounded to float32, as a TFLite model stores it; ``ValueError`` when that rounds
    to infinity: no TFLite model can hold such a scale or beta, so no kernel is made for it."""
    import numpy as np  # local: keeps this module's import light for the CLI

    with np.errstate(over="ignore"):  # the overflow is the error below, not a warning
        rounded = float(np.float32(value))
    if not math.isfinite(rounded):
        raise ValueError(
            f"{name} is beyond float32's range (at most about 3.4e38), in which TFLite stores "
            f"it; got {value!r}"
        )
    return rounded


def softmax_params(input_scale: float, beta: float) -> tuple[int, int, int]:
    """(input_multiplier, input_left_shift, diff_min) exactly as TFLite Micro's Prepare computes.

    TFLite stores scale and beta as float32 in the model, so both are rounded to float32 first;
    their double product is then exact. The real multiplier beta * scale * 2^26 (Q5.26 input to
    exp) is capped at 2^31 - 1, which TFLite's QuantizeMultiplierGreaterThanOne requires > 1.
    """
    s32 = as_float32("input_scale", input_scale)
    b32 = as_float32("beta", beta)
    real = min(b32 * s32 * float(1 << (31 - SCALED_DIFF_INTEGER_BITS)), float((1 << 31) - 1))
    if not real > 1.0:
        raise ValueError(
            f"beta * input_scale * 2^26 = {real!r} must exceed 1 (TFLite rejects it otherwise)"
        )
    multiplier, left_shift = quantize_multiplier(real)
    if left_shift < 0:
        raise ValueError(f"TFLite requires a non-negative left shift; got {left_shift}")
    return multiplier, left_shift, -input_radius(left_shift)


def input_radius(left_shift: int) -> int:
    """``CalculateInputRadius(5, left_shift, 31)``: largest |diff| whose rescaled value fits Q5.26.

    floor((2^5 - 1) * 2^26 / 2^left_shift), computed exactly (TFLite uses a double; the value is
    a dyadic rational well inside double precision, so both agree).
    """
    numerator = ((1 << SCALED_DIFF_INTEGER_BITS) - 1) << (31 - SCALED_DIFF_INTEGER_BITS)
    return numerator >> left_shift


def exp_of_difference(d: int, multiplier: int, left_shift: int, diff_min: int) -> int:
    """TFLite's per-element exp for ``diff = -d`` (d = max - x >= 0), Q0.31; 0 where skipped.

    Elements with diff < diff_min are skipped by TFLite: they add nothing to the sum and output
    the minimum, which is exactly what a 0 here produces downstream.
    """
    diff = -d
    if diff < diff_min:
        return 0
    if diff and left_shift > 30:
        raise OverflowError("1 << left_shift overflows int32 for a non-zero difference")
    rescaled = srdhm(checked(diff * (1 << left_shift)), multiplier)
    return exp_on_negative_values(rescaled)
