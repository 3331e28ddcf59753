"""Integer helpers with exactly the semantics of the C the templates emit.

The softmax methods' reference models use these; each integer helper has a C counterpart in the
method templates (``templates/softmax/``), and the host tests check the pair bit for bit, so the
reference model can use the short Python form with confidence. The attention model's own
arithmetic lives in ``lutcodegen.model.fixedpoint``.
"""

from __future__ import annotations

import numpy as np


def normalize_shift(value: int, width: int) -> int:
    """Left shift that brings ``value`` (1 <= value < 2^width) to [2^(width-1), 2^width).

    C computes it by a branch-per-bit binary search (no count-leading-zeros in C99).
    """
    if not 1 <= value < (1 << width):
        raise ValueError(f"value {value} outside [1, 2^{width})")
    return width - value.bit_length()


def reciprocal(denominator: int, width: int, precision: int) -> int:
    """``round(2^(width + precision) / denominator)`` (ties up) for a normalized denominator.

    ``denominator`` must lie in [2^(width-1), 2^width), so the result lies in
    [2^precision, 2^(precision+1)]. C computes it exactly without a divide: from a seed table, one
    Newton step and a test of the last bit, or as ``floor(2^(width + precision + 1) / den)`` by
    Newton's method plus a correction loop or by restoring shift-and-subtract, halved with
    rounding: the target may have no divider (Cortex-M0+) or a slow one. Rounding instead of
    truncating halves the reciprocal's share of the error and removes its bias.
    """
    if not (1 << (width - 1)) <= denominator < (1 << width):
        raise ValueError(f"denominator {denominator} is not normalized to {width} bits")
    return (((1 << (width + precision + 1)) // denominator) + 1) >> 1


def round_half_up(x: np.ndarray | float) -> np.ndarray:
    """Round to nearest, ties up: the rounding used to build every table."""
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5)


def softmax_float64(x: np.ndarray, scale: float) -> np.ndarray:
    """Ideal softmax of ``scale * x`` along the last axis, in float64 (the accuracy yardstick)."""
    z = np.asarray(x, dtype=np.float64) * scale
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    result: np.ndarray = e / e.sum(axis=-1, keepdims=True)
    return result


def ideal_output(x: np.ndarray, scale: float, bits: int) -> np.ndarray:
    """Correctly rounded quantized softmax ``min(round(2^B p), 2^B - 1) - 2^(B-1)``."""
    p = softmax_float64(x, scale)
    q = np.minimum(np.rint(p * (1 << bits)), (1 << bits) - 1)
    result: np.ndarray = q.astype(np.int64) - (1 << (bits - 1))
    return result
