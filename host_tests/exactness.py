"""The bit-exactness checks every method's tests share: compiled C against the numpy reference.

Each method's test module picks its own specs, row lengths and seeds; the checks themselves, and
the mismatch report ('pos i: act X ref Y' and a count), live here once.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pytest
import rows
from cbuild import Kernel

from lutcodegen import reference
from lutcodegen.methods import Design


def assert_equal(actual: np.ndarray, expected: np.ndarray) -> None:
    """Fails with the first mismatching positions, as 'pos i: act X ref Y', and a count."""
    bad = np.argwhere(actual != expected)
    if len(bad):
        lines = [
            f"pos {tuple(int(v) for v in p)}: act {actual[tuple(p)]} ref {expected[tuple(p)]}"
            for p in bad[:10]
        ]
        pytest.fail(f"{len(bad)} mismatches of {actual.size}:\n" + "\n".join(lines))


def check(kernel: Kernel, dsg: Design, x: np.ndarray) -> None:
    """The C and the reference agree on the int8 rows ``x``."""
    assert_equal(kernel(x), reference(dsg, x))


def check_short_rows(kernel: Kernel, dsg: Design, longest: int) -> None:
    """Every table index and the edge rows, for every row length up to ``longest``."""
    for length in range(1, min(longest, dsg.spec.max_row) + 1):
        check(kernel, dsg, np.concatenate([rows.every_difference(length), rows.edge_rows(length)]))


def check_random_rows(
    kernel: Kernel, dsg: Design, rng: np.random.Generator, lengths: Iterable[int], min_rows: int
) -> None:
    """Uniform and attention-like rows at each of ``lengths`` that the kernel accepts."""
    spec = dsg.spec
    for length in sorted({n for n in lengths if 1 <= n <= spec.max_row}):
        count = max(min_rows, 20000 // length)
        for x in (rows.uniform(rng, count, length), rows.gaussian(rng, count, length, spec.scale)):
            check(kernel, dsg, x)


def check_edge_rows_at_max_row(kernel: Kernel, dsg: Design) -> None:
    """Edge rows and the worst case of the summed table error, at the longest accepted row."""
    n = dsg.spec.max_row
    check(kernel, dsg, np.concatenate([rows.edge_rows(n), rows.peak_and_plateau(n)]))


def check_in_place(kernel: Kernel, dsg: Design, seed: int) -> None:
    """``output == input`` gives the same outputs as separate buffers (int8 output)."""
    x = rows.uniform(np.random.default_rng(seed), 50, 40)
    expected = reference(dsg, x)
    buf = x.copy()
    assert kernel.status(buf, 50, 40, buf) == 0
    assert_equal(buf.astype(np.int64), expected)
