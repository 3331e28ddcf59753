"""Command-line behaviour: C on stdout, diagnostics on stderr, exit 2 on bad usage, and never a
partial or empty output file."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lutcodegen import Spec, __version__, cli, design_for, render

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    full_env = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run([sys.executable, "-m", "lutcodegen", *args], capture_output=True,
                          text=True, env=full_env, cwd=cwd, check=False)


def test_default_writes_the_c_to_stdout_and_nothing_to_stderr() -> None:
    result = run("--bits", "8")
    assert result.returncode == 0
    assert result.stderr == ""
    assert result.stdout == render(design_for(Spec())).source


def test_banner_has_version_command_and_no_timestamp() -> None:
    text = run("--bits", "12", "--input-scale", "0.25", "--prefix", "enc0").stdout
    head = text.split("*/", 1)[0]
    assert f"lutcodegen {__version__} - DO NOT EDIT" in head
    assert ("lutcodegen --method lut --bits 12 --input-scale 0.25 --beta 1.0 --max-row 256 "
            "--prefix enc0") in head
    assert not re.search(r"\d{4}-\d{2}-\d{2}|\d{2}:\d{2}:\d{2}", text)
    assert "enc0_softmax_s8_s16(" in text


@pytest.mark.parametrize("env", [
    {"PYTHONHASHSEED": "0", "LC_ALL": "C"},
    {"PYTHONHASHSEED": "12345", "LC_ALL": "C.UTF-8"},
    {"PYTHONHASHSEED": "random", "LANG": "de_DE.UTF-8", "LC_ALL": ""},
])
def test_output_is_reproducible(env: dict[str, str]) -> None:
    args = ("--bits", "8", "--input-scale", "0.1", "--max-row", "1000")
    assert run(*args, env=env).stdout == run(*args).stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--bits", "1"], "bits must be an integer from 2 to 16"),
    (["--bits", "17"], "bits must be an integer from 2 to 16"),
    (["--bits", "eight"], "not a whole number"),
    (["--bits", "8.5"], "not a whole number"),
    (["--input-scale", "0"], "not a positive finite number"),
    (["--input-scale", "-0.5"], "not a positive finite number"),
    (["--input-scale", "nan"], "not a positive finite number"),
    (["--input-scale", "inf"], "not a positive finite number"),
    (["--input-scale", "1e400"], "not a positive finite number"),
    (["--input-scale", "abc"], "not a number"),
    (["--beta", "0"], "not a positive finite number"),
    (["--beta", "1e308", "--input-scale", "1e10"], "must be positive and finite"),
    (["--max-row", "0"], "max_row must be an integer from 1"),
    (["--max-row", "-3"], "max_row must be an integer from 1"),
    (["--max-row", "99999999"], "max_row must be an integer from 1"),
    (["--prefix", "int"], "must not be a C keyword"),
    (["--prefix", "_Bool"], "must not be a C keyword"),
    (["--prefix", "1abc"], "must be a C identifier"),
    (["--prefix", "a-b"], "must be a C identifier"),
    (["--prefix", "défaut"], "must be a C identifier"),
    (["--prefix", ""], "must be a C identifier"),
    (["--prefix", "_Reserved"], "reserved identifier"),
    (["--method", "magic"], "invalid choice"),
    (["--frobnicate"], "unrecognized arguments"),
])
def test_bad_usage_exits_2_with_a_clear_message(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert message in result.stderr


def test_output_to_a_directory_is_refused(tmp_path: Path) -> None:
    result = run("-o", str(tmp_path))
    assert result.returncode == 2
    assert "is a directory" in result.stderr


def test_output_in_missing_folder_is_refused(tmp_path: Path) -> None:
    result = run("-o", str(tmp_path / "nope" / "k.c"))
    assert result.returncode == 2
    assert "does not exist" in result.stderr
    assert not (tmp_path / "nope").exists()


def test_bad_options_leave_no_file(tmp_path: Path) -> None:
    target = tmp_path / "k.c"
    assert run("--bits", "99", "-o", str(target)).returncode == 2
    assert list(tmp_path.iterdir()) == []


def test_output_and_header_files(tmp_path: Path) -> None:
    result = run("--bits", "16", "-o", str(tmp_path / "k.c"), "--header", str(tmp_path / "k.h"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    source = (tmp_path / "k.c").read_text()
    assert '#include "k.h"' in source
    assert "int32_t lcg_softmax_s8_s16(" in (tmp_path / "k.h").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.c", "k.h"]


def test_verbose_describes_the_design_on_stderr() -> None:
    result = run("-v")
    assert result.returncode == 0
    assert "exp table (full): 256 x uint16_t = 512 bytes" in result.stderr


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_failed_write_keeps_the_old_file_and_leaves_no_temp(
    failure: BaseException, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A full disk or an interrupt mid-write must not leave a partial or empty file."""
    target = tmp_path / "k.c"
    target.write_text("previous contents\n")

    real_fsync = os.fsync

    def failing_fsync(fd: int) -> None:
        real_fsync(fd)
        raise failure

    monkeypatch.setattr(cli.os, "fsync", failing_fsync)
    if isinstance(failure, OSError):
        assert cli.main(["-o", str(target)]) == 1
    else:
        with pytest.raises(KeyboardInterrupt):
            cli.main(["-o", str(target)])
    assert target.read_text() == "previous contents\n"
    assert [p.name for p in tmp_path.iterdir()] == ["k.c"]


def test_write_error_when_target_is_unwritable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "k.c"
    monkeypatch.setattr(cli.os, "access", lambda path, mode: False)
    assert cli.main(["-o", str(target)]) == 2
    assert "permission denied" in capsys.readouterr().err
    assert not target.exists()


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"lutcodegen {__version__}"
