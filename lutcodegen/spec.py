"""The generator's input: one validated, immutable description of a softmax kernel.

Everything downstream (tables, reference model, C text) is a pure function of a ``Spec``, so
validating here, once, means no later stage has to guess what a bad value would do. The options
themselves (names, domains, defaults, which methods they apply to) are declared once in
``lutcodegen.registry``; this module holds the typed record and the rules that span options.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass

import numpy as np

from .registry import (
    C_KEYWORDS,
    INT16_INPUT_METHODS,
    MAX_ROW_LIMIT,
    METHODS,
    OPTIONS,
    TFLITE_MAX_ROW_LIMIT,
    TFLITE_S16_MAX_ROW_LIMIT,
    SpecError,
    check_header_name,
    check_prefix,
)

__all__ = [
    "C_KEYWORDS",
    "INT16_INPUT_METHODS",
    "MAX_ROW_LIMIT",
    "METHODS",
    "TFLITE_MAX_ROW_LIMIT",
    "TFLITE_S16_MAX_ROW_LIMIT",
    "Spec",
    "SpecError",
    "check_header_name",
    "check_prefix",
    "validate",
]


@dataclass(frozen=True)
class Spec:
    """What to generate. Construct with keywords; ``validate`` runs on construction.

    Attributes:
        bits: output precision B (2..16). Output scale is 2^-B, zero point -2^(B-1); int8
            storage for B <= 8, int16 above. B = 8 and B = 16 are TFLite Micro's conventions.
        input_scale: real value of one input LSB (> 0).
        beta: softmax temperature multiplier; the kernel computes softmax(beta * scale * x).
        max_row: the longest row the kernel accepts; all overflow proofs are made for it.
        prefix: C identifier prefix of everything emitted (``lcg`` gives ``lcg_softmax_s8``).
        method: which algorithm (see ``METHODS``).
        table_layout: ``full`` (256 entries, fastest) or ``compact`` (only nonzero entries).
        input_multiplier, input_left_shift, diff_min: method ``tflite`` only: TFLite's own
            softmax parameters, for users who have them from a converted model; when given
            (all three together) they replace the ones computed from beta * input_scale.

    Method options of the paper methods ``rexp`` and ``lut2d`` (None = method default; see
    ``lutcodegen.methods.paper`` for what each means and why the default is what it is):
        index_shift: numerator table index step is 2^index_shift input LSBs.
        exp_entries: clip the numerator table to this many entries (later ones count as 0).
        sum_mode: "log" or "linear" quantization of the row sum into the second table.
        sum_shift: linear mode: one sum bucket spans 2^sum_shift numerator units.
        sum_mantissa: log mode: 2^sum_mantissa sum buckets per octave.
        sum_max: largest sum with its own bucket; larger sums share the last one.
        num_shift: ``lut2d``: the 2D table's numerator index is round(n / 2^num_shift).
        rounding: ``rexp``: "nearest" or "floor" for the final ``(n * alpha) >> F``.

    Input width (every method reads it; default 8):
        input_bits: 8 for int8 logits, 16 for int16 logits (TFLite's "16x8" mode: symmetric
            int16 input, no zero point). 16 is offered by methods ``lut`` and ``tflite`` with
            ``bits=16`` only, meaning TFLite's int16 output (scale 1/32768, zero point 0).

    Method options of ``lut``:
        unroll: elements per loop iteration of the portable loops over a row (1, 2, 4 or 8;
            None = 8, or 1 with optimize size):
            fewer loop instructions per element for more code bytes; same outputs. Cores with
            the Arm DSP extension run four-lane SIMD32 loops instead.
        optimize: "speed" (None means speed) or "size": the smallest code that stays fast.
            ``size`` keeps plain loops, so ``unroll`` has no effect there (it reads 1 unless
            given). Same outputs.
        scratch_row: "off" (default) or "on": the entry point takes a caller-supplied row of
            ``max_row`` table entries that holds each element's exp value between the sum and
            the output pass, so the output pass loads it instead of indexing the table again.
            int8 input and optimize speed only (``optimize`` size is about code bytes, and a
            scratch row spends RAM and code to save instructions). Same outputs.

    Shared limit (None = 1 MiB):
        max_table_bytes: designs whose tables would exceed this many bytes are refused before
            any table is built, so generation stays bounded in time and memory.
    """

    bits: int = 8
    input_scale: float = 0.0625
    beta: float = 1.0
    max_row: int = 256
    prefix: str = "lcg"
    method: str = "lut"
    table_layout: str = "full"
    input_multiplier: int | None = None
    input_left_shift: int | None = None
    diff_min: int | None = None
    index_shift: int | None = None
    exp_entries: int | None = None
    sum_mode: str | None = None
    sum_shift: int | None = None
    sum_mantissa: int | None = None
    sum_max: int | None = None
    num_shift: int | None = None
    rounding: str | None = None
    unroll: int | None = None
    input_bits: int = 8
    optimize: str | None = None
    scratch_row: str = "off"
    max_table_bytes: int | None = None

    def __post_init__(self) -> None:
        _normalize(self)
        validate(self)

    @property
    def scale(self) -> float:
        """The effective input scale ``beta * input_scale`` that the exponent sees."""
        return self.beta * self.input_scale

    @property
    def input_ctype(self) -> str:
        """C element type of the input rows."""
        return f"int{self.input_bits}_t"

    @property
    def output_ctype(self) -> str:
        return "int8_t" if self.bits <= 8 else "int16_t"

    @property
    def function_name(self) -> str:
        """``<prefix>_softmax_s8`` (same width in and out) or ``..._s8_s16``, as CMSIS-NN names."""
        suffix = f"s{self.input_bits}"
        if self.bits > self.input_bits:
            suffix += "_s16"
        return f"{self.prefix}_softmax_{suffix}"

    def options(self) -> dict[str, object]:
        """The options as a plain dict, in field order (to build a changed copy of a spec)."""
        return asdict(self)

    def command_line(self) -> str:
        """The full command line that reproduces this spec, every option spelled out.

        Options are printed in registry order: each shared option, each option of this method
        that has a default, and each method option that is set (None means the method's choice).
        """
        words = ["lutcodegen"]
        for option in OPTIONS:
            value = getattr(self, option.name)
            if value is None or not option.applies_to(self.method):
                continue
            if option.quiet_default and value == option.default:
                continue
            text = repr(value) if option.kind is float else str(value)
            words += [option.flag, text]
        return " ".join(words)


def _normalize(spec: Spec) -> None:
    """Numbers as the plain Python type of their option, before validation: ``np.float64(0.0625)``,
    ``np.float32(0.0625)`` and the integer ``1`` for a float option, ``np.int64(256)`` for an
    integer one. Otherwise an identical design got another banner (``np.float64(0.0625)`` is not
    a command) and another SPEC_HASH. Booleans are left alone so that validation refuses them,
    and so is an integer too large for a float (validation says it is not finite)."""
    for option in OPTIONS:
        value = getattr(spec, option.name)
        if value is None or isinstance(value, bool) or isinstance(value, np.bool_):
            continue
        if option.kind is float and isinstance(value, numbers.Real):
            try:
                value = float(value)
            except OverflowError:
                continue
        elif option.kind is int and isinstance(value, numbers.Integral):
            value = int(value)
        elif option.kind is str and isinstance(value, str):
            value = str(value)
        else:
            continue
        object.__setattr__(spec, option.name, value)


def validate(spec: Spec) -> None:
    """Raise ``SpecError`` naming the first option that is outside its domain.

    Each option is checked against its registry entry, in registry order; then the method's own
    rules that span several options (``Method.check``) run.
    """
    for option in OPTIONS:
        value = getattr(spec, option.name)
        if value is None and option.default is None:
            continue  # the method's own choice
        if not option.applies_to(spec.method) and value != option.default:
            raise SpecError(
                f"{option.flag} does not apply to method {spec.method!r} (only to methods "
                f"{', '.join(option.methods)})"
            )
        option.validate(value)
        if option.name == "beta":
            try:
                scale = float(spec.scale)  # two int options can multiply past 1.8e308
            except OverflowError:
                scale = math.inf
            if not math.isfinite(scale) or scale <= 0:
                raise SpecError(
                    f"beta * input_scale must be positive and finite, got {spec.scale!r}"
                )
    _check_input_bits(spec)
    _check_scratch_row(spec)
    # The method records import the method modules, which import this one: look them up late.
    from .methods import method_record

    check = method_record(spec).check
    if check is not None:
        check(spec)


def _check_scratch_row(spec: Spec) -> None:
    """The scratch row trades RAM and code bytes for instructions, the opposite of what
    ``--optimize size`` asks for, so the two are not combined."""
    if spec.scratch_row == "on" and spec.optimize == "size":
        raise SpecError(
            "--scratch-row on applies to --optimize speed only (it spends RAM and code bytes "
            "to save instructions; --optimize size asks for the fewest bytes)"
        )


def _check_input_bits(spec: Spec) -> None:
    """int16 input: int16 output in TFLite's convention only, and not the int8-only options.
    (That only methods ``lut`` and ``tflite`` take it is the option's registry entry.)"""
    if spec.input_bits == 8:
        return
    if spec.bits != 16:
        raise SpecError(
            f"--input-bits 16 gives int16 output in TFLite's convention (scale 1/32768, zero "
            f"point 0): use --bits 16, got --bits {spec.bits!r}"
        )
    if spec.unroll is not None:
        raise SpecError("--unroll applies to int8 input only, not to --input-bits 16")
    if spec.optimize is not None:
        raise SpecError("--optimize applies to int8 input only, not to --input-bits 16")
    if spec.scratch_row != "off":
        raise SpecError("--scratch-row applies to int8 input only, not to --input-bits 16")
    if spec.method == "tflite" and spec.table_layout != "full":
        raise SpecError(
            "--table-layout applies to --method tflite with int8 input only (its int16 tables "
            "are TFLite's fixed 513-entry tables)"
        )
