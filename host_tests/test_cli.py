"""Command-line behaviour: C on stdout, diagnostics on stderr, exit 2 on bad usage, and never a
partial or empty output file."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from lutcodegen import Spec, SpecError, __version__, cli, design_for, render

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    full_env = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "lutcodegen", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        check=False,
    )


def test_default_writes_the_c_to_stdout_and_nothing_to_stderr() -> None:
    result = run("--bits", "8")
    assert result.returncode == 0
    assert result.stderr == ""
    assert result.stdout == render(design_for(Spec())).source


def test_banner_has_version_command_and_no_timestamp() -> None:
    text = run("--bits", "12", "--input-scale", "0.25", "--prefix", "enc0").stdout
    head = text.split("*/", 1)[0]
    assert f"lutcodegen {__version__} - DO NOT EDIT" in head
    assert (
        "lutcodegen --method lut --bits 12 --input-scale 0.25 --beta 1.0 --max-row 256 "
        "--prefix enc0"
    ) in head
    assert not re.search(r"\d{4}-\d{2}-\d{2}|\d{2}:\d{2}:\d{2}", text)
    assert "enc0_softmax_s8_s16(" in text


@pytest.mark.parametrize(
    "env",
    [
        {"PYTHONHASHSEED": "0", "LC_ALL": "C"},
        {"PYTHONHASHSEED": "12345", "LC_ALL": "C.UTF-8"},
        {"PYTHONHASHSEED": "random", "LANG": "de_DE.UTF-8", "LC_ALL": ""},
    ],
)
def test_output_is_reproducible(env: dict[str, str]) -> None:
    args = ("--bits", "8", "--input-scale", "0.1", "--max-row", "1000")
    assert run(*args, env=env).stdout == run(*args).stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
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
    ],
)
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
    failure: BaseException,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
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
    else:  # the shared contract: exit 130, one line on stderr, no traceback
        assert cli.main(["-o", str(target)]) == 130
    assert target.read_text() == "previous contents\n"
    assert [p.name for p in tmp_path.iterdir()] == ["k.c"]


def test_write_error_when_target_is_unwritable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
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


def test_output_to_a_fifo_writes_through_it(tmp_path: Path) -> None:
    """Renaming a temporary file over a FIFO (or /dev/stdout, /dev/null) would replace it with a
    regular file and the reader would get nothing: special files are written directly."""
    fifo = tmp_path / "pipe.c"
    os.mkfifo(fifo)
    received: list[bytes] = []

    def reader() -> None:
        with open(fifo, "rb") as f:
            received.append(f.read())

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    assert cli.main(["-o", str(fifo)]) == 0
    thread.join(timeout=20)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode), "the FIFO was replaced by a regular file"
    assert received == [render(design_for(Spec())).source.encode()]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe.c"]


def test_output_through_a_symlink_replaces_the_target_not_the_link(tmp_path: Path) -> None:
    (tmp_path / "real.c").write_text("old\n")
    (tmp_path / "link.c").symlink_to("real.c")
    assert cli.main(["-o", str(tmp_path / "link.c")]) == 0
    assert (tmp_path / "link.c").is_symlink()
    assert (tmp_path / "real.c").read_text() == render(design_for(Spec())).source
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.c", "real.c"]


def test_new_file_follows_umask_and_existing_file_keeps_its_mode(tmp_path: Path) -> None:
    """The temporary file is private (0600); the result must not be."""
    old = os.umask(0o022)
    try:
        assert cli.main(["-o", str(tmp_path / "new.c")]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "new.c").st_mode) == 0o644
    kept = tmp_path / "kept.c"
    kept.write_text("old\n")
    os.chmod(kept, 0o640)
    assert cli.main(["-o", str(kept)]) == 0
    assert stat.S_IMODE(os.stat(kept).st_mode) == 0o640


HAS_DEV_FULL = os.path.exists("/dev/full") and stat.S_ISCHR(os.stat("/dev/full").st_mode)


@pytest.mark.skipif(not HAS_DEV_FULL, reason="no /dev/full")
def test_real_full_device_fails_with_exit_1_and_is_left_alone() -> None:
    """/dev/full refuses every write with ENOSPC: a real full disk, not a simulated one."""
    result = run("-o", "/dev/full")
    assert result.returncode == 1
    assert "No space left on device" in result.stderr
    assert result.stdout == ""
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


@pytest.mark.skipif(not HAS_DEV_FULL, reason="no /dev/full")
def test_stdout_to_a_full_device_fails_with_exit_1() -> None:
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [sys.executable, "-m", "lutcodegen"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )
    assert result.returncode != 0
    assert "No space left on device" in result.stderr


@pytest.mark.parametrize(
    ("scale", "nonzero"),
    [
        ("1e-300", 256),  # exp(-s d) == 1 in float64: every entry equal to the top
        ("5e-324", 256),  # the smallest subnormal
        ("1e300", 1),  # exp(-s) == 0: only the row maximum counts
        ("1e10", 1),
        ("1e307", 1),  # scale * d overflows to -inf: exp is 0, and no warning says otherwise
        ("1.7976931348623157e308", 1),  # double's largest
    ],
)
def test_tiny_and_huge_scales_give_a_sane_design(scale: str, nonzero: int) -> None:
    result = run("--input-scale", scale, "-v")
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr
    dsg = design_for(Spec(input_scale=float(scale)))
    assert dsg.nonzero == nonzero
    assert (dsg.exp_table[:nonzero] == 65535).all() and (dsg.exp_table[nonzero:] == 0).all()
    assert "exp table (full): 256 x uint16_t" in result.stderr
    assert result.stdout == render(dsg).source


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input-scale", "1e-300", "--beta", "1e-300"], "must be positive and finite"),  # 0.0
        (["--input-scale=-1e-300"], "not a positive finite number"),
        (["--input-scale=-inf"], "not a positive finite number"),
        # argparse reads "-inf" after a space as an option, not a value: still exit 2, no file
        (["--input-scale", "-inf"], "argument --input-scale: expected one argument"),
        (["--input-scale", "+nan"], "not a positive finite number"),
        (["--input-scale", "1e-400"], "not a positive finite number"),  # underflows to 0.0
        (["--input-scale", ""], "not a number"),
        (["--input-scale", "0x10"], "not a number"),
        (["--beta", "nan"], "not a positive finite number"),
        (["--beta", "-2"], "not a positive finite number"),
        (["--beta", "1e309"], "not a positive finite number"),
        (["--max-row", "1e3"], "not a whole number"),
        (["--max-row", "2147483648"], "max_row must be an integer from 1"),
        (["--max-row", "1048576", "--bits", "16"], "no table layout proves 1-LSB accuracy"),
        (["--prefix", "while"], "must not be a C keyword"),
        (["--prefix", "_Static_assert"], "must not be a C keyword"),
        (["--prefix", "typeof_unqual"], "must not be a C keyword"),
        (["--prefix", "__x"], "reserved identifier"),
        (["--prefix", "λ"], "must be a C identifier"),
        (["--prefix", "ｌｃｇ"], "must be a C identifier"),  # fullwidth letters
        (["--prefix", "lcg\u200b"], "must be a C identifier"),  # zero-width space
        (["--prefix", "a b"], "must be a C identifier"),
        (["--prefix", "lcg;"], "must be a C identifier"),
        (["--prefix", "x" * 25], "at most 24 characters"),
        # TFLite stores scale and beta as float32: beyond its range no model can hold them
        (["--method", "tflite", "--input-scale", "1e300"], "beyond float32's range"),
        (["--method", "tflite", "--beta", "1e39"], "beyond float32's range"),
        (
            ["--method", "tflite", "--input-bits", "16", "--bits", "16", "--input-scale", "1e300"],
            "beyond float32's range",
        ),
        (
            [
                *("--method", "tflite", "--input-bits", "16", "--bits", "16"),
                *("--input-scale", "1e30", "--beta", "1e30"),
            ],
            "beta * input_scale overflows float32",
        ),
    ],
)
def test_more_hostile_options_exit_2_before_writing(
    args: list[str], message: str, tmp_path: Path
) -> None:
    target = tmp_path / "k.c"
    result = run(*args, "-o", str(target))
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr and "Warning:" not in result.stderr
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("prefix", ["lcg_", "a__b", "x_"])
def test_prefix_that_makes_a_double_underscore_is_refused(prefix: str) -> None:
    """C++ reserves every identifier containing "__" and the header is meant for C++ too;
    a trailing "_" would join the prefix to "_softmax_s8" as "__"."""
    result = run("--prefix", prefix)
    assert result.returncode == 2
    assert "__" in result.stderr and "C++" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("prefix", ["_ok", "_"])
def test_any_leading_underscore_is_refused(prefix: str) -> None:
    """C reserves every file-scope identifier that starts with "_", and the kernel's names
    (exported and static) are all at file scope."""
    result = run("--prefix", prefix)
    assert result.returncode == 2
    assert "reserved identifier" in result.stderr


@pytest.mark.parametrize("prefix", ["a", "A1", "lcg_q8", "x_y_z", "Int"])
def test_unusual_but_valid_prefixes_compile(prefix: str, tmp_path: Path) -> None:
    result = run("--prefix", prefix, "-o", str(tmp_path / "k.c"))
    assert result.returncode == 0, result.stderr
    assert f"int32_t {prefix}_softmax_s8(" in (tmp_path / "k.c").read_text()


@pytest.mark.parametrize(
    "name",
    [
        'a"b.h',
        "x.h\n#define lcg_softmax_s8 evil //",
        "a\\b.h",
        "k'.h",
        "k h.h",
        "dé.h",
        "k*.h",
        ".h",
        "k.h\r",
    ],
)
def test_header_name_that_cannot_be_included_safely_is_refused(name: str, tmp_path: Path) -> None:
    """The header's file name goes into '#include "NAME"' verbatim: a quote or newline would
    break or inject C, and '\\', ''' have implementation-defined meaning there."""
    result = run("-o", str(tmp_path / "k.c"), "--header", str(tmp_path / name))
    assert result.returncode == 2
    assert "header file name" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_render_refuses_an_unsafe_header_name() -> None:
    with pytest.raises(SpecError, match="header file name"):
        render(design_for(Spec()), header_name='a"b.h')


@pytest.mark.parametrize("name", ["k.h", "softmax-lut_v2.h", "K.H", "a+b.hpp"])
def test_ordinary_header_names_work(name: str, tmp_path: Path) -> None:
    result = run("-o", str(tmp_path / "k.c"), "--header", str(tmp_path / name))
    assert result.returncode == 0, result.stderr
    assert f'#include "{name}"' in (tmp_path / "k.c").read_text()


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="no procfs")
@pytest.mark.parametrize("where", ["-o", "--header"])
def test_really_unwritable_location_fails_cleanly(where: str, tmp_path: Path) -> None:
    """/proc refuses new files even to root (the permission test above has to fake access())."""
    other = "--header" if where == "-o" else "-o"
    other_path = tmp_path / ("k.h" if other == "--header" else "k.c")
    result = run(where, "/proc/lutcodegen-test.c", other, str(other_path))
    assert result.returncode in (1, 2)
    assert result.stderr.startswith("lutcodegen: error:")
    assert "Traceback" not in result.stderr
    assert not os.path.exists("/proc/lutcodegen-test.c")
    assert list(tmp_path.iterdir()) == []  # the other file of the pair is not written either
