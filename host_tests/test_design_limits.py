"""Design-level guarantees that the C relies on for defined behaviour, checked over a sweep of
specs rather than a handful: a C shift by the operand's full width is undefined behaviour, so the
design must never ask for one, for any row the kernel accepts."""

from __future__ import annotations

import numpy as np
import pytest

from lutcodegen import Spec, SpecError, design_for, reference


def _max_output_shift(spec: Spec) -> tuple[int, int]:
    """(largest output shift the C can execute, width of the shifted operand) for ``spec``."""
    dsg = design_for(spec)
    n_max = (spec.max_row * dsg.top).bit_length()
    return n_max + dsg.precision - spec.bits, dsg.product_bits


@pytest.mark.parametrize("bits", range(2, 17))
def test_output_shift_is_below_the_product_width(bits: int) -> None:
    """Every max_row from 1 to 4096 and the powers of two above it, for every width."""
    lengths = list(range(1, 4097)) + [1 << k for k in range(13, 21)]
    for max_row in lengths:
        try:
            shift, width = _max_output_shift(Spec(bits=bits, max_row=max_row))
        except SpecError:
            continue
        assert 1 <= shift < width, f"bits={bits} max_row={max_row}: shift {shift} of {width} bits"


@pytest.mark.parametrize(("bits", "max_row"), [(6, 1024), (2, 513), (7, 1000)])
def test_long_equal_rows_where_the_shift_used_to_reach_32(
    bits: int, max_row: int, build_kernel
) -> None:
    """Before the fix these specs shifted a uint32_t by 32: on x86 every output came out as the
    maximum (probability ~1) instead of 1/max_row."""
    dsg = design_for(Spec(bits=bits, max_row=max_row))
    kernel = build_kernel(dsg)
    x = np.stack([np.zeros(max_row), np.full(max_row, 127), np.arange(max_row) % 2]).astype(np.int8)
    np.testing.assert_array_equal(kernel(x), reference(dsg, x))
