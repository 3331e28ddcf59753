"""The generated file compiles cleanly under strict flags, and contains no division or float."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cbuild import require_tool

from lutcodegen import Spec, design_for, render

STRICT = ["-pedantic", "-Wall", "-Wextra", "-Werror", "-Wconversion", "-Wsign-conversion",
          "-Wcast-qual", "-Wshadow", "-Wstrict-prototypes", "-Wmissing-prototypes", "-O2"]

SPECS = [
    Spec(),
    Spec(bits=16),
    Spec(bits=2, input_scale=1.0),
    Spec(bits=8, max_row=4096),
    Spec(bits=16, max_row=4096, prefix="attn16"),
    Spec(bits=8, input_scale=1 / 64, beta=0.125),
]


def _ids(spec: Spec) -> str:
    return f"b{spec.bits}-n{spec.max_row}-s{spec.scale:g}"


def _compile(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)


@pytest.mark.parametrize("spec", SPECS, ids=_ids)
@pytest.mark.parametrize("compiler", ["gcc", "clang"])
@pytest.mark.parametrize("std", ["c99", "c11"])
def test_strict_single_file(spec: Spec, compiler: str, std: str, tmp_path: Path) -> None:
    cc = require_tool(compiler)
    (tmp_path / "k.c").write_text(render(design_for(spec)).source)
    result = _compile([cc, f"-std={std}", *STRICT, "-c", "k.c"], tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("spec", SPECS[:2], ids=_ids)
def test_split_header_and_cxx(spec: Spec, tmp_path: Path) -> None:
    gcc, gxx = require_tool("gcc"), require_tool("g++")
    generated = render(design_for(spec), header_name="k.h")
    (tmp_path / "k.c").write_text(generated.source)
    (tmp_path / "k.h").write_text(generated.header)
    assert _compile([gcc, "-std=c99", *STRICT, "-c", "k.c"], tmp_path).returncode == 0
    (tmp_path / "use.cpp").write_text('#include "k.h"\nint main() { return 0; }\n')
    cxx = _compile([gxx, "-std=c++11", "-pedantic", "-Wall", "-Wextra", "-Werror", "-c", "use.cpp"],
                   tmp_path)
    assert cxx.returncode == 0, cxx.stderr


def test_header_from_other_options_is_refused(tmp_path: Path) -> None:
    gcc = require_tool("gcc")
    (tmp_path / "k.c").write_text(render(design_for(Spec()), header_name="k.h").source)
    (tmp_path / "k.h").write_text(render(design_for(Spec(bits=7)), header_name="k.h").header)
    result = _compile([gcc, "-std=c99", "-c", "k.c"], tmp_path)
    assert result.returncode != 0
    assert "generated with other options" in result.stderr


def _undefined_symbols(obj: Path, nm: str) -> list[str]:
    out = subprocess.run([nm, "-u", str(obj)], capture_output=True, text=True, check=True).stdout
    return [line.split()[-1] for line in out.splitlines() if line.strip()]


@pytest.mark.parametrize("spec", SPECS, ids=_ids)
def test_no_division_or_float_on_cortex_m0plus(spec: Spec, tmp_path: Path) -> None:
    cc = require_tool("arm-none-eabi-gcc")
    nm = require_tool("arm-none-eabi-nm")
    (tmp_path / "k.c").write_text(render(design_for(spec)).source)
    cmd = [cc, "-mcpu=cortex-m0plus", "-mthumb", "-std=c99", *STRICT, "-c", "k.c", "-o", "k.o"]
    result = _compile(cmd, tmp_path)
    assert result.returncode == 0, result.stderr
    calls = _undefined_symbols(tmp_path / "k.o", nm)
    bad = [s for s in calls if "div" in s or "mod" in s or s.startswith(("__aeabi_f", "__aeabi_d"))]
    assert bad == [], f"runtime library calls for division or float: {bad}"


@pytest.mark.parametrize("spec", SPECS, ids=_ids)
@pytest.mark.parametrize("cpu", ["cortex-m4", "cortex-m33", "cortex-m55"])
def test_strict_with_the_arm_dsp_path(spec: Spec, cpu: str, tmp_path: Path) -> None:
    """Cores with the DSP extension compile the SIMD32 path: strict, and still no division."""
    cc = require_tool("arm-none-eabi-gcc")
    nm = require_tool("arm-none-eabi-nm")
    (tmp_path / "k.c").write_text(render(design_for(spec)).source)
    cmd = [cc, f"-mcpu={cpu}", "-mthumb", "-std=c99", *STRICT, "-c", "k.c", "-o", "k.o"]
    result = _compile(cmd, tmp_path)
    assert result.returncode == 0, result.stderr
    disassembly = subprocess.run([nm.replace("-nm", "-objdump"), "-d", str(tmp_path / "k.o")],
                                 capture_output=True, text=True, check=True).stdout
    if spec.method == "lut":
        assert "ssub8" in disassembly and "sel" in disassembly
    assert "div" not in disassembly
    assert [s for s in _undefined_symbols(tmp_path / "k.o", nm) if "div" in s] == []


@pytest.mark.parametrize("spec", SPECS, ids=_ids)
def test_no_division_on_rv32i(spec: Spec, tmp_path: Path) -> None:
    """On RV32I (no M extension) a division would become a __divsi3/__udivdi3... call."""
    cc = require_tool("riscv64-unknown-elf-gcc")
    nm = require_tool("riscv64-unknown-elf-nm")
    (tmp_path / "k.c").write_text(render(design_for(spec)).source)
    cmd = [cc, "-march=rv32i", "-mabi=ilp32", "-ffreestanding", "-std=c99", *STRICT, "-c", "k.c",
           "-o", "k.o"]
    result = _compile(cmd, tmp_path)
    assert result.returncode == 0, result.stderr
    calls = _undefined_symbols(tmp_path / "k.o", nm)
    bad = [s for s in calls if "div" in s or "mod" in s or "float" in s or s.startswith("__f")]
    assert bad == [], f"runtime library calls for division or float: {bad}"


def test_source_uses_only_stdint_and_stddef() -> None:
    text = render(design_for(Spec())).source
    lines = text.splitlines()
    includes = sorted(line for line in lines if line.startswith("#include"))
    assert includes == ["#include <arm_acle.h>", "#include <stddef.h>", "#include <stdint.h>"]
    # arm_acle.h only for the optional Arm DSP path, which is guarded by a feature test
    acle = lines.index("#include <arm_acle.h>")
    assert lines[acle - 1] == "#if LCG_USE_SIMD32"
    code = "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith(("*", "/*"))
    )
    for word in ("float", "double", "malloc", " / ", " % "):
        assert word not in code, word
