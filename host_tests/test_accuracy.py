"""Accuracy of the default method against float64 softmax (separate from bit-exactness).

The reference model is proven equal to the C by test_exact.py, so accuracy is measured on the
reference, which is fast enough for over a million outputs per configuration.
"""

from __future__ import annotations

import numpy as np
import pytest
import rows

from lutcodegen import Spec, design_for, ideal_output, reference
from lutcodegen.analysis.evaluate import LENGTHS, accuracy

SCALES = [1 / 64, 1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0]


def measure(spec: Spec, lengths=LENGTHS, per_length: int = 40000) -> tuple[int, float, int]:
    """(max |error| in LSB, fraction equal to correct rounding, outputs) over the row sets."""
    acc = accuracy(design_for(spec), lengths, per_length)
    return acc.max_error, acc.equal, acc.outputs


@pytest.mark.parametrize("scale", SCALES)
def test_8bit_within_one_lsb_and_almost_always_exact(scale: float) -> None:
    worst, equal, total = measure(Spec(bits=8, input_scale=scale), LENGTHS)
    assert total > 1_000_000
    assert worst <= 1
    assert equal >= 0.999, f"only {equal:.5%} equal to correct rounding"


@pytest.mark.parametrize("scale", [1 / 64, 1 / 16, 1 / 4, 1.0])
def test_16bit_within_one_lsb(scale: float) -> None:
    worst, equal, _ = measure(Spec(bits=16, input_scale=scale), LENGTHS, per_length=10000)
    assert worst <= 1  # the issue asks for 2 LSB16; the proof gives 1
    assert equal >= 0.999


@pytest.mark.parametrize("bits", [2, 4, 6, 8, 10, 12, 16])
@pytest.mark.parametrize("max_row", [64, 256, 4096])
def test_proof_holds_on_worst_case_rows(bits: int, max_row: int) -> None:
    """One maximum and the rest on one plateau maximizes the summed table error."""
    spec = Spec(bits=bits, max_row=max_row, input_scale=1 / 16)
    dsg = design_for(spec)
    assert dsg.error_bound < 1
    x = np.concatenate([rows.peak_and_plateau(max_row), rows.edge_rows(max_row)])
    err = np.abs(reference(dsg, x) - ideal_output(x, spec.scale, bits))
    assert err.max() <= 1


@pytest.mark.slow
def test_long_rows_within_one_lsb() -> None:
    spec = Spec(bits=8, max_row=4096)
    worst, equal, _ = measure(spec, [300, 1000, 2048, 4095, 4096], per_length=200000)
    assert worst <= 1
    assert equal >= 0.999


@pytest.mark.parametrize(
    ("bits", "scale", "limit"),
    [
        (8, 1 / 16, 512),
        (8, 1 / 64, 512),
        (8, 1.0, 512),
        (16, 1 / 64, 1024),
        (16, 1 / 16, 1024),
        (16, 1.0, 1024),
    ],
)
def test_table_bytes(bits: int, scale: float, limit: int) -> None:
    assert design_for(Spec(bits=bits, input_scale=scale)).table_bytes <= limit


def test_default_table_fits_the_papers_budget() -> None:
    dsg = design_for(Spec())
    assert dsg.table_bytes == 2 * len(dsg.exp_table) <= 512
