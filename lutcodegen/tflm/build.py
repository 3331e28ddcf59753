"""Build TensorFlow Lite Micro from pinned sources and run models in it, on the host and in QEMU.

Tests and benchmarks compare the generated softmax kernels against the real TFLM, not against a
re-implementation, so TFLM itself is built here: from the exact commits its own download scripts
pin (table ``SOURCES``), for the host (``g++``) and for Cortex-M4 (Debian's ``arm-none-eabi-g++``
with picolibc, run on QEMU's ``mps2-an386``), with TFLM's reference kernels or with its CMSIS-NN
kernels (what ``OPTIMIZED_KERNEL_DIR=cmsis_nn`` selects).

Why not TFLM's Makefile: building the whole library takes about 20 minutes on two cores, its
Cortex-M target wants to download its own GCC, and it needs Python with Pillow to even parse.
The flags, defines and source lists below are the ones ``make -n`` prints for ``microlite``
(``TARGET=cortex_m_generic TARGET_ARCH=cortex-m4+fp`` for the Cortex-M4), restricted to the
framework and the kernels of the operators in ``OPERATORS``; compiling just those takes well
under a minute.

Everything lives in a cache outside the checkout (``cache_dir()``), never in the repository:

- ``src/<name>-<commit12>/``: the unpacked sources, from the pinned archives (``fetch --from``)
  or from the upstream repositories with git;
- ``tflm-build/<target>-<kernels>-<hash>/libtflm.a``: one static library per target and kernel
  set; the hash covers the source commits, the compilers' versions, every flag and the source
  list, so a change of any of them builds a new library and an unchanged one is never rebuilt.

Both are written to a temporary folder and renamed into place when complete, so an interrupted
fetch or build never looks finished.

Command line::

    python -m lutcodegen.tflm.build fetch [--from DIR]
    python -m lutcodegen.tflm.build library --target host|cortex-m4 --kernels reference|cmsis_nn
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TARGETS = ("host", "cortex-m4")
KERNEL_SETS = ("reference", "cmsis_nn")

#: The runner program and its marker functions (package data).
RUNNER_DIR = Path(__file__).resolve().parent / "runner"

#: Seconds one compiler call may take (the largest TFLM kernel takes a few seconds).
COMPILE_TIMEOUT = 600
#: Seconds a program may run by default (QEMU on a model of a few million instructions: ~1 s).
RUN_TIMEOUT = 300

#: The board (QEMU ``mps2-an386``): 4 MiB of flash at 0x0 and 4 MiB of RAM at 0x20000000.
M4_FLASH = (0x0, 0x400000)
M4_RAM = (0x20000000, 0x400000)
#: picolibc's linker script reserves only 2 KiB of stack by default; TFLM needs more.
M4_STACK_BYTES = 0x10000
QEMU_M4 = ("qemu-system-arm", "-M", "mps2-an386")

#: Format of the build cache; bump it when the layout or the build procedure changes.
BUILD_FORMAT = 1


class TflmBuildError(RuntimeError):
    """Fetching, building or running failed; the message says what and carries the tool output."""


# --- sources ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One pinned repository: where it comes from and what its archive must hash to."""

    name: str  #: archive and cache folder stem
    repository: str  #: GitHub owner/name
    commit: str
    sha256: str  #: of the ``git archive`` snapshot ``<name>-<commit12>.tar.xz``

    @property
    def stem(self) -> str:
        return f"{self.name}-{self.commit[:12]}"

    @property
    def archive(self) -> str:
        return f"{self.stem}.tar.xz"

    @property
    def url(self) -> str:
        return f"https://github.com/{self.repository}.git"


#: TFLM and the commits of its dependencies that TFLM pins. kissfft (also pinned by TFLM) is
#: left out: only the signal-processing kernels use it, and they are not built.
SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        # First: the flatbuffers patch is taken from it.
        Source(
            "tflite-micro",
            "tensorflow/tflite-micro",
            "90b983c2b3f1480642e040bbd2ddb37b998f3424",
            "76a293a673eab61885e67737e4d875a7a9592373a3f3e331e448c8c5fa50def9",
        ),
        Source(
            "CMSIS-NN",
            "ARM-software/CMSIS-NN",
            "4ab83cc3cc98fb85ed6dafb55e8ca02f1628dcae",
            "5cdc853986e208eb98fb67a4128525eb6c2f3929dac814557858910a391992be",
        ),
        Source(
            "CMSIS_6",
            "ARM-software/CMSIS_6",
            "5782d6f8057906d360f4b95ec08a2354afe5c9b9",
            "85f073750824e951114341cabff4f66782053e90b46bc24705236784e749046f",
        ),
        Source(
            "flatbuffers",
            "google/flatbuffers",
            "187240970746d00bbd26b0f5873ed54d2477f9f3",
            "201262dcf248a0e3c7fadc399d12efac6197f37cba70be2651d926b2afc6faa4",
        ),
        Source(
            "gemmlowp",
            "google/gemmlowp",
            "719139ce755a0f31cbf1c37f7f98adcc7fc9f425",
            "5ce79ad6157c689416585509cd8986efea20c3365c914ad00667fad8fb3fecc3",
        ),
        Source(
            "ruy",
            "google/ruy",
            "d37128311b445e758136b8602d1bbd2a755e115d",
            "4d89dfae78beb7415196341b6acf4ad357c6ac9bb8bbce993c2962530a81e4b8",
        ),
        Source(
            "Cortex_DFP",
            "ARM-software/Cortex_DFP",
            "c2c70a97a20fb355815e2ead3d4a40e35a4a3cdf",
            "8350ba6bd9fcf4c16506faaf37b339e99a999b6e45cf67f2efb08c19d022e95a",
        ),
    )
}

#: TFLM's patch to flatbuffers (locale-independent number parsing off, no default allocator),
#: which its download script applies; without it flatbuffers wants locale functions picolibc
#: does not have.
FLATBUFFERS_PATCH = "tensorflow/lite/micro/tools/make/flatbuffers.patch"
#: Written into every unpacked source folder: where it came from.
SOURCE_MARKER = ".lutcodegen-source.json"


def cache_dir() -> Path:
    """``$LUTCODEGEN_CACHE``, else ``$XDG_CACHE_HOME/lutcodegen``, else ``~/.cache/lutcodegen``."""
    explicit = os.environ.get("LUTCODEGEN_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "lutcodegen"


def source_dir(name: str) -> Path:
    """Where source ``name`` (a key of ``SOURCES``) is unpacked."""
    return cache_dir() / "src" / SOURCES[name].stem


def _tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _run_tool(
    cmd: Sequence[str],
    cwd: Path | None = None,
    timeout: float = COMPILE_TIMEOUT,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a build tool; a failure raises ``TflmBuildError`` with the command and its output."""
    try:
        done = subprocess.run(
            list(cmd),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise TflmBuildError(f"{cmd[0]} not found; run scripts/setup.sh") from None
    except subprocess.TimeoutExpired:
        raise TflmBuildError(f"{' '.join(cmd)} did not finish in {timeout:.0f} s") from None
    if done.returncode != 0:
        raise TflmBuildError(
            f"{' '.join(cmd)} failed (exit {done.returncode}):\n{_tail(done.stdout + done.stderr)}"
        )
    return done


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _unpack(archive: Path, sha256: str, dest: Path) -> None:
    """Check the archive's hash, then extract it; ``dest`` becomes the tree without its prefix."""
    if not archive.is_file():
        raise TflmBuildError(f"{archive} is missing")
    actual = _sha256(archive)
    if actual != sha256:
        raise TflmBuildError(f"{archive}: sha256 {actual}, expected {sha256}")
    staging = dest.parent / (dest.name + ".unpack")
    staging.mkdir()
    with tarfile.open(archive, "r:xz") as tar:
        if hasattr(tarfile, "data_filter"):  # refuse links and paths outside the folder
            tar.extractall(staging, filter="data")
        else:  # Python without extraction filters; the hash above vouches for the content
            tar.extractall(staging)  # noqa: S202
    entries = list(staging.iterdir())
    top = entries[0] if len(entries) == 1 and entries[0].is_dir() else staging
    top.rename(dest)
    shutil.rmtree(staging, ignore_errors=True)


def _git_fetch(source: Source, dest: Path) -> None:
    """Shallow fetch of exactly ``source.commit`` from upstream; the commit is checked."""
    git = shutil.which("git")
    if git is None:
        raise TflmBuildError(
            "git not found: install it, or pass --from DIR with the pinned "
            "archives (or set LUTCODEGEN_THIRD_PARTY)"
        )
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0")
    dest.mkdir()
    try:
        _run_tool([git, "init", "-q"], cwd=dest, env=env)
        _run_tool(
            [git, "fetch", "-q", "--depth", "1", source.url, source.commit],
            cwd=dest,
            env=env,
            timeout=3600,
        )
        _run_tool([git, "checkout", "-q", "FETCH_HEAD"], cwd=dest, env=env)
        head = _run_tool([git, "rev-parse", "HEAD"], cwd=dest, env=env).stdout.strip()
    except TflmBuildError as exc:
        raise TflmBuildError(
            f"could not fetch {source.repository} at {source.commit} from "
            f"{source.url}; without network access, pass --from DIR with the "
            f"pinned archives (or set LUTCODEGEN_THIRD_PARTY).\n{exc}"
        ) from None
    if head != source.commit:
        raise TflmBuildError(f"{source.url}: fetched {head}, expected {source.commit}")
    shutil.rmtree(dest / ".git")


def _apply_patch(tree: Path, patch: Path) -> None:
    """``git apply`` as TFLM's download script does; the ceiling keeps git from finding a repo
    above the tree, so the patch is applied to the tree's files only."""
    git = shutil.which("git")
    if git is None:
        raise TflmBuildError(f"git not found: it applies {patch.name} to flatbuffers")
    env = dict(os.environ, GIT_CEILING_DIRECTORIES=str(tree.parent))
    _run_tool(
        [git, "apply", "--ignore-space-change", "--ignore-whitespace", str(patch)],
        cwd=tree,
        env=env,
    )


def fetch(third_party: Path | None = None) -> Path:
    """Unpack every source missing from the cache; returns the TFLM root.

    From the pinned archives in ``third_party`` (hashes checked), else from the upstream
    repositories with git. Each folder is prepared under a temporary name and renamed when
    complete; a folder already present is left alone.
    """
    src = cache_dir() / "src"
    src.mkdir(parents=True, exist_ok=True)
    for source in SOURCES.values():
        target = src / source.stem
        if target.is_dir():
            continue
        work = Path(tempfile.mkdtemp(prefix=f".{source.stem}.", dir=src))
        try:
            tree = work / "tree"
            if third_party is not None:
                _unpack(Path(third_party) / source.archive, source.sha256, tree)
                origin = {"archive": source.archive, "sha256": source.sha256}
            else:
                _git_fetch(source, tree)
                origin = {"git": source.url}
            patches = []
            if source.name == "flatbuffers":
                _apply_patch(tree, source_dir("tflite-micro") / FLATBUFFERS_PATCH)
                patches.append(f"tflite-micro:{FLATBUFFERS_PATCH}")
            marker = {
                "repository": source.repository,
                "commit": source.commit,
                **origin,
                "patches": patches,
            }
            (tree / SOURCE_MARKER).write_text(json.dumps(marker, indent=1) + "\n")
            try:
                tree.rename(target)
            except OSError:
                if not target.is_dir():  # not a concurrent fetch that finished first
                    raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return src / SOURCES["tflite-micro"].stem


def _third_party_from_env() -> Path | None:
    value = os.environ.get("LUTCODEGEN_THIRD_PARTY")
    return Path(value) if value else None


def ensure_sources(third_party: Path | None = None) -> Path:
    """The prepared TFLM root; missing sources are unpacked from ``third_party`` (default
    ``$LUTCODEGEN_THIRD_PARTY``) when given, and never fetched from the network here."""
    third_party = third_party or _third_party_from_env()
    missing = [s.stem for s in SOURCES.values() if not source_dir(s.name).is_dir()]
    if missing:
        if third_party is None:
            raise TflmBuildError(
                f"TFLM sources missing from {cache_dir() / 'src'}: {', '.join(missing)}. "
                "Run scripts/setup.sh (or python -m lutcodegen.tflm.build fetch [--from DIR])"
            )
        fetch(third_party)
    return source_dir("tflite-micro")


# --- what is compiled ---------------------------------------------------------------------------

#: The operators the runner registers; their kernels (and *_common.cc) are compiled.
OPERATORS = (
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "FULLY_CONNECTED",
    "BATCH_MATMUL",
    "SOFTMAX",
    "RESHAPE",
    "CONCATENATION",
    "ADD",
    "SUB",
    "MUL",
    "MEAN",
    "RSQRT",
    "TRANSPOSE",
    "STRIDED_SLICE",
    "QUANTIZE",
    "DEQUANTIZE",
    "GATHER",
    "SQUARED_DIFFERENCE",
    "PAD",
    "SLICE",
)

#: TFLM's framework: interpreter, allocators, memory planners, flatbuffer and schema utilities,
#: logging, op resolver and the shared TFLite kernel helpers (``make -n``'s core list without
#: the test helpers, the fake and mock contexts and the recording allocators). The two
#: platform files (``debug_log.cc``, ``micro_time.cc``) are chosen per target.
FRAMEWORK_SOURCES = (
    "tensorflow/compiler/mlir/lite/core/api/error_reporter.cc",
    "tensorflow/compiler/mlir/lite/schema/schema_utils.cc",
    "tensorflow/lite/core/api/flatbuffer_conversions.cc",
    "tensorflow/lite/core/api/tensor_utils.cc",
    "tensorflow/lite/core/c/common.cc",
    "tensorflow/lite/kernels/internal/common.cc",
    "tensorflow/lite/kernels/internal/portable_tensor_utils.cc",
    "tensorflow/lite/kernels/internal/quantization_util.cc",
    "tensorflow/lite/kernels/internal/reference/portable_tensor_utils.cc",
    "tensorflow/lite/kernels/internal/runtime_shape.cc",
    "tensorflow/lite/kernels/internal/tensor_ctypes.cc",
    "tensorflow/lite/kernels/internal/tensor_utils.cc",
    "tensorflow/lite/kernels/kernel_util.cc",
    "tensorflow/lite/micro/arena_allocator/non_persistent_arena_buffer_allocator.cc",
    "tensorflow/lite/micro/arena_allocator/persistent_arena_buffer_allocator.cc",
    "tensorflow/lite/micro/arena_allocator/single_arena_buffer_allocator.cc",
    "tensorflow/lite/micro/flatbuffer_utils.cc",
    "tensorflow/lite/micro/memory_helpers.cc",
    "tensorflow/lite/micro/memory_planner/greedy_memory_planner.cc",
    "tensorflow/lite/micro/memory_planner/linear_memory_planner.cc",
    "tensorflow/lite/micro/memory_planner/non_persistent_buffer_planner_shim.cc",
    "tensorflow/lite/micro/micro_allocation_info.cc",
    "tensorflow/lite/micro/micro_allocator.cc",
    "tensorflow/lite/micro/micro_context.cc",
    "tensorflow/lite/micro/micro_interpreter.cc",
    "tensorflow/lite/micro/micro_interpreter_context.cc",
    "tensorflow/lite/micro/micro_interpreter_graph.cc",
    "tensorflow/lite/micro/micro_log.cc",
    "tensorflow/lite/micro/micro_op_resolver.cc",
    "tensorflow/lite/micro/micro_profiler.cc",
    "tensorflow/lite/micro/micro_resource_variable.cc",
    "tensorflow/lite/micro/micro_utils.cc",
    "tensorflow/lite/micro/system_setup.cc",
    "tensorflow/lite/micro/tflite_bridge/flatbuffer_conversions_bridge.cc",
    "tensorflow/lite/micro/tflite_bridge/micro_error_reporter.cc",
)
#: Platform files: the host prints with ``vfprintf(stderr)``; ``cortex_m_generic`` hands each
#: message to a callback the application registers (the runner's writes to semihosting stderr).
PLATFORM_SOURCES = {
    "host": ("tensorflow/lite/micro/debug_log.cc", "tensorflow/lite/micro/micro_time.cc"),
    "cortex-m4": (
        "tensorflow/lite/micro/cortex_m_generic/debug_log.cc",
        "tensorflow/lite/micro/cortex_m_generic/micro_time.cc",
    ),
}
KERNELS_DIR = "tensorflow/lite/micro/kernels"
#: Files of ``KERNELS_DIR`` for ``OPERATORS``: each kernel, its *_common.cc, and the helpers.
KERNEL_FILES = (
    "add",
    "add_common",
    "batch_matmul",
    "batch_matmul_common",
    "concatenation",
    "conv",
    "conv_common",
    "depthwise_conv",
    "depthwise_conv_common",
    "dequantize",
    "dequantize_common",
    "elementwise",
    "fully_connected",
    "fully_connected_common",
    "gather",
    "kernel_util",
    "mul",
    "mul_common",
    "pad",
    "pad_common",
    "quantize",
    "quantize_common",
    "reduce",
    "reduce_common",
    "reshape",
    "reshape_common",
    "slice",
    "softmax",
    "softmax_common",
    "squared_difference",
    "strided_slice",
    "strided_slice_common",
    "sub",
    "sub_common",
    "transpose",
    "transpose_common",
)

#: Flags of TFLM's Makefile (``make -n microlite``) for every C++ and C file.
COMMON_FLAGS = (
    "-fno-unwind-tables",
    "-fno-asynchronous-unwind-tables",
    "-ffunction-sections",
    "-fdata-sections",
    "-fmessage-length=0",
)
CXX_FLAGS = (
    "-std=c++17",
    "-fno-rtti",
    "-fno-exceptions",
    "-fno-threadsafe-statics",
    "-Wnon-virtual-dtor",
    "-Wsign-compare",
    "-Wdouble-promotion",
    "-Wunused-variable",
    "-Wunused-function",
    "-Wswitch",
    "-Wvla",
    "-Wall",
    "-Wextra",
    "-Wmissing-field-initializers",
    "-Wstrict-aliasing",
    "-Wno-unused-parameter",
)
C_FLAGS = ("-Wimplicit-function-declaration",)
#: TFLM compiles its framework for size and its kernels (and CMSIS-NN) for speed.
CORE_OPT = "-Os"
KERNEL_OPT = "-O2"
COMMON_DEFINES = (
    "TF_LITE_STATIC_MEMORY",
    "TF_LITE_DISABLE_X86_NEON",
    "KERNELS_OPTIMIZED_FOR_SPEED",
)
#: ``cortex_m_generic``'s platform flags for ``TARGET_ARCH=cortex-m4+fp``.
M4_PLATFORM_FLAGS = (
    "-mlittle-endian",
    "-Wno-type-limits",
    "-Wno-unused-private-field",
    "-fomit-frame-pointer",
    "-funsigned-char",
)
M4_DEFINES = (
    "TF_LITE_MCU_DEBUG_LOG",
    "CPU_M4=1",
    'CMSIS_DEVICE_ARM_CORTEX_M_XX_HEADER_FILE="ARMCM4.h"',
    "ARMCM4",
)
#: ``ext_libs/cmsis_nn.inc``: CMSIS-NN without its float kernels.
CMSIS_NN_DEFINES = ("CMSIS_NN", "ARM_NN_ENABLE_F16=0", "ARM_NN_ENABLE_F32=0")


@dataclass(frozen=True)
class Toolchain:
    """Compilers and the machine flags shared by compiling and linking for one target."""

    cc: str
    cxx: str
    ar: str
    machine: tuple[str, ...]  #: CPU and float ABI flags (empty on the host)
    c_specs: tuple[str, ...]  #: picolibc's specs for C
    cxx_specs: tuple[str, ...]  #: picolibc's specs for C++ (libstdc++ built on picolibc)


def _require(tool: str) -> str:
    if shutil.which(tool) is None:
        raise TflmBuildError(f"{tool} not found on PATH; run scripts/setup.sh")
    return tool


#: A C++ program using the C and C++ headers TFLM needs, linked as the runner is.
_PROBE_CC = (
    "#include <cstdint>\n#include <cstdio>\n#include <cmath>\n#include <limits>\n"
    'int main() { printf("%f\\n", std::sqrt(2.0)); return 0; }\n'
)


def _probe_m4(machine: Sequence[str]) -> str | None:
    """Link the probe for Cortex-M4 with ``machine`` flags; None on success, else the output."""
    with tempfile.TemporaryDirectory(prefix="tflm-probe-") as tmp:
        source = Path(tmp) / "probe.cc"
        source.write_text(_PROBE_CC)
        done = subprocess.run(
            [
                "arm-none-eabi-g++",
                *machine,
                "--specs=picolibcpp.specs",
                "--oslib=semihost",
                "--crt0=semihost",
                *_m4_memory_flags(),
                str(source),
                "-o",
                str(Path(tmp) / "probe.elf"),
            ],
            capture_output=True,
            text=True,
            timeout=COMPILE_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    return None if done.returncode == 0 else _tail(done.stdout + done.stderr, 20)


def _m4_memory_flags() -> list[str]:
    """picolibc's linker script takes the memory map (and the stack size) from these symbols."""
    return [
        f"-Wl,--defsym=__{key}={value:#x}"
        for key, value in (
            ("flash", M4_FLASH[0]),
            ("flash_size", M4_FLASH[1]),
            ("ram", M4_RAM[0]),
            ("ram_size", M4_RAM[1]),
            ("stack_size", M4_STACK_BYTES),
        )
    ]


M4_HARD_FLOAT = ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16")
M4_SOFT_FLOAT = ("-mcpu=cortex-m4+nofp", "-mthumb", "-mfloat-abi=soft")


@functools.cache
def m4_machine_flags() -> tuple[str, ...]:
    """Hard float when the toolchain links C++ for the Armv7E-M hard-float multilib (QEMU's
    mps2-an386 emulates the M4's single-precision FPU, and picolibc's crt0 enables it), else
    soft float as TFLM's ``TARGET_ARCH=cortex-m4``; neither linking raises."""
    _require("arm-none-eabi-g++")
    hard = _probe_m4(M4_HARD_FLOAT)
    if hard is None:
        return M4_HARD_FLOAT
    if _probe_m4(M4_SOFT_FLOAT) is None:
        return M4_SOFT_FLOAT
    raise TflmBuildError(
        "arm-none-eabi-g++ cannot link C++ with picolibc (apt-get install "
        "libstdc++-arm-none-eabi-picolibc; scripts/setup.sh does):\n" + hard
    )


@functools.cache
def toolchain(target: str) -> Toolchain:
    """The compilers for ``target``; a missing one (or libstdc++ for picolibc) raises."""
    if target == "host":
        return Toolchain(_require("gcc"), _require("g++"), _require("ar"), (), (), ())
    if target == "cortex-m4":
        _require("arm-none-eabi-gcc")
        return Toolchain(
            "arm-none-eabi-gcc",
            "arm-none-eabi-g++",
            _require("arm-none-eabi-ar"),
            m4_machine_flags(),
            ("--specs=picolibc.specs",),
            ("--specs=picolibcpp.specs",),
        )
    raise TflmBuildError(f"unknown target {target!r}; choose from {', '.join(TARGETS)}")


@functools.cache
def compiler_version(compiler: str) -> str:
    """``-dumpfullversion`` of ``compiler`` (part of the build key)."""
    return _run_tool([compiler, "-dumpfullversion"]).stdout.strip()


@dataclass(frozen=True)
class Unit:
    """One library source file: which tree it is in and how it is compiled."""

    root: str  #: key of ``SOURCES``
    path: str  #: relative to the root
    opt: str

    @property
    def is_c(self) -> bool:
        return self.path.endswith(".c")

    @property
    def object_name(self) -> str:
        # Flattened: several files share a base name (kernel_util.cc, common.cc, ...), and
        # ar keeps only base names.
        return f"{self.root}__{self.path.replace('/', '__')}.o"


def _check_choice(target: str, kernels: str) -> None:
    if target not in TARGETS:
        raise TflmBuildError(f"unknown target {target!r}; choose from {', '.join(TARGETS)}")
    if kernels not in KERNEL_SETS:
        raise TflmBuildError(
            f"unknown kernel set {kernels!r}; choose from {', '.join(KERNEL_SETS)}"
        )


def library_units(target: str, kernels: str) -> list[Unit]:
    """The source files of the library, as TFLM's Makefile would compile them.

    With ``cmsis_nn``, a file of ``kernels/cmsis_nn/`` replaces the same-named file of
    ``kernels/``, and all of CMSIS-NN's C sources but the float ones are compiled (the linker
    takes only what is called).
    """
    _check_choice(target, kernels)
    tflm = source_dir("tflite-micro")
    units = [
        Unit("tflite-micro", p, CORE_OPT) for p in (*FRAMEWORK_SOURCES, *PLATFORM_SOURCES[target])
    ]
    for name in KERNEL_FILES:
        path = f"{KERNELS_DIR}/{name}.cc"
        optimized = f"{KERNELS_DIR}/cmsis_nn/{name}.cc"
        if kernels == "cmsis_nn" and (tflm / optimized).is_file():
            path = optimized
        units.append(Unit("tflite-micro", path, KERNEL_OPT))
    if kernels == "cmsis_nn":
        nn = source_dir("CMSIS-NN")
        for found in sorted((nn / "Source").rglob("*.c")):
            rel = found.relative_to(nn).as_posix()
            if rel.endswith(("_f16.c", "_f32.c", "/arm_nntables_flt.c")):
                continue
            units.append(Unit("CMSIS-NN", rel, KERNEL_OPT))
    missing = [f"{u.root}/{u.path}" for u in units if not (source_dir(u.root) / u.path).is_file()]
    if missing:
        raise TflmBuildError(f"sources missing from {cache_dir() / 'src'}: {', '.join(missing)}")
    return units


def _include_dirs(target: str, kernels: str) -> tuple[Path, ...]:
    """TFLM's include paths (the ``downloads/`` ones point into the cache instead)."""
    tflm, cmsis = source_dir("tflite-micro"), source_dir("CMSIS_6")
    dirs = [tflm, source_dir("flatbuffers") / "include", source_dir("gemmlowp"), source_dir("ruy")]
    if target == "cortex-m4":
        dirs += [
            source_dir("Cortex_DFP") / "Device" / "ARMCM4" / "Include",
            cmsis / "CMSIS" / "Core" / "Include",
        ]
    if kernels == "cmsis_nn":
        nn = source_dir("CMSIS-NN")
        dirs += [cmsis, nn, cmsis / "CMSIS" / "Core" / "Include", nn / "Include"]
    return tuple(dict.fromkeys(dirs))


def _defines(target: str, kernels: str) -> tuple[str, ...]:
    defines = list(COMMON_DEFINES)
    if kernels == "cmsis_nn":
        defines += CMSIS_NN_DEFINES
    defines += ["TF_LITE_USE_CTIME"] if target == "host" else M4_DEFINES
    return tuple(defines)


@dataclass(frozen=True)
class Library:
    """A built ``libtflm.a`` and what a program needs to compile against it and link it.

    ``c_flags`` leave out the language standard (the library's C is C17 as TFLM builds it; a
    program's C is compiled as C99); ``cxx_flags`` include ``-std=c++17``. Neither holds an
    optimization level, include directory or define: those are separate fields.
    """

    target: str
    kernels: str
    archive: Path
    include_dirs: tuple[Path, ...]
    defines: tuple[str, ...]
    c_flags: tuple[str, ...]
    cxx_flags: tuple[str, ...]
    link_flags: tuple[str, ...]  #: before the objects
    link_libs: tuple[str, ...]  #: after the archive
    cc: str
    cxx: str

    @property
    def build_dir(self) -> Path:
        return self.archive.parent


def _library_description(
    target: str, kernels: str
) -> tuple[Library, list[Unit], dict[str, object]]:
    """The library's flags, its units, and the cache key that covers all of them."""
    tc = toolchain(target)
    platform = M4_PLATFORM_FLAGS if target == "cortex-m4" else ()
    c_flags = (*tc.machine, *tc.c_specs, *COMMON_FLAGS, *C_FLAGS, *platform)
    cxx_flags = (*tc.machine, *tc.cxx_specs, *COMMON_FLAGS, *CXX_FLAGS, *platform)
    if target == "cortex-m4":
        link_flags = (
            *tc.machine,
            *tc.cxx_specs,
            "--oslib=semihost",
            "--crt0=semihost",
            "-Wl,--gc-sections",
            *_m4_memory_flags(),
        )
    else:
        link_flags = ("-Wl,--gc-sections",)
    units = library_units(target, kernels)
    include_dirs = _include_dirs(target, kernels)
    defines = _defines(target, kernels)
    cache = str(cache_dir() / "src")
    material = {
        "format": BUILD_FORMAT,
        "target": target,
        "kernels": kernels,
        "sources": {s.name: s.commit for s in SOURCES.values()},
        "compilers": {tool: compiler_version(tool) for tool in (tc.cc, tc.cxx)},
        "c_flags": c_flags,
        "cxx_flags": cxx_flags,
        "defines": defines,
        "include_dirs": [str(d).replace(cache, "<src>") for d in include_dirs],
        "units": [[u.root, u.path, u.opt] for u in units],
        "c_std": "-std=c17",
        "pch": PCH_HEADER,
    }
    digest = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]
    key = f"{target}-{kernels}-{digest}"
    lib = Library(
        target,
        kernels,
        cache_dir() / "tflm-build" / key / "libtflm.a",
        include_dirs,
        defines,
        c_flags,
        cxx_flags,
        link_flags,
        ("-lm",),
        tc.cc,
        tc.cxx,
    )
    return lib, units, material


def _jobs() -> int:
    """Parallel compiler calls: ``$LUTCODEGEN_JOBS``, else the CPUs this process may use."""
    value = os.environ.get("LUTCODEGEN_JOBS")
    if value and value.isdigit() and int(value) > 0:
        return int(value)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _compile_all(commands: Sequence[list[str]], cwd: Path) -> None:
    """Run compiler commands in parallel; the first failure cancels what has not started."""
    with ThreadPoolExecutor(max_workers=_jobs()) as pool:
        futures = [pool.submit(_run_tool, cmd, cwd) for cmd in commands]
        wait(futures, return_when=FIRST_EXCEPTION)
        for future in futures:
            if future.done() and future.exception() is not None:
                for other in futures:
                    other.cancel()
                raise future.exception()  # type: ignore[misc]


def _children_cpu() -> float:
    """CPU seconds used by finished child processes (build statistics only)."""
    try:
        import resource
    except ImportError:
        return 0.0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock file, so that two processes do not build the same library at once
    (the loser then finds it built); without ``fcntl`` the atomic rename alone protects."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _compile_command(
    compiler: str,
    flags: Sequence[str],
    std: str,
    opt: str,
    defines: Sequence[str],
    include_dirs: Sequence[Path],
    source: Path,
    obj: Path,
) -> list[str]:
    cmd = [
        compiler,
        *flags,
        std,
        opt,
        *(f"-D{d}" for d in defines),
        *(f"-I{d}" for d in include_dirs),
        "-c",
        str(source),
        "-o",
        str(obj),
    ]
    return [c for c in cmd if c]


#: Precompiled once per optimization level and forced into the C++ files: every TFLM kernel
#: includes it, and parsing it (TFLite's flatbuffer schema, mostly) is about 4 of the 5 to 6
#: seconds each kernel file takes to compile; the PCH cuts a library build to about half. The
#: code generated is the same (checked by disassembly), since each file includes it anyway.
PCH_HEADER = "tensorflow/lite/micro/kernels/kernel_util.h"


def _pch_safe(source: Path) -> bool:
    """Whether including ``PCH_HEADER`` first cannot change ``source``: nothing is defined or
    undefined before its last ``#include`` (``portable_tensor_utils.cc`` defines the include
    guard of another header, for one)."""
    lines = [line.strip() for line in source.read_text(errors="replace").splitlines()]
    includes = [i for i, line in enumerate(lines) if line.startswith("#include")]
    if not includes:
        return False
    return not any(re.match(r"#\s*(define|undef)\b", line) for line in lines[: includes[-1]])


def _library_commands(
    lib: Library, units: Sequence[Unit], work: Path
) -> tuple[list[list[str]], list[list[str]]]:
    """The precompiled-header commands, then one command per unit (objects in work/obj)."""
    pch_units = {u for u in units if not u.is_c and _pch_safe(source_dir(u.root) / u.path)}
    headers = {}
    pch_commands = []
    for opt in sorted({u.opt for u in pch_units}):
        header = work / "pch" / opt.lstrip("-") / "tflm_pch.h"
        header.parent.mkdir(parents=True)
        header.write_text(f'#include "{PCH_HEADER}"\n')
        cmd = _compile_command(
            lib.cxx,
            lib.cxx_flags,
            "",
            opt,
            lib.defines,
            lib.include_dirs,
            header,
            header.with_name(header.name + ".gch"),
        )
        cmd[cmd.index("-c")] = "-xc++-header"
        pch_commands.append(cmd)
        headers[opt] = header
    commands = []
    for unit in units:
        compiler, flags, std = (
            (lib.cc, lib.c_flags, "-std=c17") if unit.is_c else (lib.cxx, lib.cxx_flags, "")
        )
        if unit in pch_units:
            flags = (*flags, "-Winvalid-pch", "-include", str(headers[unit.opt]))
        commands.append(
            _compile_command(
                compiler,
                flags,
                std,
                unit.opt,
                lib.defines,
                lib.include_dirs,
                source_dir(unit.root) / unit.path,
                work / "obj" / unit.object_name,
            )
        )
    return pch_commands, commands


def library(target: str, kernels: str) -> Library:
    """The static library for ``target`` and ``kernels``, built on first use and then cached.

    A cached library is returned without compiling anything; a build happens in a temporary
    folder renamed into place when the archive is complete.
    """
    _check_choice(target, kernels)
    ensure_sources()
    lib, units, material = _library_description(target, kernels)
    if lib.archive.is_file():
        return lib
    builds = lib.build_dir.parent
    builds.mkdir(parents=True, exist_ok=True)
    with _locked(builds / f".{lib.build_dir.name}.lock"):
        if lib.archive.is_file():  # built by another process meanwhile
            return lib
        work = Path(tempfile.mkdtemp(prefix=f".{lib.build_dir.name}.", dir=builds))
        try:
            started, cpu = time.monotonic(), _children_cpu()
            obj_dir = work / "obj"
            obj_dir.mkdir()
            pch_commands, commands = _library_commands(lib, units, work)
            _compile_all(pch_commands, work)
            _compile_all(commands, obj_dir)
            archive = work / "libtflm.a"
            _run_tool(
                [toolchain(target).ar, "rcs", str(archive), *(u.object_name for u in units)],
                cwd=obj_dir,
            )
            shutil.rmtree(obj_dir)
            shutil.rmtree(work / "pch", ignore_errors=True)
            seconds = time.monotonic() - started
            record = {
                **material,
                "seconds": round(seconds, 1),
                "jobs": _jobs(),
                "cpu_seconds": round(_children_cpu() - cpu, 1),
            }
            (work / "build.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
            work.rename(lib.build_dir)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return lib


# --- programs -----------------------------------------------------------------------------------

CXX_SUFFIXES = (".cc", ".cpp", ".cxx")


def build_program(
    target: str,
    kernels: str,
    sources: Sequence[Path],
    out: Path,
    include_dirs: Sequence[Path] = (),
    defines: Sequence[str] = (),
) -> Path:
    """Compile ``sources`` with the library's flags (C as C99, C++ as C++17; ``-O2``) and link
    them with it: a host executable, or a semihosting ELF for mps2-an386.

    ``defines`` are ``NAME`` or ``NAME=VALUE``; ``include_dirs`` come before the library's.
    """
    lib = library(target, kernels)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    includes = [*map(Path, include_dirs), *lib.include_dirs]
    all_defines = [*lib.defines, *defines]
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as tmp:
        commands, objects = [], []
        for index, source in enumerate(map(Path, sources)):
            if source.suffix == ".c":
                compiler, flags, std = lib.cc, lib.c_flags, "-std=c99"
            elif source.suffix in CXX_SUFFIXES:
                compiler, flags, std = lib.cxx, lib.cxx_flags, ""
            else:
                raise TflmBuildError(
                    f"{source}: not a C (.c) or C++ ({', '.join(CXX_SUFFIXES)}) source"
                )
            if not source.is_file():
                raise TflmBuildError(f"{source} does not exist")
            obj = Path(tmp) / f"{index}-{source.stem}.o"
            commands.append(
                _compile_command(
                    compiler, flags, std, "-O2", all_defines, includes, source.resolve(), obj
                )
            )
            objects.append(str(obj))
        _compile_all(commands, Path(tmp))
        _run_tool(
            [lib.cxx, *lib.link_flags, *objects, str(lib.archive), *lib.link_libs, "-o", str(out)],
            cwd=Path(tmp),
        )
    return out


def _run_program(cmd: Sequence[str], timeout: float) -> tuple[int, str, str]:
    """Run in a process group of its own, killed whole on timeout."""
    try:
        proc = subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,
        )
    except FileNotFoundError:
        raise TflmBuildError(f"{cmd[0]} not found; run scripts/setup.sh") from None
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        raise TflmBuildError(
            f"{' '.join(cmd)} did not finish in {timeout:.0f} s; output:\n{_tail(stdout + stderr)}"
        ) from None
    return proc.returncode, stdout, stderr


def _qemu_command(program: Path) -> list[str]:
    """QEMU with semihosting on stdio (the guest's stdout and stderr both arrive on stdout;
    ``main``'s return value becomes QEMU's exit status)."""
    from ..firmware.boards import SEMIHOSTING_STDIO

    return [*QEMU_M4, *SEMIHOSTING_STDIO, "-kernel", str(program)]


def run_program(target: str, program: Path, timeout: float = RUN_TIMEOUT) -> str:
    """Run a program built by ``build_program``; returns its standard output.

    On Cortex-M4 that is the semihosting console, which carries the guest's stderr too (so
    TFLM's MicroPrintf messages are in it). A non-zero exit or a timeout raises, with the output.
    """
    if target == "host":
        cmd = [str(Path(program).resolve())]
    elif target == "cortex-m4":
        cmd = _qemu_command(Path(program))
    else:
        raise TflmBuildError(f"unknown target {target!r}; choose from {', '.join(TARGETS)}")
    code, stdout, stderr = _run_program(cmd, timeout)
    if code != 0:
        raise TflmBuildError(
            f"{Path(program).name} on {target} exited with {code}:\n{_tail(stdout + stderr)}"
        )
    return stdout


_REGION = re.compile(r"insncount: region (\d+): (\d+) instructions")


def _marker_addresses(program: Path) -> tuple[int, int]:
    nm = _require("arm-none-eabi-nm")
    symbols = {}
    for line in _run_tool([nm, str(program)]).stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] in ("bench_start", "bench_stop"):
            symbols[parts[2]] = int(parts[0], 16) & ~1  # drop the Thumb bit
    if len(symbols) != 2:
        raise TflmBuildError(
            f"{program} has no bench_start/bench_stop markers (build it with "
            "runner/bench_markers.c)"
        )
    return symbols["bench_start"], symbols["bench_stop"]


def _plugin() -> Path:
    """The insncount QEMU plugin, compiled as ``lutcodegen bench`` does."""
    from ..firmware.bench import BenchError, build_plugin
    from ..firmware.build import find_firmware_dir

    firmware_dir = find_firmware_dir()
    if firmware_dir is None:
        raise TflmBuildError(
            "the firmware/ folder (with tools/qemu-plugin) is not found: "
            "instruction counting needs a checkout"
        )
    try:
        return build_plugin(firmware_dir)
    except (BenchError, subprocess.CalledProcessError) as exc:
        raise TflmBuildError(f"could not build the insncount plugin: {exc}") from None


def run_counted(program: Path, timeout: float = RUN_TIMEOUT) -> tuple[str, list[int]]:
    """Run a Cortex-M4 ELF in QEMU with the insncount plugin: its output, and the executed
    instructions of each ``bench_start`` .. ``bench_stop`` region in order (marker call
    overhead included)."""
    program = Path(program)
    start, stop = _marker_addresses(program)
    plugin = _plugin()
    with tempfile.TemporaryDirectory(prefix="tflm-count-") as tmp:
        log = Path(tmp) / "insncount.log"
        cmd = _qemu_command(program)
        cmd[-2:-2] = [
            "-plugin",
            f"{plugin},start={start:#x},stop={stop:#x}",
            "-d",
            "plugin",
            "-D",
            str(log),
        ]
        code, stdout, stderr = _run_program(cmd, timeout)
        counts = log.read_text() if log.is_file() else ""
    if code != 0:
        raise TflmBuildError(
            f"{program.name} on cortex-m4 exited with {code}:\n{_tail(stdout + stderr)}"
        )
    return stdout, [int(m.group(2)) for m in _REGION.finditer(counts)]


def count_regions(program: Path, timeout: float = RUN_TIMEOUT) -> list[int]:
    """Executed instructions of every marked region of a Cortex-M4 ELF, in order."""
    return run_counted(program, timeout)[1]


# --- the model runner ---------------------------------------------------------------------------

RUNNER_SOURCES = (RUNNER_DIR / "runner.cc", RUNNER_DIR / "bench_markers.c")
COUNT_MODES = ("invoke", "softmax")


def _c_rows(values: Sequence[str], per_line: int) -> str:
    return "\n".join(
        "    " + ", ".join(values[i : i + per_line]) + "," for i in range(0, len(values), per_line)
    )


def runner_data_header(model: bytes, inputs: Sequence[np.ndarray]) -> str:
    """``runner_data.h``: the model (16-byte aligned, as TFLM wants its flatbuffer) and the
    samples for input tensor 0, all int8 or all int16, one flat array of equal-size samples."""
    samples = [np.asarray(x) for x in inputs]
    dtypes = {x.dtype for x in samples}
    if dtypes - {np.dtype(np.int8), np.dtype(np.int16)} or len(dtypes) > 1:
        raise TflmBuildError(
            f"samples must be all int8 or all int16, got {', '.join(sorted(map(str, dtypes)))}"
        )
    sizes = {x.size for x in samples}
    if len(sizes) > 1:
        raise TflmBuildError(f"samples differ in size: {sorted(sizes)}")
    bits = 16 if dtypes == {np.dtype(np.int16)} else 8
    elements = sizes.pop() if sizes else 0
    flat = [str(int(v)) for x in samples for v in x.reshape(-1)] or ["0"]
    model_bytes = [f"0x{b:02x}" for b in model] or ["0"]
    return "\n".join(
        [
            "/* Generated by lutcodegen.tflm.build: the model and input samples of the TFLM runner."
            " */",
            "#ifndef RUNNER_DATA_H",
            "#define RUNNER_DATA_H",
            "#include <stdint.h>",
            f"#define RUNNER_SAMPLE_COUNT {len(samples)}",
            f"#define RUNNER_SAMPLE_ELEMENTS {elements}",
            f"#define RUNNER_INPUT_BITS {bits}",
            f"typedef int{bits}_t runner_input_t;",
            f"static const unsigned int runner_model_size = {len(model)};",
            f"alignas(16) static const unsigned char runner_model[{len(model_bytes)}] = {{",
            _c_rows(model_bytes, 16),
            "};",
            f"static const runner_input_t runner_samples[{len(flat)}] = {{",
            _c_rows(flat, 20),
            "};",
            "#endif /* RUNNER_DATA_H */",
            "",
        ]
    )


def build_runner(
    target: str,
    kernels: str,
    model: bytes,
    inputs: Sequence[np.ndarray],
    out: Path,
    *,
    sources: Sequence[Path] = (),
    include_dirs: Sequence[Path] = (),
    defines: Sequence[str] = (),
    registration_header: str | None = None,
    registration: str | None = None,
    count: str | None = None,
    arena_bytes: int | None = None,
) -> Path:
    """The runner program for ``model`` and ``inputs``.

    ``registration_header`` (a header name, e.g. ``"my_softmax.h"``) and ``registration`` (a
    C++ expression of type ``TFLMRegistration``) replace TFLM's SOFTMAX; ``sources`` (and
    ``include_dirs``) are what they need. ``count`` marks each ``Invoke`` (``"invoke"``) or each
    SOFTMAX operator (``"softmax"``) for ``count_regions``.
    """
    if (registration_header is None) != (registration is None):
        raise TflmBuildError("registration_header and registration go together")
    if count is not None and count not in COUNT_MODES:
        raise TflmBuildError(f"count {count!r}: choose from {', '.join(COUNT_MODES)}")
    extra = list(defines)
    if registration is not None:
        extra += [
            f'RUNNER_REGISTRATION_HEADER="{registration_header}"',
            f"RUNNER_SOFTMAX_REGISTRATION={registration}",
        ]
    if count is not None:
        extra.append(f"RUNNER_COUNT_{count.upper()}")
    if arena_bytes is not None:
        extra.append(f"RUNNER_ARENA_BYTES={int(arena_bytes)}")
    with tempfile.TemporaryDirectory(prefix="tflm-runner-") as tmp:
        (Path(tmp) / "runner_data.h").write_text(runner_data_header(model, inputs))
        return build_program(
            target,
            kernels,
            [*RUNNER_SOURCES, *map(Path, sources)],
            out,
            [Path(tmp), *map(Path, include_dirs)],
            extra,
        )


@dataclass(frozen=True)
class RunnerOutput:
    """What the runner printed: the arena it used and each sample's output tensors' bytes."""

    arena_used: int
    outputs: list[list[bytes]]  #: [sample][output index] raw bytes
    log: str  #: everything else it printed (TFLM's messages)

    def array(self, sample: int, index: int, dtype: np.dtype | type = np.int8) -> np.ndarray:
        return np.frombuffer(self.outputs[sample][index], dtype=dtype)


def parse_runner_output(text: str, samples: int) -> RunnerOutput:
    """Parse ``arena_used N`` and ``out <sample> <index> <hex>`` lines; anything else is log.
    Missing samples or an ``error`` line raise."""
    arena = None
    rows: dict[int, dict[int, bytes]] = {}
    log = []
    for raw in text.splitlines():
        line = raw.strip()
        parts = line.split()
        if line.startswith("error"):
            raise TflmBuildError(f"runner reported {line!r}:\n{_tail(text)}")
        if len(parts) == 2 and parts[0] == "arena_used" and parts[1].isdigit():
            arena = int(parts[1])
        elif len(parts) in (3, 4) and parts[0] == "out":
            rows.setdefault(int(parts[1]), {})[int(parts[2])] = bytes.fromhex(
                parts[3] if len(parts) == 4 else ""
            )
        elif line:
            log.append(line)
    if arena is None or sorted(rows) != list(range(samples)):
        raise TflmBuildError(
            f"runner output incomplete ({len(rows)} of {samples} samples):\n{_tail(text)}"
        )
    outputs = [[rows[s][i] for i in sorted(rows[s])] for s in range(samples)]
    return RunnerOutput(arena, outputs, "\n".join(log))


# --- command line -------------------------------------------------------------------------------

USAGE_ERROR = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(USAGE_ERROR)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m lutcodegen.tflm.build",
        description="Fetch TFLM's pinned sources into the cache and build TFLM.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    fetch_cmd = sub.add_parser("fetch", help="unpack the pinned sources into the cache")
    fetch_cmd.add_argument(
        "--from",
        dest="third_party",
        type=Path,
        metavar="DIR",
        help="folder with the pinned .tar.xz archives (default "
        "$LUTCODEGEN_THIRD_PARTY, else git from upstream)",
    )
    lib_cmd = sub.add_parser("library", help="build (or find cached) libtflm.a, print its path")
    lib_cmd.add_argument("--target", required=True, choices=TARGETS)
    lib_cmd.add_argument("--kernels", required=True, choices=KERNEL_SETS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "fetch":
            third_party = args.third_party or _third_party_from_env()
            if third_party is not None and not Path(third_party).is_dir():
                sys.stderr.write(f"fetch: {third_party} is not a folder\n")
                return USAGE_ERROR
            print(fetch(third_party))
        else:
            started = time.monotonic()
            lib = library(args.target, args.kernels)
            sys.stderr.write(f"{args.target}/{args.kernels}: {time.monotonic() - started:.1f} s\n")
            print(lib.archive)
    except TflmBuildError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
