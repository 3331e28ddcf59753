"""The generated C equals the numpy reference bit for bit (the reference is the spec)."""

from __future__ import annotations

import numpy as np
import pytest
import rows
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lutcodegen import Spec, design_for, reference

CONFIGS = [
    Spec(),
    Spec(bits=16),
    Spec(bits=2),
    Spec(bits=4, input_scale=0.25),
    Spec(bits=12, input_scale=1 / 64),
    Spec(bits=8, input_scale=1.0),
    Spec(bits=8, input_scale=1 / 64, beta=0.5),
    Spec(bits=8, max_row=4096),
    Spec(bits=16, max_row=4096),
    Spec(bits=8, max_row=1024, input_scale=0.25),
    Spec(bits=9, max_row=64, input_scale=0.01),
    Spec(bits=8, input_scale=50.0),
    Spec(table_layout="compact"),
    Spec(bits=16, table_layout="compact", max_row=1000),
    Spec(bits=3, table_layout="compact", input_scale=0.5),
    Spec(unroll=1),
    Spec(unroll=2, bits=16, max_row=5000),
    Spec(unroll=8, table_layout="compact", max_row=300),
]


def _ids(spec: Spec) -> str:
    return (f"b{spec.bits}-s{spec.input_scale:g}-beta{spec.beta:g}-n{spec.max_row}-"
            f"{spec.table_layout}-u{spec.unroll}")


def assert_equal(actual: np.ndarray, expected: np.ndarray) -> None:
    """Fails with the first mismatching positions, as 'pos i: act X ref Y', and a count."""
    bad = np.argwhere(actual != expected)
    if len(bad):
        lines = [f"pos {tuple(int(v) for v in p)}: act {actual[tuple(p)]} ref {expected[tuple(p)]}"
                 for p in bad[:10]]
        pytest.fail(f"{len(bad)} mismatches of {actual.size}:\n" + "\n".join(lines))


@pytest.mark.parametrize("spec", CONFIGS, ids=_ids)
def test_every_table_index_and_short_length(spec: Spec, build_kernel) -> None:
    dsg = design_for(spec)
    kernel = build_kernel(dsg)
    for length in range(1, min(64, spec.max_row) + 1):
        x = np.concatenate([rows.every_difference(length), rows.edge_rows(length)])
        assert_equal(kernel(x), reference(dsg, x))


@pytest.mark.parametrize("spec", CONFIGS, ids=_ids)
def test_random_rows_up_to_max_row(spec: Spec, build_kernel) -> None:
    dsg = design_for(spec)
    kernel = build_kernel(dsg)
    rng = np.random.default_rng(spec.max_row + spec.bits)
    candidates = {1, 2, 3, 17, 100, spec.max_row // 2, spec.max_row - 1, spec.max_row}
    lengths = sorted(n for n in candidates if 1 <= n <= spec.max_row)
    for length in lengths:
        count = max(2, 20000 // length)
        for x in (rows.uniform(rng, count, length), rows.gaussian(rng, count, length, spec.scale)):
            assert_equal(kernel(x), reference(dsg, x))


@pytest.mark.parametrize("spec", CONFIGS, ids=_ids)
def test_edge_rows_at_max_row(spec: Spec, build_kernel) -> None:
    dsg = design_for(spec)
    kernel = build_kernel(dsg)
    x = np.concatenate([rows.edge_rows(spec.max_row), rows.peak_and_plateau(spec.max_row)])
    assert_equal(kernel(x), reference(dsg, x))


def test_in_place_int8(build_kernel) -> None:
    dsg = design_for(Spec())
    kernel = build_kernel(dsg)
    x = rows.uniform(np.random.default_rng(1), 50, 40)
    expected = reference(dsg, x)
    buf = x.copy()
    assert kernel.status(buf, 50, 40, buf) == 0
    assert_equal(buf.astype(np.int64), expected)


@settings(max_examples=60, deadline=None)
@given(
    bits=st.integers(2, 16),
    scale=st.floats(1e-3, 8.0),
    max_row=st.sampled_from([1, 7, 64, 300, 2048]),
    layout=st.sampled_from(["full", "compact"]),
    unroll=st.sampled_from([1, 2, 4, 8]),
    data=st.data(),
)
def test_hypothesis_options_and_rows(bits, scale, max_row, layout, unroll, data,
                                     build_kernel) -> None:
    dsg = design_for(Spec(bits=bits, input_scale=scale, max_row=max_row, table_layout=layout,
                          unroll=unroll))
    kernel = build_kernel(dsg)
    length = data.draw(st.integers(1, max_row))
    x = data.draw(hnp.arrays(np.int8, (data.draw(st.integers(1, 4)), length)))
    assert_equal(kernel(x), reference(dsg, x))
