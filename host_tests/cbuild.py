"""Compile generated C on the host with cffi (API mode) and call it on numpy arrays.

Each design is built once per test session into its own hash-named extension module, so many
configurations load side by side. Arrays cross the boundary without copies (``from_buffer``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from pathlib import Path

import cffi
import numpy as np
import pytest

from lutcodegen import render
from lutcodegen.methods import Design

#: Set in CI: a missing compiler, cross toolchain or emulator fails instead of skipping.
REQUIRE_TOOLS = os.environ.get("LUTCODEGEN_REQUIRE_TOOLS") == "1"


def require_tool(name: str) -> str:
    """Path of tool ``name``; skips the test when absent (fails instead in CI)."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} not found on PATH"
        if REQUIRE_TOOLS:
            pytest.fail(message + " (LUTCODEGEN_REQUIRE_TOOLS=1)")
        pytest.skip(message)
    return path


#: ``Kernel.status``'s default scratch argument: the kernel's own scratch row.
OWN_SCRATCH = "own"


def scratch_dtype(dsg: Design) -> type | None:
    """numpy type of one scratch-row entry (``--scratch-row on``), or None without one."""
    if dsg.spec.scratch_row != "on":
        return None
    return np.uint16 if dsg.entry_bits == 16 else np.uint32  # type: ignore[attr-defined]


class Kernel:
    """A compiled softmax: call it with int8 (or int16) rows, get the outputs or the status.

    A kernel generated with a scratch row gets one of its own, ``max_row`` entries, which every
    call passes unless the caller gives another (or None for NULL)."""

    def __init__(self, dsg: Design, ffi: cffi.FFI, lib: object) -> None:
        self.design = dsg
        self.ffi = ffi
        self.function = getattr(lib, dsg.spec.function_name)
        self.out_dtype = np.int8 if dsg.spec.bits <= 8 else np.int16
        self.out_ctype = dsg.spec.output_ctype
        self.in_dtype = np.int8 if dsg.spec.input_bits == 8 else np.int16
        self.in_ctype = dsg.spec.input_ctype
        entry = scratch_dtype(dsg)
        self.scratch = None if entry is None else np.zeros(dsg.spec.max_row, dtype=entry)

    def status(
        self,
        x: np.ndarray | None,
        num_rows: int,
        row_size: int,
        out: np.ndarray | None,
        scratch: np.ndarray | str | None = OWN_SCRATCH,
    ) -> int:
        """Raw call; ``None`` passes a NULL pointer."""
        inp = self.ffi.NULL if x is None else self.ffi.from_buffer(f"{self.in_ctype}[]", x)
        outp = self.ffi.NULL if out is None else self.ffi.from_buffer(f"{self.out_ctype}[]", out)
        if self.scratch is None:
            return int(self.function(inp, num_rows, row_size, outp))
        row = self.scratch if isinstance(scratch, str) else scratch
        ctype = f"{self.design.spec.prefix}_scratch_t[]"
        rowp = self.ffi.NULL if row is None else self.ffi.from_buffer(ctype, row)
        return int(self.function(inp, num_rows, row_size, outp, rowp))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=self.in_dtype)
        rows = x.reshape(-1, x.shape[-1])
        out = np.empty(rows.shape, dtype=self.out_dtype)
        status = self.status(rows, rows.shape[0], rows.shape[1], out)
        if status != 0:
            raise RuntimeError(f"{self.design.spec.function_name} returned {status}")
        return out.reshape(x.shape).astype(np.int64)


class KernelBuilder:
    """Builds and caches kernels for one test session under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cache: dict[str, Kernel] = {}

    def __call__(self, dsg: Design, defines: tuple[str, ...] = ()) -> Kernel:
        """The compiled kernel; ``defines`` (``NAME=VALUE``) select the C's optional paths."""
        source = render(dsg).source
        key = hashlib.sha256((source + repr(defines)).encode()).hexdigest()[:16]
        if key in self.cache:
            return self.cache[key]
        spec = dsg.spec
        name = f"_lcg_{key}"
        ffi = cffi.FFI()
        entry = scratch_dtype(dsg)
        if entry is None:
            ffi.cdef(
                f"int32_t {spec.function_name}(const {spec.input_ctype} *input, int32_t num_rows, "
                f"int32_t row_size, {spec.output_ctype} *output);"
            )
        else:
            ffi.cdef(
                f"typedef uint{np.dtype(entry).itemsize * 8}_t {spec.prefix}_scratch_t;\n"
                f"int32_t {spec.function_name}(const {spec.input_ctype} *input, int32_t num_rows, "
                f"int32_t row_size, {spec.output_ctype} *output, {spec.prefix}_scratch_t *scratch);"
            )
        flags = ["-O2", "-std=c99"] + [f"-D{d}" for d in defines]
        ffi.set_source(name, source, extra_compile_args=flags)
        build_dir = self.root / key
        build_dir.mkdir(parents=True, exist_ok=True)
        library = ffi.compile(tmpdir=str(build_dir), verbose=False)
        module_spec = importlib.util.spec_from_file_location(name, library)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        kernel = Kernel(dsg, module.ffi, module.lib)
        self.cache[key] = kernel
        return kernel
