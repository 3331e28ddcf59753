"""The wheel carries the templates: built, installed in a fresh venv, run from elsewhere."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from lutcodegen import Spec, design_for, render

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_installs_and_generates(tmp_path: Path) -> None:
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
    names = zipfile.ZipFile(wheel).namelist()
    for template in (
        "softmax/source.c.j2",
        "softmax/declarations.j2",
        "softmax/header.h.j2",
        "softmax/_macros.j2",
        "softmax/lut.c.j2",
        "model/model.c.j2",
    ):
        assert f"lutcodegen/templates/{template}" in names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)], check=True
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import lutcodegen; print(lutcodegen.__file__)"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(venv))
    result = subprocess.run(
        [str(venv / "bin" / "lutcodegen"), "--bits", "8"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == render(design_for(Spec())).source
    # lutcodegen tflm needs nothing beyond the package's own dependencies
    import tflm_models

    model = elsewhere / "multi.tflite"
    model.write_bytes(tflm_models.build())
    result = subprocess.run(
        [str(venv / "bin" / "lutcodegen"), "tflm", str(model), "-o", "gen"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (elsewhere / "gen" / "lcg_tflm.cc").is_file()
