"""Every boundary of every integer option's domain, per method: refused with a ``SpecError``,
or C that compiles strictly and runs clean under UndefinedBehaviorSanitizer.

Hypothesis rarely draws the ends of a wide range, and it is at the ends that an option becomes
a shift count or a type width (``--sum-shift 32..40`` once printed a ``uint32_t`` shifted by
32..40). Each case pairs the value with the companions it needs to be used (``--sum-mode
linear`` for ``--sum-shift``, the other two raw parameters for ``tflite``).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import sanitize
from cbuild import require_tool
from test_compile import STRICT

from lutcodegen import METHODS, Spec, SpecError, design_for, render
from lutcodegen.registry import OPTIONS, Option

#: What an option needs beside it to take effect.
COMPANIONS: dict[str, dict[str, object]] = {
    "sum_shift": {"sum_mode": "linear"},
    "sum_mantissa": {"sum_mode": "log"},
    "input_multiplier": {"input_left_shift": 0, "diff_min": -128},
    "input_left_shift": {"input_multiplier": 1 << 30, "diff_min": -1},
    "diff_min": {"input_multiplier": 1 << 30, "input_left_shift": 0},
}


def _boundaries(option: Option) -> list[int]:
    if option.choices:
        return sorted(int(c) for c in option.choices)
    assert option.low is not None and option.high is not None
    values = {option.low, option.high}
    if option.name == "sum_shift":
        values |= {31, 32}  # the width of the 32-bit sum
    return sorted(values)


def _cases() -> list[tuple[str, str, int]]:
    cases = []
    for method in METHODS:
        for option in OPTIONS:
            if option.kind is int and option.applies_to(method):
                cases += [(method, option.name, value) for value in _boundaries(option)]
    return cases


def test_the_cases_cover_every_integer_option() -> None:
    covered = {name for _, name, _ in _cases()}
    assert covered == {o.name for o in OPTIONS if o.kind is int}
    assert ("rexp", "sum_shift", 40) in _cases() and ("lut2d", "sum_shift", 32) in _cases()


@pytest.mark.parametrize(("method", "name", "value"), _cases(), ids=lambda v: str(v))
def test_boundary_is_refused_or_compiles_strictly_and_runs_clean(
    method: str, name: str, value: int, tmp_path: Path
) -> None:
    options = {"method": method, name: value, **COMPANIONS.get(name, {})}
    try:
        dsg = design_for(Spec(**options))  # type: ignore[arg-type]
    except SpecError as exc:
        assert any(o.name in str(exc) for o in OPTIONS), exc  # names what it refused
        return
    gcc = require_tool("gcc")
    generated = render(dsg, header_name="k.h")
    (tmp_path / "k.c").write_text(generated.source)
    (tmp_path / "k.h").write_text(generated.header or "")
    # One build: the strict warnings on the kernel, UBSan (the class this file is about) on all.
    strict = subprocess.run(
        [gcc, "-std=c99", *STRICT, "-fsyntax-only", "k.c"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert strict.returncode == 0, strict.stderr
    spec = dsg.spec
    rng = np.random.default_rng(value & 0xFFFF)
    units = sanitize.hostile_units(spec.max_row, False)
    for length in sorted({1, 2, min(spec.max_row, 37), min(spec.max_row, 300)}):
        rows = rng.integers(-128, 128, size=(8, length)).astype(np.int8)
        rows[0] = 127  # equal elements: the largest sum
        rows[1, 1:] = -128  # one-hot: the smallest sum
        units.append(sanitize.encode_unit(0, 8, length, rows.tobytes()))
    harness = sanitize.HARNESS
    binary = tmp_path / "replay"
    build = subprocess.run(
        [
            gcc,
            "-fsanitize=undefined",
            *sanitize.COMMON,
            *sanitize.harness_defines(dsg),
            "-I.",
            "k.c",
            str(harness / "softmax_harness.c"),
            str(harness / "replay_main.c"),
            "-o",
            str(binary),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    (tmp_path / "units.pack").write_bytes(sanitize.pack(units))
    replayed, _ = sanitize.run_replay(binary, [tmp_path / "units.pack"], tmp_path / "dump")
    assert replayed == len(units)
    out_dtype = np.int8 if spec.bits <= 8 else np.int16
    result = sanitize.check_dump(dsg, sanitize.read_dump(tmp_path / "dump", out_dtype))
    assert result.accepted_calls > 0 and result.outputs > 0
