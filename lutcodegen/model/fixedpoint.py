"""Integer arithmetic of the attention model's kernels, with the exact semantics of their C.

One definition each, matching ``templates/model/attention_kernels.c.j2``. All values are numpy
int64 (or Python ints); the C uses int32 accumulators and int64 products.

Two helpers look like ones elsewhere but are deliberately separate:

- ``quantize_multiplier`` here rounds the 31-bit mantissa half to even (numpy) and returns a
  right shift clamped to ``max_shift``; ``methods.gemmlowp.quantize_multiplier`` is TFLite's,
  which rounds ties away from zero and returns TFLite's exponent. Merging them would change
  either TFLite's bits or the model's weights on a tie.
- ``reciprocal_round`` (and its C, ``<prefix>_reciprocal`` in the attention kernels) divides by
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
    """int8 ``saturate(rshift_round(acc * mult, shift))``: one rounding, 64-bit product.

    ``mult * 2^-shift`` is the real rescaling factor (see ``quantize_multiplier``).
    """
    prod = np.asarray(acc, dtype=np.int64) * np.asarray(mult, dtype=np.int64)
    return saturate(rshift_round(prod, shift))


def quantize_multiplier(real: float, max_shift: int = 62) -> tuple[int, int]:
    """``(mult, shift)`` with ``mult`` in [2^30, 2^31) and ``real ~= mult * 2^-shift``.

    A 31-bit mantissa keeps the relative error below 2^-31; the shift is at most ``max_shift``
    (tiny factors lose mantissa bits instead), and at least 1.
    """
    if not (real > 0 and np.isfinite(real)):
        raise ValueError(f"multiplier must be positive and finite, got {real}")
    mantissa, exponent = np.frexp(real)  # real = mantissa * 2^exponent, mantissa in [0.5, 1)
    shift = 31 - int(exponent)
    mult = int(np.round(float(mantissa) * (1 << 31)))
    if mult == 1 << 31:
        mult, shift = 1 << 30, shift - 1
    if shift > max_shift:
        mult = int(np.round(mult / 2.0 ** (shift - max_shift)))
        shift = max_shift
    if shift < 1:
        raise ValueError(f"multiplier {real} too large for a 31-bit mantissa and shift >= 1")
    return mult, shift


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
