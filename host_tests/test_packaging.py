"""The wheel carries the templates and the example model: built, installed in a fresh venv
(numpy and jinja2 only, no scikit-learn), run from a folder outside the checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from cbuild import require_tool
from test_compile import STRICT, _compile

from lutcodegen import Spec, design_for, render
from lutcodegen.cli import SUBCOMMANDS
from lutcodegen.model import example
from lutcodegen.model.codegen import command_line, render_model

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Installed:
    """A wheel installed in its own venv, and an empty folder outside the checkout."""

    wheel: Path
    venv: Path
    elsewhere: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.venv / "bin" / "lutcodegen"), *args],
            cwd=self.elsewhere,
            capture_output=True,
            text=True,
            check=False,
        )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """Built once per module: building and installing the wheel is the slow part."""
    tmp_path = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "-w",
            str(tmp_path / "dist"),
            str(ROOT),
        ],
        check=True,
    )
    (wheel,) = (tmp_path / "dist").glob("lutcodegen-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)], check=True
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    return Installed(wheel, venv, elsewhere)


@pytest.mark.slow
def test_wheel_installs_and_generates(installed: Installed) -> None:
    names = zipfile.ZipFile(installed.wheel).namelist()
    for template in (
        "softmax/source.c.j2",
        "softmax/declarations.j2",
        "softmax/header.h.j2",
        "softmax/_macros.j2",
        "softmax/lut.c.j2",
        "model/model.c.j2",
    ):
        assert f"lutcodegen/templates/{template}" in names
    assert "lutcodegen/model/data/digits_vit.npz" in names
    where = subprocess.run(
        [
            str(installed.venv / "bin" / "python"),
            "-c",
            "import lutcodegen; print(lutcodegen.__file__)",
        ],
        cwd=installed.elsewhere,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(installed.venv))
    result = installed.run("--bits", "8")
    assert result.returncode == 0, result.stderr
    assert result.stdout == render(design_for(Spec())).source
    # lutcodegen tflm needs nothing beyond the package's own dependencies
    import tflm_models

    model = installed.elsewhere / "multi.tflite"
    model.write_bytes(tflm_models.build())
    result = installed.run("tflm", str(model), "-o", "gen")
    assert result.returncode == 0, result.stderr
    assert (installed.elsewhere / "gen" / "lcg_tflm.cc").is_file()


@pytest.mark.slow
def test_help_lists_every_subcommand(installed: Installed) -> None:
    result = installed.run("--help")
    assert result.returncode == 0, result.stderr
    for name in SUBCOMMANDS:
        (line,) = [x for x in result.stdout.splitlines() if x.startswith(f"  lutcodegen {name} ")]
        assert len(line.split()) > 3, line  # the command and what it does


@pytest.mark.slow
def test_model_from_the_wheel_without_scikit_learn(installed: Installed) -> None:
    """The shipped weights and their calibration are package data: no checkout, no sklearn."""
    python = str(installed.venv / "bin" / "python")
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('sklearn') is not None)"
    assert subprocess.run([python, "-c", probe], check=False).returncode == 0, "sklearn installed"
    work = installed.elsewhere / "model"
    work.mkdir()
    result = subprocess.run(
        [str(installed.venv / "bin" / "lutcodegen"), "model", "-o", "m.c", "--header", "m.h"],
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""
    expected = render_model(
        example.quantized("lut"), example.PREFIX, "m.h", command_line(example.PREFIX, "lut")
    )
    assert (work / "m.c").read_text() == expected.source
    assert (work / "m.h").read_text() == expected.header
    gcc = require_tool("gcc")
    compiled = _compile([gcc, "-std=c99", *STRICT, "-c", "m.c", "-o", "m.o"], work)
    assert compiled.returncode == 0, compiled.stderr
    assert (work / "m.o").is_file()
    demo = installed.run("demo")  # evaluates on the digits: says what to install
    assert demo.returncode == 2
    assert "scikit-learn" in demo.stderr and "Traceback" not in demo.stderr
