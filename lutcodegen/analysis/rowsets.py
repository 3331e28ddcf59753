"""Row sets for testing and for measuring accuracy: random, attention-like, edge cases, and
rows that reach every table index.

Every generator is deterministic given its ``numpy.random.Generator``, so a failure or a
published figure reproduces exactly.
"""

from __future__ import annotations

import numpy as np


def uniform(rng: np.random.Generator, rows: int, length: int) -> np.ndarray:
    return rng.integers(-128, 128, size=(rows, length)).astype(np.int8)


def gaussian(rng: np.random.Generator, rows: int, length: int, scale: float) -> np.ndarray:
    """Attention-like logits: real-valued N(0, sigma) with sigma from 0.5 to 4, quantized."""
    sigma = rng.uniform(0.5, 4.0, size=(rows, 1)) / scale
    center = rng.uniform(-64, 64, size=(rows, 1))
    x = np.rint(center + sigma * rng.standard_normal((rows, length)))
    return np.clip(x, -128, 127).astype(np.int8)


def edge_rows(length: int) -> np.ndarray:
    """All equal (three levels), all -128, one max with the rest minimal, ramp, alternating."""
    out = [
        np.full(length, 0),
        np.full(length, 127),
        np.full(length, -128),
        np.concatenate([[127], np.full(length - 1, -128)]),
        np.concatenate([np.full(length - 1, -128), [127]]),
        np.linspace(-128, 127, length).round(),
        np.where(np.arange(length) % 2 == 0, 127, -128),
        np.concatenate([[-127], np.full(length - 1, -128)]),
    ]
    return np.array(out).astype(np.int8)


def every_difference(length: int) -> np.ndarray:
    """Rows hitting every table index d = max - x (0..255): one max, the rest at max - d."""
    d = np.arange(256)
    rows = np.repeat((127 - d)[:, None], length, axis=1)
    rows[:, 0] = 127
    return rows.astype(np.int8)


def peak_and_plateau(length: int) -> np.ndarray:
    """One maximum and all others at one lower level: the worst case for summed table error."""
    return every_difference(length)


# --- int16 rows (TFLite's 16x8 mode) -------------------------------------------------------


def uniform16(rng: np.random.Generator, rows: int, length: int) -> np.ndarray:
    """int16 logits uniform over the whole range."""
    return rng.integers(-32768, 32768, size=(rows, length)).astype(np.int16)


def gaussian16(rng: np.random.Generator, rows: int, length: int, scale: float) -> np.ndarray:
    """Attention-like int16 logits: N(0, sigma) with sigma from 0.5 to 4 in real units."""
    sigma = rng.uniform(0.5, 4.0, size=(rows, 1)) / scale
    center = rng.uniform(-16384, 16384, size=(rows, 1))
    x = np.rint(center + sigma * rng.standard_normal((rows, length)))
    return np.clip(x, -32768, 32767).astype(np.int16)


def edge_rows16(length: int) -> np.ndarray:
    """The int8 edge rows at the int16 extremes: equal, -32768, one max, ramp, alternating."""
    out = [
        np.full(length, 0),
        np.full(length, 32767),
        np.full(length, -32768),
        np.concatenate([[32767], np.full(length - 1, -32768)]),
        np.concatenate([np.full(length - 1, -32768), [32767]]),
        np.linspace(-32768, 32767, length).round(),
        np.where(np.arange(length) % 2 == 0, 32767, -32768),
        np.concatenate([[-32767], np.full(length - 1, -32768)]),
    ]
    return np.array(out).astype(np.int16)


def every_difference16(length: int, step: int = 1, offset: int = 0) -> np.ndarray:
    """Rows reaching the differences d = offset, offset + step, ... < 65536 (every table entry
    with step 1): one maximum 32767, the rest at 32767 - d."""
    d = np.arange(offset, 65536, step)
    rows = np.repeat((32767 - d)[:, None], length, axis=1)
    rows[:, 0] = 32767
    return rows.astype(np.int16)
