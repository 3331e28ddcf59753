"""From a model's softmax operators to kernels and a TFLite Micro registration that binds them.

``plan`` decides which operators get a kernel: one kernel per distinct parameter set, where the
parameters are the ones TFLM computes at Prepare (the tensor types and ``SoftmaxParams``'
``input_multiplier``, ``input_left_shift`` and, for int8 input, ``diff_min``), because the
generated registration matches on exactly those at run time. ``--max-row`` of each kernel is the
longest row among the operators it serves. ``render_files`` turns the plan into C and C++ text.

int16-in, int16-out operators (16x8 models) get ``--input-bits 16`` kernels. Their parameters
come from ``QuantizeMultiplier(scale * beta / (10 / 65535))``, as TFLM's
``CalculateSoftmaxParams`` computes them; the registration computes them the same way at Prepare
but does not call that function for them, because it also fills two 513-entry tables in the
arena that the generated kernels keep in flash.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

import numpy as np

from .. import __version__
from ..methods import design_for, gemmlowp, tflite_s16
from ..render import _environment, render
from ..spec import (
    MAX_ROW_LIMIT,
    TFLITE_MAX_ROW_LIMIT,
    TFLITE_S16_MAX_ROW_LIMIT,
    Spec,
    SpecError,
    check_prefix,
)
from .reader import ModelInfo, SoftmaxOp

#: Methods a registration can use: bit-identical to TFLM, or the fastest (within 1 LSB).
TFLM_METHODS = ("tflite", "lut")
ON_MISMATCH = ("error", "fallback")

#: (input type, output type) pairs the registration binds, with the kernel function suffix:
#: TFLM's three quantized softmax kernels (int16 in with int16 out is the 16x8 models').
SUPPORTED_TYPES = {("int8", "int8"): "s8", ("int8", "int16"): "s8_s16", ("int16", "int16"): "s16"}

#: TFLM's required output quantization per (input, output) type: (scale, zero point). int8
#: output must be exactly 1/256 (TFLM checks ==); int16 output within 0.1 % of 1/65536 after
#: int8 input, of 1/32768 after int16 input.
OUTPUT_QUANTIZATION = {
    ("int8", "int8"): (1.0 / 256, -128),
    ("int8", "int16"): (1.0 / 65536, -32768),
    ("int16", "int16"): (1.0 / 32768, 0),
}

#: Words a C++ namespace must not be (C++23 keywords and alternative tokens); the prefix is one.
CXX_KEYWORDS = frozenset(
    """
    alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t char16_t
    char32_t class compl concept const consteval constexpr constinit const_cast continue co_await
    co_return co_yield decltype default delete do double dynamic_cast else enum explicit export
    extern false float for friend goto if inline int long mutable namespace new noexcept not
    not_eq nullptr operator or or_eq private protected public register reinterpret_cast requires
    return short signed sizeof static static_assert static_cast struct switch template this
    thread_local throw true try typedef typeid typename union unsigned using virtual void volatile
    wchar_t while xor xor_eq std tflite
    """.split()
)


class PlanError(ValueError):
    """The model cannot be served as asked; the message names the operator and what is allowed."""


@dataclass(frozen=True)
class Kernel:
    """One generated kernel and the TFLM parameters it is bound by."""

    name: str  #: C prefix of the kernel, also its file stem
    spec: Spec
    input_type: str
    output_type: str
    input_multiplier: int
    input_left_shift: int
    diff_min: int  #: 0 for int16 input, whose TFLM softmax has no diff_min
    input_scale: float  #: float32 value from the model
    beta: float  #: float32 value from the model
    ops: tuple[SoftmaxOp, ...]

    @property
    def suffix(self) -> str:
        """The kernel's C function suffix, which is also its row in the registration's table."""
        return SUPPORTED_TYPES[(self.input_type, self.output_type)]

    @property
    def function(self) -> str:
        return f"{self.name}_softmax_{self.suffix}"


@dataclass(frozen=True)
class Plan:
    """Everything ``lutcodegen tflm`` generates for one model."""

    model_name: str
    model_sha256: str
    method: str
    prefix: str
    on_mismatch: str
    kernels: tuple[Kernel, ...]
    unbound: tuple[tuple[SoftmaxOp, str], ...] = field(default=())  #: (op, why) left to TFLM

    @property
    def command(self) -> str:
        return (
            f"lutcodegen tflm {self.model_name} -o DIR --method {self.method} "
            f"--prefix {self.prefix} --on-mismatch {self.on_mismatch}"
        )


def display_name(path_name: str) -> str:
    """The model's file name as it appears in comments and C strings: its last component, with
    every character outside ``[A-Za-z0-9._+-]`` replaced by ``_``, so no name can end a comment,
    a string literal or inject a printf conversion."""
    base = path_name.replace("\\", "/").rsplit("/", 1)[-1] or "model"
    return re.sub(r"[^A-Za-z0-9._+-]", "_", base)


def check_tflm_prefix(prefix: object) -> None:
    """The prefix names C functions and macros, files, and the C++ namespace of the registration."""
    check_prefix(prefix)
    assert isinstance(prefix, str)
    if prefix in CXX_KEYWORDS:
        raise SpecError(f"prefix {prefix!r} cannot be a C++ namespace (a C++ keyword or reserved)")


def _op_text(op: SoftmaxOp) -> str:
    q = op.input.quantization
    return (
        f"{op.where}: {op.input.type_name} {list(op.input.shape)} -> {op.output.type_name}, "
        f"input scale {q.scale!r}, zero point {q.zero_point}, beta {op.beta!r}"
    )


def _unsupported(op: SoftmaxOp) -> str | None:
    """Why this operator cannot get a kernel, or None."""
    pair = (op.input.type_name, op.output.type_name)
    if pair not in SUPPORTED_TYPES:
        allowed = ", ".join(f"{a} in with {b} out" for a, b in SUPPORTED_TYPES)
        return f"{pair[0]} in with {pair[1]} out is not supported (supported: {allowed})"
    return None


def _check_op(op: SoftmaxOp) -> None:
    """Refuse what TFLM itself would refuse at Prepare, with the operator named."""
    where = op.where
    shape = op.input.shape
    if not shape:
        raise PlanError(f"{where}: the input is a scalar; TFLM's SOFTMAX needs a dimension")
    if any(d < 1 for d in shape):
        raise PlanError(
            f"{where}: input shape {list(shape)} has a dimension below 1 "
            "(dynamic shapes are not supported)"
        )
    if op.output.shape != shape:
        raise PlanError(
            f"{where}: output shape {list(op.output.shape)} differs from the input "
            f"shape {list(shape)}"
        )
    scale = op.input.quantization.scale
    if scale is None or not np.isfinite(scale) or scale <= 0:
        raise PlanError(f"{where}: the input has no positive per-tensor scale ({scale!r})")
    if not np.isfinite(op.beta) or op.beta <= 0:
        raise PlanError(f"{where}: beta is {op.beta!r}; a positive finite beta is required")
    if op.input.type_name == "int16" and op.input.quantization.zero_point != 0:
        raise PlanError(
            f"{where}: int16 input must have zero point 0 (TFLM's convention), not "
            f"{op.input.quantization.zero_point}"
        )
    want_scale, want_zero = OUTPUT_QUANTIZATION[(op.input.type_name, op.output.type_name)]
    out_q = op.output.quantization
    exact = op.output.type_name == "int8"
    if (
        out_q.scale is None
        or out_q.zero_point != want_zero
        or (exact and out_q.scale != want_scale)
        or (not exact and abs(out_q.scale - want_scale) > 0.001 * want_scale)
    ):
        raise PlanError(
            f"{where}: {op.output.type_name} output after {op.input.type_name} input must have "
            f"scale {want_scale!r} and zero point {want_zero} (TFLM's convention), not scale "
            f"{out_q.scale!r} and zero point {out_q.zero_point}"
        )


def _row_limit(method: str, input_type: str) -> int:
    """The longest row a kernel of this method and input type may be asked for. (The int16
    ``lut`` kernel's proof sets its own, lower, limit per scale; its Spec check names it.)"""
    if method == "tflite":
        return TFLITE_S16_MAX_ROW_LIMIT if input_type == "int16" else TFLITE_MAX_ROW_LIMIT
    return MAX_ROW_LIMIT


def tflm_params(op: SoftmaxOp) -> tuple[int, int, int]:
    """(input_multiplier, input_left_shift, diff_min) as TFLM's Prepare computes them for this
    operator; diff_min is 0 for int16 input, whose softmax has none (TFLM leaves it unset)."""
    scale = float(op.input.quantization.scale)  # type: ignore[arg-type]
    if op.input.type_name == "int16":
        multiplier, left_shift = tflite_s16.softmax_params(scale, op.beta)
        return multiplier, left_shift, 0
    return gemmlowp.softmax_params(scale, op.beta)


def _kernel_spec(method: str, ops: list[SoftmaxOp], name: str) -> Spec:
    """The generator's spec for the kernel that serves ``ops`` (one parameter set)."""
    first = ops[0]
    wide = first.input.type_name == "int16"
    spec = Spec(
        method=method,
        bits=8 if first.output.type_name == "int8" else 16,
        input_scale=float(first.input.quantization.scale),  # type: ignore[arg-type]
        beta=first.beta,
        max_row=max(op.row_size for op in ops),
        prefix=name,
        input_bits=16 if wide else 8,
    )
    dsg = design_for(spec)  # the int16 kernels' limits (lut's proof, tflite's shift) are here
    if method == "tflite" and wide:
        # the kernel bakes in the parameters the registration matches on: the same by design
        assert isinstance(dsg, tflite_s16.TfliteS16Design)
        assert (dsg.input_multiplier, dsg.input_left_shift, 0) == tflm_params(first)
    return spec


def plan(
    model: ModelInfo,
    model_name: str,
    model_bytes: bytes,
    method: str = "tflite",
    prefix: str = "lcg",
    on_mismatch: str = "error",
) -> Plan:
    """Group the model's softmax operators into kernels; refuse what cannot be served."""
    if method not in TFLM_METHODS:
        raise PlanError(f"method must be one of {', '.join(TFLM_METHODS)}, not {method!r}")
    if on_mismatch not in ON_MISMATCH:
        raise PlanError(f"--on-mismatch must be one of {', '.join(ON_MISMATCH)}")
    check_tflm_prefix(prefix)
    if not model.softmax:
        raise PlanError(
            f"{model_name} has no SOFTMAX operator ({model.operators} operators in "
            f"{model.subgraphs} subgraphs)"
        )
    groups: dict[tuple[object, ...], list[SoftmaxOp]] = {}
    params: dict[tuple[object, ...], tuple[int, int, int]] = {}
    unbound: list[tuple[SoftmaxOp, str]] = []
    for op in model.softmax:
        why = _unsupported(op)
        if why is not None:
            if on_mismatch == "fallback":
                unbound.append((op, why))
                continue
            raise PlanError(
                f"{_op_text(op)}: {why}; --on-mismatch fallback leaves such "
                "operators to TFLM's own kernel"
            )
        _check_op(op)
        limit = _row_limit(method, op.input.type_name)
        if op.row_size > limit:
            raise PlanError(
                f"{_op_text(op)}: rows of {op.row_size} elements are longer than "
                f"method {method} supports (at most {limit})"
            )
        scale = float(op.input.quantization.scale)  # type: ignore[arg-type]
        try:
            tflm = tflm_params(op)
        except ValueError as exc:
            raise PlanError(f"{_op_text(op)}: TFLM cannot prepare it: {exc}") from None
        key: tuple[object, ...] = (op.input.type_name, op.output.type_name, *tflm)
        if method == "lut":
            key += (scale, op.beta)  # the lut kernel is made for this exact scale and beta
        groups.setdefault(key, []).append(op)
        params[key] = tflm
    kernels = []
    for i, (key, ops) in enumerate(groups.items()):
        first = ops[0]
        name = f"{prefix}_k{i}"
        scale = float(first.input.quantization.scale)  # type: ignore[arg-type]
        try:
            spec = _kernel_spec(method, ops, name)
        except SpecError as exc:
            raise PlanError(f"{_op_text(first)}: {exc}") from None
        multiplier, left_shift, diff_min = params[key]
        kernels.append(
            Kernel(
                name,
                spec,
                first.input.type_name,
                first.output.type_name,
                multiplier,
                left_shift,
                diff_min,
                scale,
                first.beta,
                tuple(ops),
            )
        )
    if not kernels:
        raise PlanError(
            f"{model_name}: none of its {len(model.softmax)} SOFTMAX operators can "
            "get a generated kernel: " + "; ".join(w for _, w in unbound)
        )
    return Plan(
        display_name(model_name),
        hashlib.sha256(model_bytes).hexdigest(),
        method,
        prefix,
        on_mismatch,
        tuple(kernels),
        tuple(unbound),
    )


_TFLITE_TYPES = {"int8": "kTfLiteInt8", "int16": "kTfLiteInt16"}


def _float_literal(value: float) -> str:
    """A C++ float literal that reads back as exactly this float32 value."""
    text = repr(float(np.float32(value)))
    return (text if ("." in text or "e" in text) else text + ".0") + "f"


def render_files(p: Plan) -> list[tuple[str, str]]:
    """(file name, text) of every file: each kernel's .c and .h, then the registration pair."""
    files: list[tuple[str, str]] = []
    for k in p.kernels:
        # The registration calls each kernel with its operators' row sizes only: where none is a
        # multiple of 16, lut's loop for such rows would be dead code.
        unused = all(op.row_size % 16 for op in k.ops)
        generated = render(
            design_for(k.spec),
            header_name=f"{k.name}.h",
            whole_rows_off="no operator this kernel serves has such rows" if unused else "",
        )
        assert generated.header is not None
        files += [(f"{k.name}.h", generated.header), (f"{k.name}.c", generated.source)]
    guard = f"{p.prefix.upper()}_TFLM_H"
    context = {
        "version": __version__,
        "plan": p,
        "P": p.prefix.upper(),
        "guard": guard,
        "header": f"{p.prefix}_tflm.h",
        "rows": [
            {
                "kernel": k,
                "input_type": _TFLITE_TYPES[k.input_type],
                "output_type": _TFLITE_TYPES[k.output_type],
                "exact_scale": "true" if p.method == "lut" else "false",
                "scale": _float_literal(k.input_scale) if p.method == "lut" else "0.0f",
                "beta": _float_literal(k.beta) if p.method == "lut" else "0.0f",
                **{suffix: "nullptr" for suffix in SUPPORTED_TYPES.values()},
                k.suffix: k.function,
            }
            for k in p.kernels
        ],
        "op_lines": [f"{_op_text(op)} -> {k.name}" for k in p.kernels for op in k.ops]
        + [f"{_op_text(op)} -> TFLM's own kernel ({why})" for op, why in p.unbound],
        "fallback": 1 if p.on_mismatch == "fallback" else 0,
    }
    env = _environment()
    for name, template in (
        (f"{p.prefix}_tflm.h", "tflm/registration.h.j2"),
        (f"{p.prefix}_tflm.cc", "tflm/registration.cc.j2"),
    ):
        files.append((name, env.get_template(template).render(context)))
    return files
