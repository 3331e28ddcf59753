"""The checked-in examples stay true: the golden file is what the generator emits today, and the
usage example compiles against it and prints what the reference model computes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
from cbuild import require_tool

from lutcodegen import Spec, design_for, reference, render

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_golden_file_matches_the_generator() -> None:
    """If this fails after an intended template change, regenerate:
    lutcodegen -o examples/softmax_lut.c"""
    assert (EXAMPLES / "softmax_lut.c").read_text() == render(design_for(Spec())).source


def test_usage_example_runs_and_matches_reference(tmp_path: Path) -> None:
    cc = require_tool("gcc")
    exe = tmp_path / "usage"
    subprocess.run(
        [
            cc,
            "-std=c99",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            str(EXAMPLES / "usage.c"),
            str(EXAMPLES / "softmax_lut.c"),
            "-o",
            str(exe),
        ],
        check=True,
    )
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    printed = [int(line.split()[0]) for line in out.splitlines()]
    x = np.array([[32, 16, 0, -16], [0, 0, 0, 0]], dtype=np.int8)
    assert printed == reference(design_for(Spec()), x).ravel().tolist()


def test_golden_header_source_pair_matches_the_generator() -> None:
    """If this fails after an intended template change, regenerate: lutcodegen
    -o examples/split/softmax_lut.c --header examples/split/softmax_lut.h"""
    generated = render(design_for(Spec()), header_name="softmax_lut.h")
    assert (EXAMPLES / "split" / "softmax_lut.c").read_text() == generated.source
    assert (EXAMPLES / "split" / "softmax_lut.h").read_text() == generated.header


def test_golden_pair_runs_the_usage_example(tmp_path: Path) -> None:
    """The split pair is a drop-in for the single file: same program, same outputs."""
    cc = require_tool("gcc")
    exe = tmp_path / "usage"
    split = EXAMPLES / "split"
    subprocess.run(
        [
            cc,
            "-std=c99",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            str(EXAMPLES / "usage.c"),
            str(split / "softmax_lut.c"),
            "-o",
            str(exe),
        ],
        check=True,
    )
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    printed = [int(line.split()[0]) for line in out.splitlines()]
    x = np.array([[32, 16, 0, -16], [0, 0, 0, 0]], dtype=np.int8)
    assert printed == reference(design_for(Spec()), x).ravel().tolist()
