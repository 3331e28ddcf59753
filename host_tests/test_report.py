"""``lutcodegen report``: runs, prints every column, numbers are sane, the plot is written."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from lutcodegen import Spec, design_for, ideal_output, reference
from lutcodegen.analysis.report import measure, run, synthetic_rows

COLUMNS = [
    "method",
    "bits",
    "scale",
    "table B",
    "max err LSB",
    "mean err LSB",
    "exact %",
    "KL (nats)",
    "top-1 %",
    "mean abs(sum-1)",
    "TV %",
    "TV - ideal",
    "< 1 % loss",
]


def _report(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lutcodegen", "report", *args], capture_output=True, text=True
    )


def _table(stdout: str) -> list[dict[str, str]]:
    lines = [ln for ln in stdout.splitlines() if ln.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in ln.strip("|").split("|")))) for ln in lines[2:]]


def test_report_table_columns_and_sanity() -> None:
    result = _report(
        "--bits",
        "4,8",
        "--input-scales",
        "1/16",
        "--rows",
        "100",
        "--lengths",
        "8,64",
        "--max-row",
        "256",
    )
    assert result.returncode == 0, result.stderr
    rows = _table(result.stdout)
    assert list(rows[0]) == COLUMNS
    assert {r["method"] for r in rows} == {"ideal", "lut", "rexp", "lut2d", "tflite"}
    for r in rows:
        if r["method"] in ("ideal", "lut"):
            assert float(r["max err LSB"]) <= 1.0  # lut is proven within 1 LSB of ideal
        assert 0 <= float(r["mean err LSB"]) <= float(r["max err LSB"])
        assert 0 <= float(r["exact %"]) <= 100 and 0 <= float(r["top-1 %"]) <= 100
        assert float(r["KL (nats)"]) >= 0 and 0 <= float(r["TV %"]) <= 100
    ideal = [r for r in rows if r["method"] == "ideal"]
    assert all(r["exact %"] == "100.00" and r["table B"] == "0" for r in ideal)
    paper8 = {r["method"]: r for r in rows if r["bits"] == "8"}
    assert paper8["rexp"]["table B"] == str(design_for(Spec(method="rexp")).table_bytes)
    assert paper8["lut2d"]["table B"] == str(design_for(Spec(method="lut2d")).table_bytes)
    assert "loss under 1 %" in result.stdout


def test_measure_matches_hand_computation() -> None:
    """The figures of a tiny hand-checkable case."""
    x = np.array([[0, -128]], dtype=np.int8)  # p = (1 - e^-8, e^-8) at scale 1/16
    scale, bits = 1 / 16, 4
    y = np.array([[7, -7]])  # levels 15 and 1: q = (15/16, 1/16); ideal is (7, -8)
    m = measure([y], [x], scale, bits)
    p0 = 1 / (1 + np.exp(-8.0))
    assert m["max_err"] == pytest.approx(max(abs(15 - 16 * p0), abs(1 - 16 * (1 - p0))))
    assert m["mean_err"] == pytest.approx((abs(15 - 16 * p0) + abs(1 - 16 * (1 - p0))) / 2)
    assert m["exact"] == 0.5
    assert m["top1"] == 1.0
    assert m["sum_err"] == pytest.approx(0.0)
    assert m["tv"] == pytest.approx(0.5 * (abs(15 / 16 - p0) + abs(1 / 16 - (1 - p0))))
    expected_kl = p0 * np.log(p0 / (15 / 16)) + (1 - p0) * np.log((1 - p0) / (1 / 16))
    assert m["kl"] == pytest.approx(expected_kl)


def test_ideal_row_is_exact_and_lut_within_one_lsb() -> None:
    scores = synthetic_rows([32], 200, seed=3)
    results = run(["lut"], [8], [1 / 16], scores, max_row=32)
    ideal, lut = results
    assert ideal.method == "ideal" and ideal.exact == 1.0 and ideal.max_err <= 0.5
    assert lut.max_err < 1.5 and lut.exact > 0.99


def test_report_with_calibration_file(tmp_path) -> None:
    scores = synthetic_rows([48], 150, seed=4)[0].astype(np.float32)
    path = tmp_path / "scores.npy"
    np.save(path, scores)
    result = _report("--calibrate", str(path), "--bits", "8", "--input-scales", "1/16")
    assert result.returncode == 0, result.stderr
    assert "scores.npy (150 rows of 48)" in result.stdout
    assert "Calibration chose" in result.stdout and "sum_max=" in result.stdout


def test_report_rejects_unknown_method() -> None:
    result = _report("--methods", "lut,nope")
    assert result.returncode == 2 and "nope" in result.stderr


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="matplotlib missing")
def test_report_writes_png(tmp_path) -> None:
    png = tmp_path / "report.png"
    result = _report("--bits", "8,12", "--rows", "50", "--lengths", "16", "--plot", str(png))
    assert result.returncode == 0, result.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10000


def test_reference_agrees_with_ideal_where_it_must() -> None:
    """One-hot rows are exact for every method (a cheap cross-check of the harness)."""
    x = np.full((1, 5), -128, dtype=np.int8)
    x[0, 0] = 127
    for method in ("lut", "rexp", "lut2d"):
        dsg = design_for(Spec(method=method))
        assert (reference(dsg, x) == ideal_output(x, 1 / 16, 8)).all()


def test_report_option_changes_the_design() -> None:
    result = _report(
        "--methods",
        "rexp,lut",
        "--bits",
        "8",
        "--input-scales",
        "1/16",
        "--rows",
        "50",
        "--lengths",
        "16",
        "--max-row",
        "256",
        "--no-ideal",
        "--option",
        "sum_mantissa=4",
    )
    assert result.returncode == 0, result.stderr
    rows = {r["method"]: r for r in _table(result.stdout)}
    assert set(rows) == {"rexp", "lut"}  # no ideal row; lut has no such option and ran as is
    expected = design_for(Spec(method="rexp", sum_mantissa=4)).table_bytes
    assert rows["rexp"]["table B"] == str(expected)
    assert "--option sum_mantissa=4" in result.stdout
    bad = _report("--option", "no_such=1")
    assert bad.returncode == 2 and "no_such" in bad.stderr
