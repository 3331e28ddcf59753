"""Design invariants, checked over the whole option space without compiling anything."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lutcodegen import Spec, SpecError, design_for, reference


@settings(max_examples=300, deadline=None)
@given(
    bits=st.integers(2, 16),
    scale=st.floats(1e-6, 1e3),
    max_row=st.integers(1, 1 << 20),
    layout=st.sampled_from(["full", "compact"]),
)
def test_every_spec_has_a_proven_design_and_extreme_rows_stay_in_range(
    bits, scale, max_row, layout
) -> None:
    spec = Spec(bits=bits, input_scale=scale, max_row=max_row, table_layout=layout)
    try:
        dsg = design_for(spec)
    except SpecError as exc:  # allowed only with a usable answer, and only for long 9+ bit rows
        assert f"bits={bits} supports max_row up to" in str(exc)
        assert bits > 8 and max_row > 100_000
        return
    assert dsg.error_bound < 1
    assert dsg.table_bytes <= 1024
    assert int(dsg.exp_table[0]) == dsg.top
    assert max_row * dsg.top < 1 << dsg.sum_bits
    # The smallest and the largest possible sums: the reference asserts the overflow and
    # shift-width proofs on every row it computes.
    for row in (np.array([5], dtype=np.int8), np.full(max_row, -7, dtype=np.int8)):
        y = reference(dsg, row)
        assert y.min() >= -(1 << (bits - 1)) and y.max() <= (1 << (bits - 1)) - 1
