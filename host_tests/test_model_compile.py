"""The generated model C compiles cleanly under strict flags and is integer-only: no float, no
division (no divide instruction or library call) on Cortex-M0+ and RV32I, no malloc."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from cbuild import require_tool
from modelbuild import run_sanitized
from test_compile import STRICT, _compile, _undefined_symbols

from lutcodegen.model import example
from lutcodegen.model.codegen import render_model

pytest.importorskip("sklearn", reason="calibration needs the digits data set (scikit-learn)")

STRICT_MODEL = [*STRICT, "-Wsign-conversion"]


@pytest.fixture(scope="module")
def source() -> str:
    return render_model(example.quantized("lut"), "dvit").source


@pytest.mark.parametrize("compiler", ["gcc", "clang"])
@pytest.mark.parametrize("std", ["c99", "c11"])
def test_strict_single_file(source: str, compiler: str, std: str, tmp_path: Path) -> None:
    cc = require_tool(compiler)
    (tmp_path / "m.c").write_text(source)
    result = _compile([cc, f"-std={std}", *STRICT_MODEL, "-c", "m.c"], tmp_path)
    assert result.returncode == 0, result.stderr


def test_softmax_leaves_out_the_loop_its_rows_never_take(source: str) -> None:
    """Attention calls the softmax with rows of exactly ``tokens`` elements (17 here), so lut's
    loop for rows a multiple of 16 long is off by default: it would only cost code."""
    assert example.quantized("lut").config.tokens % 16 != 0
    assert "#define DVIT_ATTN_USE_WHOLE_ROWS 0\n" in source


def test_header_pair_cxx_and_hash_check(tmp_path: Path) -> None:
    gcc, gxx = require_tool("gcc"), require_tool("g++")
    pair = render_model(example.quantized("lut"), "dvit", header_name="m.h")
    (tmp_path / "m.c").write_text(pair.source)
    (tmp_path / "m.h").write_text(pair.header or "")
    result = _compile([gcc, "-std=c99", *STRICT_MODEL, "-c", "m.c"], tmp_path)
    assert result.returncode == 0, result.stderr
    (tmp_path / "use.cpp").write_text('#include "m.h"\nint main() { return 0; }\n')
    cxx = _compile(
        [gxx, "-std=c++11", "-pedantic", "-Wall", "-Wextra", "-Werror", "-c", "use.cpp"], tmp_path
    )
    assert cxx.returncode == 0, cxx.stderr
    other = (
        render_model(example.quantized("lut"), "dvit", header_name="m.h", command="x").header or ""
    )
    assert other == pair.header.replace(  # the command line is in the banner only
        "lutcodegen model --prefix dvit --softmax lut", "x"
    )
    (tmp_path / "m.h").write_text(
        (pair.header or "").replace("DVIT_MODEL_HASH 0x", "DVIT_MODEL_HASH 0x1")
    )
    refused = _compile([gcc, "-std=c99", "-c", "m.c"], tmp_path)
    assert refused.returncode != 0 and "generated for another model" in refused.stderr


@pytest.mark.parametrize(
    ("cc_name", "flags"),
    [
        ("arm-none-eabi-gcc", ["-mcpu=cortex-m0plus", "-mthumb"]),
        ("riscv64-unknown-elf-gcc", ["-march=rv32i", "-mabi=ilp32", "-ffreestanding"]),
    ],
    ids=["cortex-m0plus", "rv32i"],
)
def test_integer_only_no_division(
    source: str, cc_name: str, flags: list[str], tmp_path: Path
) -> None:
    cc = require_tool(cc_name)
    nm = require_tool(cc_name.replace("-gcc", "-nm"))
    (tmp_path / "m.c").write_text(source)
    result = _compile([cc, *flags, "-std=c99", *STRICT_MODEL, "-c", "m.c", "-o", "m.o"], tmp_path)
    assert result.returncode == 0, result.stderr
    calls = _undefined_symbols(tmp_path / "m.o", nm)
    bad = [
        s
        for s in calls
        if "div" in s
        or "mod" in s
        or "float" in s
        or s.startswith(("__aeabi_f", "__aeabi_d", "__f", "__add", "__mul", "__sub"))
        and not s.startswith(("__muldi3", "__mulsi3"))
    ]
    assert bad == [], f"runtime library calls for division or float: {bad}"
    assert "malloc" not in calls
    if "-mthumb" in flags:
        # Cortex-M0+ multiplies 32 x 32 -> 32 bits only: the model builds its 64-bit products
        # from those instead of calling libgcc's (DVIT_MUL32).
        assert {"__aeabi_lmul", "__muldi3"}.isdisjoint(calls), calls


def test_no_divide_instruction_on_cortex_m4(source: str, tmp_path: Path) -> None:
    """The model stays divide-free where its softmax alone would take UDIV (Cortex-M3 and up)."""
    cc = require_tool("arm-none-eabi-gcc")
    (tmp_path / "m.c").write_text(source)
    flags = ["-mcpu=cortex-m4", "-mthumb", "-std=c99", *STRICT_MODEL]
    result = _compile([cc, *flags, "-c", "m.c", "-o", "m.o"], tmp_path)
    assert result.returncode == 0, result.stderr
    disassembly = subprocess.run(
        [cc.replace("-gcc", "-objdump"), "-d", str(tmp_path / "m.o")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "udiv" not in disassembly and "sdiv" not in disassembly


def test_source_is_integer_only_text(source: str) -> None:
    includes = sorted({line for line in source.splitlines() if line.startswith("#include")})
    # arm_acle.h and arm_mve.h only inside the softmax's guarded Arm DSP and Helium paths,
    # CMSIS-NN's header only with DVIT_CMSIS_NN
    assert includes == [
        '#include "arm_nnsupportfunctions.h"',
        "#include <arm_acle.h>",
        "#include <arm_mve.h>",
        "#include <stddef.h>",
        "#include <stdint.h>",
    ]
    code = "\n".join(
        line for line in source.splitlines() if not line.lstrip().startswith(("*", "/*"))
    )
    code = re.sub(r"/\*.*?\*/", "", code)
    # the softmax's divide-instruction reciprocal, which the model compiles out on every core
    # (test_no_divide_instruction_on_cortex_m4)
    code = re.sub(r"^#if DVIT_ATTN_RECIP_DIV\n.*?^#elif", "", code, flags=re.DOTALL | re.MULTILINE)
    for word in ("float", "double", "malloc", " / ", " % "):
        assert word not in code, word
    mutable = re.findall(r"^static (?!const)[^(]*[;=]", code, flags=re.MULTILINE)
    assert mutable == [], f"mutable static state: {mutable}"


def test_model_command_writes_the_same_c(tmp_path: Path) -> None:
    from lutcodegen.cli import main

    out, header = tmp_path / "d.c", tmp_path / "d.h"
    assert main(["model", "-o", str(out), "--header", str(header)]) == 0
    expected = render_model(
        example.quantized("lut"),
        "dvit",
        header_name="d.h",
        command="lutcodegen model --prefix dvit --softmax lut",
    )
    assert out.read_text() == expected.source
    assert header.read_text() == expected.header


def test_model_command_rejects_bad_prefix(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from lutcodegen.cli import main

    out = tmp_path / "d.c"
    assert main(["model", "--prefix", "int", "-o", str(out)]) == 2
    captured = capsys.readouterr()
    assert "prefix must not be a C keyword" in captured.err
    assert captured.out == ""
    assert not out.exists()


def test_whole_model_under_sanitizers(tmp_path: Path) -> None:
    """The firmware's own main.c on the host with ASan and UBSan (no recovery): no undefined
    behaviour or out-of-bounds access on the test split and on arbitrary int8 images, and
    the logits still equal the reference."""
    import numpy as np

    from lutcodegen.model import digits, intref

    gcc = require_tool("gcc")
    qm = example.quantized("lut")
    rng = np.random.default_rng(11)
    images = np.concatenate(
        [
            digits.load().test_images,
            rng.integers(-128, 128, size=(40, 8, 8)),
            np.full((1, 8, 8), 127),
            np.full((1, 8, 8), -128),
        ]
    )
    result = run_sanitized(gcc, qm, images, tmp_path)
    expected = intref.run(qm, images)
    assert (result.logits == expected).all()
