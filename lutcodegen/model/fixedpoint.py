"""Integer arithmetic of the attention model's kernels, with the exact semantics of their C.

One definition each, matching ``templates/model/attention_kernels.c.j2``. All values are numpy
int64 (or Python ints); the C uses int32 accumulators and int64 products.

The requantization of the linear layers and the attention products is TFLite's (and CMSIS-NN's
``arm_nn_requantize``): ``requantize`` here is the vectorized form of
``methods.gemmlowp``'s scalar ``srdhm`` and ``rounding_divide_by_pot``, which reproduce TFLite's
``MultiplyByQuantizedMultiplier`` for ``--method tflite``; a test holds the two equal. Its
multipliers come from TFLite's own ``QuantizeMultiplier`` (``methods.gemmlowp``), so an int8
model converted by TFLite and this one rescale the same accumulator to the same int8 value.

``reciprocal_round`` (and its C, ``<prefix>_reciprocal`` in the attention kernels) divides by
any ``den >= 1``; the softmax ``lut`` reciprocal (``fixedpoint.reciprocal``) takes only a
denominator normalized to the top bit of its width, which is what makes its short loop exact.
"""

from __future__ import annotations

import numpy as np

#: Bound on |value| accepted by ``rshift_round``; the C adds 2^62 to work in unsigned 64 bits.
RSHIFT_LIMIT = 1 << 62


def rshift_round(value: np.ndarray | int, shift: np.ndarray | int) -> np.ndarray:
    """``floor((value + 2^(shift-1)) / 2^shift)``: round to nearest, ties toward +infinity.

    Requires ``|value| < 2^62`` and ``1 <= shift <= 62``. C has no portable arithmetic right
    shift of negative numbers (it is implementation-defined), so the C form offsets the value by
    2^62, shifts as unsigned and subtracts ``2^(62 - shift)``; numpy's ``>>`` on int64 is a floor
    shift, which is the same function.
    """
    v = np.asarray(value, dtype=np.int64)
    s = np.asarray(shift, dtype=np.int64)
    if np.any(np.abs(v) >= RSHIFT_LIMIT) or np.any(s < 1) or np.any(s > 62):
        raise OverflowError("rshift_round outside |value| < 2^62, 1 <= shift <= 62")
    result: np.ndarray = (v + (np.int64(1) << (s - 1))) >> s
    return result


def saturate(value: np.ndarray, bits: int = 8) -> np.ndarray:
    """Clamp to the signed ``bits``-bit range."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return np.clip(np.asarray(value, dtype=np.int64), lo, hi)


def requantize(acc: np.ndarray, mult: np.ndarray | int, shift: np.ndarray | int) -> np.ndarray:
    """TFLite's int8 requantization: ``saturate(MultiplyByQuantizedMultiplier(acc, mult, shift))``.

    ``mult`` in [2^30, 2^31) and the exponent ``shift`` in [-31, 30] come from TFLite's
    ``QuantizeMultiplier`` (real factor ``mult * 2^(shift - 31)``). The value is
    ``x = acc * 2^max(shift, 0)``, then ``SaturatingRoundingDoublingHighMul(x, mult)``, which for
    ``mult > 0`` is ``floor((x * mult + 2^30) / 2^31)``, then ``RoundingDivideByPOT`` by
    ``max(-shift, 0)``: ties away from zero. Two roundings, as in TFLite, gemmlowp and CMSIS-NN
    (without its ``CMSIS_NN_USE_SINGLE_ROUNDING`` option). Raises where ``x`` would overflow
    int32, which is undefined behaviour in their C; the quantizer proves it cannot.
    """
    a = np.asarray(acc, dtype=np.int64)
    m = np.asarray(mult, dtype=np.int64)
    s = np.asarray(shift, dtype=np.int64)
    if np.any(m < 1 << 30) or np.any(m >= 1 << 31) or np.any(s < -31) or np.any(s > 30):
        raise ValueError("requantize needs 2^30 <= mult < 2^31 and -31 <= shift <= 30")
    x = a << np.maximum(s, 0)
    if np.any(x < -(1 << 31)) or np.any(x >= 1 << 31):
        raise OverflowError("acc * 2^shift overflows int32")
    high = (x * m + (1 << 30)) >> 31
    right = np.maximum(-s, 0)
    # RoundingDivideByPOT: the magnitude rounded half up, the sign put back (ties away from 0).
    magnitude = (np.abs(high) + ((np.int64(1) << right) >> 1)) >> right
    return saturate(np.where(high < 0, -magnitude, magnitude))


def isqrt(value: np.ndarray) -> np.ndarray:
    """``floor(sqrt(value))`` of non-negative int64 values (the C iterates bit by bit)."""
    v = np.asarray(value, dtype=np.int64)
    if np.any(v < 0):
        raise ValueError("isqrt of a negative value")
    r = np.floor(np.sqrt(v.astype(np.float64))).astype(np.int64)
    for _ in range(2):  # float sqrt is off by at most one for values below 2^62
        r = np.where(r * r > v, r - 1, r)
        r = np.where((r + 1) * (r + 1) <= v, r + 1, r)
    return r


def reciprocal_round(den: np.ndarray, bits: int) -> np.ndarray:
    """``round(2^bits / den)`` (ties up) for ``den >= 1``, ``bits <= 30``.

    C computes ``floor(2^(bits+1) / den)`` by restoring shift-and-subtract (no divide
    instruction, which Cortex-M0+ lacks) and halves it with rounding.
    """
    d = np.asarray(den, dtype=np.int64)
    if np.any(d < 1) or not 1 <= bits <= 30:
        raise ValueError("reciprocal_round needs den >= 1 and 1 <= bits <= 30")
    result: np.ndarray = (((np.int64(1) << (bits + 1)) // d) + 1) >> 1
    return result
