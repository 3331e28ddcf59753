"""Compile a generated model C file on the host with cffi and call its kernels on numpy arrays.

The struct layouts are declared here by field name only; cffi's API mode checks them against
the generated C, so a drift between this file and the template fails the build.
"""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
from pathlib import Path

import cffi
import numpy as np

from lutcodegen.firmware import cmsis_nn
from lutcodegen.model import firmware
from lutcodegen.model.codegen import render_model, scratch_sizes
from lutcodegen.model.quantize import QAdd, QLayerNorm, QLinear, QuantModel, Requant

CDEF = """
typedef struct {{
    const int8_t *weight; const int32_t *bias; const int32_t *mult; const int32_t *shift;
    int32_t in_dim; int32_t out_dim; int32_t bias_rows;
}} {p}_linear_s8_params;
typedef struct {{
    const int32_t *gain; const int32_t *bias; uint64_t eps; int32_t dim; uint32_t shift;
}} {p}_layer_norm_s8_params;
typedef struct {{ int32_t mult_a; int32_t mult_b; uint32_t shift; }} {p}_add_s8_params;
typedef struct {{
    int32_t tokens; int32_t dim; int32_t heads; int32_t head_dim;
    const int32_t *score_mult; const int32_t *score_shift;
    const int32_t *context_mult; const int32_t *context_shift;
}} {p}_attention_s8_params;
void {p}_patch_gather_s8(const int8_t *image, int32_t image_size, int32_t patch, int8_t *out);
void {p}_linear_s8(const {p}_linear_s8_params *prm, const int8_t *in, int32_t rows,
                   int8_t *out);
void {p}_layer_norm_s8(const {p}_layer_norm_s8_params *prm, const int8_t *in, int32_t rows,
                       int8_t *out);
void {p}_add_s8(const int8_t *a, const int8_t *b, int32_t count, const {p}_add_s8_params *prm,
                int8_t *out);
void {p}_lookup_s8(int8_t *x, int32_t count, const int8_t *table);
int32_t {p}_attention_s8(const {p}_attention_s8_params *prm, const int8_t *qkv,
                         int8_t *scores, int8_t *work, int8_t *out);
int32_t {p}_model_run(const int8_t *image, int8_t *logits, int8_t *scratch);
"""


def _i8(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.int8)


class CompiledModel:
    """The generated C of one quantized model, callable kernel by kernel."""

    def __init__(
        self, qm: QuantModel, prefix: str, ffi: cffi.FFI, lib: object, scratch_bytes: int
    ) -> None:
        self.qm, self.prefix, self.ffi, self.lib = qm, prefix, ffi, lib
        self.scratch_bytes = scratch_bytes
        self._keep: list[object] = []  # arrays referenced by parameter structs

    def _fn(self, name: str) -> object:
        return getattr(self.lib, f"{self.prefix}_{name}")

    def _buf(self, ctype: str, arr: np.ndarray) -> object:
        self._keep.append(arr)
        return self.ffi.from_buffer(f"{ctype}[]", arr)

    def linear_params(self, q: QLinear) -> object:
        w = np.ascontiguousarray(q.weight, dtype=np.int8)
        b = np.ascontiguousarray(q.bias, dtype=np.int32)
        m = np.ascontiguousarray(q.rq.mult, dtype=np.int32)
        s = np.ascontiguousarray(q.rq.shift, dtype=np.int32)
        return self.ffi.new(
            f"{self.prefix}_linear_s8_params *",
            {
                "weight": self._buf("int8_t", w),
                "bias": self._buf("int32_t", b),
                "mult": self._buf("int32_t", m),
                "shift": self._buf("int32_t", s),
                "in_dim": q.in_dim,
                "out_dim": q.out_dim,
                "bias_rows": b.shape[0],
            },
        )

    def linear(self, q: QLinear, x: np.ndarray) -> np.ndarray:
        x = _i8(x)
        out = np.empty((x.shape[0], q.out_dim), dtype=np.int8)
        self._fn("linear_s8")(
            self.linear_params(q),
            self.ffi.from_buffer("int8_t[]", x),
            x.shape[0],
            self.ffi.from_buffer("int8_t[]", out),
        )
        return out.astype(np.int64)

    def layer_norm(self, q: QLayerNorm, x: np.ndarray) -> np.ndarray:
        x = _i8(x)
        gain = np.ascontiguousarray(q.gain, dtype=np.int32)
        bias = np.ascontiguousarray(q.bias, dtype=np.int32)
        prm = self.ffi.new(
            f"{self.prefix}_layer_norm_s8_params *",
            {
                "gain": self._buf("int32_t", gain),
                "bias": self._buf("int32_t", bias),
                "eps": q.eps,
                "dim": len(gain),
                "shift": q.shift,
            },
        )
        out = np.empty_like(x)
        self._fn("layer_norm_s8")(
            prm,
            self.ffi.from_buffer("int8_t[]", x),
            x.shape[0],
            self.ffi.from_buffer("int8_t[]", out),
        )
        return out.astype(np.int64)

    def add(self, q: QAdd, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a, b = _i8(a), _i8(b)
        prm = self.ffi.new(
            f"{self.prefix}_add_s8_params *",
            {"mult_a": q.mult_a, "mult_b": q.mult_b, "shift": q.shift},
        )
        out = np.empty_like(a)
        self._fn("add_s8")(
            self.ffi.from_buffer("int8_t[]", a),
            self.ffi.from_buffer("int8_t[]", b),
            a.size,
            prm,
            self.ffi.from_buffer("int8_t[]", out),
        )
        return out.astype(np.int64)

    def lookup(self, x: np.ndarray, table: np.ndarray) -> np.ndarray:
        buf = _i8(x).copy()
        tab = _i8(table)
        self._fn("lookup_s8")(
            self.ffi.from_buffer("int8_t[]", buf), buf.size, self.ffi.from_buffer("int8_t[]", tab)
        )
        return buf.astype(np.int64)

    def attention(
        self, qkv: np.ndarray, score: Requant, context: Requant
    ) -> tuple[int, np.ndarray]:
        c = self.qm.config
        qkv = _i8(qkv)
        t = qkv.shape[0]

        def repeated(values: np.ndarray, n: int) -> object:
            return self._buf("int32_t", np.repeat(values.astype(np.int32), n))

        prm = self.ffi.new(
            f"{self.prefix}_attention_s8_params *",
            {
                "tokens": t,
                "dim": c.dim,
                "heads": c.heads,
                "head_dim": c.head_dim,
                "score_mult": repeated(score.mult, t),
                "score_shift": repeated(score.shift, t),
                "context_mult": repeated(context.mult, c.head_dim),
                "context_shift": repeated(context.shift, c.head_dim),
            },
        )
        scores = np.empty(t * t, dtype=np.int8)
        work = np.empty(2 * t * c.head_dim, dtype=np.int8)
        out = np.empty((t, c.dim), dtype=np.int8)
        status = self._fn("attention_s8")(
            prm,
            self.ffi.from_buffer("int8_t[]", qkv),
            self.ffi.from_buffer("int8_t[]", scores),
            self.ffi.from_buffer("int8_t[]", work),
            self.ffi.from_buffer("int8_t[]", out),
        )
        return int(status), out.astype(np.int64)

    def patch_gather(self, image: np.ndarray) -> np.ndarray:
        c = self.qm.config
        img = _i8(image)
        out = np.empty(c.patches * c.patch_size, dtype=np.int8)
        self._fn("patch_gather_s8")(
            self.ffi.from_buffer("int8_t[]", img),
            c.image_size,
            c.patch,
            self.ffi.from_buffer("int8_t[]", out),
        )
        return out.reshape(c.patches, c.patch_size).astype(np.int64)

    def run(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Logits (n, classes) and return values (n,) of ``model_run`` for each image."""
        images = _i8(images).reshape(len(images), -1)
        logits = np.empty((len(images), self.qm.config.classes), dtype=np.int8)
        status = np.empty(len(images), dtype=np.int64)
        scratch = self.ffi.new("int8_t[]", self.scratch_bytes)
        run = self._fn("model_run")
        for i in range(len(images)):
            status[i] = run(
                self.ffi.from_buffer("int8_t[]", images[i]),
                self.ffi.from_buffer("int8_t[]", logits[i]),
                scratch,
            )
        return logits.astype(np.int64), status


def build_model(
    qm: QuantModel, prefix: str, root: Path, defines: tuple[str, ...] = ()
) -> CompiledModel:
    """Compile the model's generated C once into ``root`` under a hash-named module, with
    ``-D`` for each of ``defines`` (e.g. ``DVIT_MUL32=1``, the Cortex-M0+ products)."""
    source = render_model(qm, prefix).source
    flags = ["-O2", "-std=c99", *(f"-D{d}" for d in defines)]
    sources: list[str] = []
    if f"{prefix.upper()}_CMSIS_NN=1" in defines:  # CMSIS-NN's portable C on the host
        files, include = cmsis_nn.model_sources()
        sources = [str(f) for f in files]
        flags += ["-isystem", str(include)]
    key = hashlib.sha256("\n".join([source, *flags]).encode()).hexdigest()[:16]
    name = f"_model_{key}"
    ffi = cffi.FFI()
    ffi.cdef(CDEF.format(p=prefix))
    ffi.set_source(name, source, sources=sources, extra_compile_args=flags)
    build_dir = root / key
    build_dir.mkdir(parents=True, exist_ok=True)
    library = ffi.compile(tmpdir=str(build_dir), verbose=False)
    spec = importlib.util.spec_from_file_location(name, library)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return CompiledModel(qm, prefix, module.ffi, module.lib, sum(scratch_sizes(qm.config).values()))


#: Host build of the firmware's main.c: AddressSanitizer and UBSan, stopping at the first report.
SANITIZE_FLAGS = [
    "-std=c99",
    "-O1",
    "-g",
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=all",
    "-Wall",
    "-Wextra",
    "-Werror",
]


def run_sanitized(gcc: str, qm: QuantModel, images: np.ndarray, root: Path) -> firmware.RunResult:
    """The firmware's own ``main.c`` and the generated model, built for the host with the
    sanitizers and run on ``images``: an out-of-bounds access (of the exactly sized static
    scratch buffer too) or undefined behaviour fails the assertion with the report."""
    pair = render_model(qm, "dvit", header_name="model.h")
    (root / "model.c").write_text(pair.source)
    (root / "model.h").write_text(pair.header or "")
    (root / "images.h").write_text(firmware.images_header(images))
    cmd = [gcc, *SANITIZE_FLAGS, "-I.", str(firmware.MAIN_C), "model.c", "-o", "run"]
    built = subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stderr
    proc = subprocess.run([str(root / "run")], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return firmware.parse_output(proc.stdout, len(images))
