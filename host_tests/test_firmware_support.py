"""The build-time helpers behind the firmware (no toolchain needed): options, golden data."""

from __future__ import annotations

import re

import numpy as np
import pytest

import lutcodegen
from lutcodegen.firmware import build as fw
from lutcodegen.firmware.bench import designs_for


def test_options_from_ini_with_environment_override(monkeypatch) -> None:
    ini = {"bits": "16", "max_row": "300", "prefix": "net"}
    monkeypatch.setenv("LUTCODEGEN_MAX_ROW", "1024")
    spec = fw.spec_from_options(ini.get)
    assert (spec.bits, spec.max_row, spec.prefix) == (16, 1024, "net")
    assert spec.input_scale == lutcodegen.Spec().input_scale  # unset: generator default


def test_bad_option_is_a_spec_error() -> None:
    with pytest.raises(lutcodegen.SpecError, match="bits"):
        fw.spec_from_options({"bits": "eight"}.get)
    with pytest.raises(lutcodegen.SpecError, match="field=value"):
        fw.parse_spec_line("bits=4 nonsense", "golden1")
    with pytest.raises(lutcodegen.SpecError, match="kernel:length:position"):
        fw.parse_flip("1:2")


def test_golden_rows_are_the_promised_edge_cases() -> None:
    rows = fw.golden_rows(17)
    assert rows.shape == (len(fw.GOLDEN_ROWS), 17) and rows.dtype == np.int8
    assert (rows[2] == -128).all() and (rows[1] == 127).all() and (rows[0] == 0).all()
    assert rows[3, 0] == 127 and (rows[3, 1:] == -128).all()
    assert np.array_equal(rows, fw.golden_rows(17))  # seeded: reproducible
    assert fw.golden_lengths(256) == [1, 2, 3, 6, 16, 17, 64, 255, 256]
    assert fw.golden_lengths(2) == [1, 2]


def test_golden_source_holds_the_reference_outputs() -> None:
    dsg = lutcodegen.design_for(lutcodegen.Spec(bits=4, input_scale=0.25, max_row=17))
    text = fw.golden_source([dsg])
    body = re.search(r"expected_0_17\[\d+\] = \{(.*?)\};", text, re.S).group(1)
    values = [int(v) for v in body.replace(",", " ").split()]
    assert values == lutcodegen.reference(dsg, fw.golden_rows(17)).ravel().tolist()
    flipped = fw.golden_source([dsg], flip=(0, 17, 3))
    body = re.search(r"expected_0_17\[\d+\] = \{(.*?)\};", flipped, re.S).group(1)
    changed = [int(v) for v in body.replace(",", " ").split()]
    assert [i for i, (a, b) in enumerate(zip(values, changed)) if a != b] == [3]
    assert abs(changed[3] - values[3]) == 1


def test_long_rows_get_their_own_design() -> None:
    groups = designs_for("lut", 8, 0.0625, 256, [16, 64, 256, 1024])
    assert [(s.max_row, ns) for s, ns in groups] == [(256, [16, 64, 256]), (1024, [1024])]


def test_bench_header_drops_lengths_above_max_row() -> None:
    assert "#define BENCH_LENGTHS 16, 64, 256" in fw.bench_header([16, 64, 256, 1024], 256)
    with pytest.raises(lutcodegen.SpecError):
        fw.bench_header([1024], 256)
