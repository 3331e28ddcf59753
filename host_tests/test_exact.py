"""The generated C equals the numpy reference bit for bit (the reference is the spec)."""

from __future__ import annotations

import numpy as np
import pytest
from exactness import (
    assert_equal,
    check_edge_rows_at_max_row,
    check_in_place,
    check_random_rows,
    check_short_rows,
)
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
    return (
        f"b{spec.bits}-s{spec.input_scale:g}-beta{spec.beta:g}-n{spec.max_row}-"
        f"{spec.table_layout}-u{spec.unroll}"
    )


@pytest.mark.parametrize("spec", CONFIGS, ids=_ids)
def test_every_table_index_and_short_length(spec: Spec, build_kernel) -> None:
    dsg = design_for(spec)
    check_short_rows(build_kernel(dsg), dsg, 64)


@pytest.mark.parametrize("spec", CONFIGS, ids=_ids)
def test_random_rows_up_to_max_row(spec: Spec, build_kernel) -> None:
    dsg = design_for(spec)
    rng = np.random.default_rng(spec.max_row + spec.bits)
    n = spec.max_row
    check_random_rows(build_kernel(dsg), dsg, rng, {1, 2, 3, 17, 100, n // 2, n - 1, n}, 2)


@pytest.mark.parametrize("spec", CONFIGS, ids=_ids)
def test_edge_rows_at_max_row(spec: Spec, build_kernel) -> None:
    dsg = design_for(spec)
    check_edge_rows_at_max_row(build_kernel(dsg), dsg)


def test_in_place_int8(build_kernel) -> None:
    dsg = design_for(Spec())
    check_in_place(build_kernel(dsg), dsg, seed=1)


@settings(max_examples=60, deadline=None)
@given(
    bits=st.integers(2, 16),
    scale=st.floats(1e-3, 8.0),
    max_row=st.sampled_from([1, 7, 64, 300, 2048]),
    layout=st.sampled_from(["full", "compact"]),
    unroll=st.sampled_from([1, 2, 4, 8]),
    scratch_row=st.sampled_from(["off", "on"]),
    data=st.data(),
)
def test_hypothesis_options_and_rows(
    bits, scale, max_row, layout, unroll, scratch_row, data, build_kernel
) -> None:
    dsg = design_for(
        Spec(
            bits=bits,
            input_scale=scale,
            max_row=max_row,
            table_layout=layout,
            unroll=unroll,
            scratch_row=scratch_row,
        )
    )
    kernel = build_kernel(dsg)
    length = data.draw(st.integers(1, max_row))
    x = data.draw(hnp.arrays(np.int8, (data.draw(st.integers(1, 4)), length)))
    assert_equal(kernel(x), reference(dsg, x))
