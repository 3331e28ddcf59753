"""The generator's input: one validated, immutable description of a softmax kernel.

Everything downstream (tables, reference model, C text) is a pure function of a ``Spec``, so
validating here, once, means no later stage has to guess what a bad value would do.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

#: Methods the generator knows. Each has a module in ``lutcodegen.methods``.
METHODS = ("lut", "rexp", "lut2d", "tflite")

#: Optional, method-specific fields of ``Spec`` (None = the method's default), by method.
#: A field set for a method that does not list it is an error, never silently ignored.
METHOD_OPTIONS: dict[str, tuple[str, ...]] = {
    "rexp": (
        "index_shift", "exp_entries", "sum_mode", "sum_shift", "sum_mantissa", "sum_max",
        "rounding",
    ),
    "lut2d": (
        "index_shift", "exp_entries", "sum_mode", "sum_shift", "sum_mantissa", "sum_max",
        "num_shift",
    ),
    "tflite": ("input_multiplier", "input_left_shift", "diff_min"),
    "lut": ("unroll",),
}

#: Methods whose exp table follows ``table_layout``.
TABLE_LAYOUT_METHODS = ("lut", "tflite")

#: Allowed values of the optional string fields.
SUM_MODES = ("log", "linear")
ROUNDINGS = ("nearest", "floor")

#: Exp-table layouts: ``full`` pads to all 256 differences (no bounds check per element, faster);
#: ``compact`` stops where entries round to 0 and checks the index (fewer bytes).
TABLE_LAYOUTS = ("full", "compact")

#: Reserved words of C89 through C23. A prefix must not be one, nor start a reserved identifier.
C_KEYWORDS = frozenset(
    """
    auto break case char const continue default do double else enum extern float for goto if
    int long register return short signed sizeof static struct switch typedef union unsigned void
    volatile while inline restrict _Bool _Complex _Imaginary _Alignas _Alignof _Atomic _Generic
    _Noreturn _Static_assert _Thread_local alignas alignof bool constexpr false nullptr
    static_assert thread_local true typeof typeof_unqual _BitInt _Decimal32 _Decimal64
    _Decimal128
    """.split()
)

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

#: A header file name that can go into '#include "NAME"' verbatim on every compiler: portable
#: file name characters only (no quote, newline, backslash, apostrophe or comment opener).
_HEADER_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*\Z")

#: Rows longer than this cannot be proven overflow-free with 64-bit sums of 32-bit entries
#: at a useful precision; the bound is far beyond any attention row on a microcontroller.
MAX_ROW_LIMIT = 1 << 20

#: Input widths: int8 logits (every method) or int16 logits (TFLite's 16x8 mode; methods in
#: ``INT16_INPUT_METHODS``, int16 output only).
INPUT_BITS = (8, 16)
INT16_INPUT_METHODS = ("lut", "tflite")

#: Method ``tflite`` with int16 input sums exps of at most 32767 each in an int32, as TFLite does;
#: this is the longest row whose sum cannot overflow.
TFLITE_S16_MAX_ROW_LIMIT = 1 << 16

#: Method ``tflite`` sums exps of at most 2^19 each (1.0 in Q12.19) in 32 bits unsigned; this is
#: the longest row whose sum cannot wrap, so every accepted row has a defined result.
TFLITE_MAX_ROW_LIMIT = (1 << 13) - 1


class SpecError(ValueError):
    """A generator option is out of its domain; the message says what is allowed."""


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

    Input width (all methods read it; default 8):
        input_bits: 8 for int8 logits, 16 for int16 logits (TFLite's "16x8" mode: symmetric
            int16 input, no zero point). 16 is offered by methods ``lut`` and ``tflite`` with
            ``bits=16`` only, meaning TFLite's int16 output (scale 1/32768, zero point 0).

    Method option of ``lut`` (None = 8):
        unroll: elements per loop iteration of the portable loops over a row (1, 2, 4 or 8):
            fewer loop instructions per element for more code bytes; same outputs. Cores with
            the Arm DSP extension run four-lane SIMD32 loops instead.
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

    def __post_init__(self) -> None:
        validate(self)

    @property
    def scale(self) -> float:
        """The effective input scale ``beta * input_scale`` that the exponent sees."""
        return self.beta * self.input_scale

    @property
    def input_ctype(self) -> str:
        return "int8_t" if self.input_bits == 8 else "int16_t"

    @property
    def output_ctype(self) -> str:
        return "int8_t" if self.bits <= 8 else "int16_t"

    @property
    def output_zero_point(self) -> int:
        """-2^(B-1) for int8 input; 0 for int16 input (TFLite's int16 convention)."""
        return 0 if self.input_bits == 16 else -(1 << (self.bits - 1))

    @property
    def output_scale_bits(self) -> int:
        """F with output scale 2^-F: B for int8 input, 15 for int16 input (scale 1/32768)."""
        return 15 if self.input_bits == 16 else self.bits

    @property
    def function_name(self) -> str:
        if self.input_bits == 16:
            return f"{self.prefix}_softmax_s16"
        suffix = "s8" if self.bits <= 8 else "s8_s16"
        return f"{self.prefix}_softmax_{suffix}"

    def options(self) -> dict[str, object]:
        """The options as a plain dict, in field order (to build a changed copy of a spec)."""
        return asdict(self)

    def command_line(self) -> str:
        """The full command line that reproduces this spec, every option spelled out."""
        return (
            f"lutcodegen --method {self.method} --bits {self.bits}"
            f" --input-scale {self.input_scale!r} --beta {self.beta!r}"
            f" --max-row {self.max_row} --prefix {self.prefix}"
            + (
                f" --table-layout {self.table_layout}"
                if self.method in TABLE_LAYOUT_METHODS
                else ""
            )
            + "".join(
                f" --{name.replace('_', '-')} {getattr(self, name)}"
                for name in _OPTIONAL_FIELDS
                if getattr(self, name) is not None
            )
            + (f" --input-bits {self.input_bits}" if self.input_bits != 8 else "")
        )


#: The optional method fields in command-line order.
_OPTIONAL_FIELDS = (
    "index_shift", "exp_entries", "sum_mode", "sum_shift", "sum_mantissa", "sum_max",
    "num_shift", "rounding", "input_multiplier", "input_left_shift", "diff_min", "unroll",
)

#: Integer domains of the optional fields: (lowest, highest).
_OPTIONAL_INT_RANGES = {
    "index_shift": (0, 7),
    "exp_entries": (1, 256),
    "sum_shift": (0, 40),
    "sum_mantissa": (0, 12),
    "sum_max": (1, 1 << 40),
    "num_shift": (0, 15),
    "unroll": (1, 8),
}


def _positive_finite(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(f"{name} must be a number, got {value!r}")
    try:
        as_float = float(value)  # a Python int past 1.8e308 does not convert
    except OverflowError:
        as_float = math.inf
    if not math.isfinite(as_float) or value <= 0:
        raise SpecError(f"{name} must be a positive finite number, got {value!r}")


def validate(spec: Spec) -> None:
    """Raise ``SpecError`` naming the first option that is outside its domain."""
    if spec.method not in METHODS:
        raise SpecError(f"method must be one of {', '.join(METHODS)}; got {spec.method!r}")
    if spec.table_layout not in TABLE_LAYOUTS:
        raise SpecError(
            f"table_layout must be one of {', '.join(TABLE_LAYOUTS)}; got {spec.table_layout!r}"
        )
    if spec.table_layout != "full" and spec.method not in TABLE_LAYOUT_METHODS:
        raise SpecError(
            f"--table-layout applies to methods {', '.join(TABLE_LAYOUT_METHODS)}, "
            f"not {spec.method!r}"
        )
    if isinstance(spec.bits, bool) or not isinstance(spec.bits, int) or not 2 <= spec.bits <= 16:
        raise SpecError(f"bits must be an integer from 2 to 16, got {spec.bits!r}")
    _positive_finite("input_scale", spec.input_scale)
    _positive_finite("beta", spec.beta)
    try:
        scale = float(spec.scale)  # two int options can multiply past 1.8e308
    except OverflowError:
        scale = math.inf
    if not math.isfinite(scale) or scale <= 0:
        raise SpecError(f"beta * input_scale must be positive and finite, got {spec.scale!r}")
    if (
        isinstance(spec.max_row, bool)
        or not isinstance(spec.max_row, int)
        or not 1 <= spec.max_row <= MAX_ROW_LIMIT
    ):
        raise SpecError(
            f"max_row must be an integer from 1 to {MAX_ROW_LIMIT}, got {spec.max_row!r}"
        )
    check_prefix(spec.prefix)
    _validate_input_bits(spec)
    _validate_method_options(spec)
    _validate_tflite(spec)


def _validate_input_bits(spec: Spec) -> None:
    """int16 input: methods lut and tflite, int16 output in TFLite's convention only."""
    if spec.input_bits not in INPUT_BITS or isinstance(spec.input_bits, bool):
        raise SpecError(f"input_bits must be 8 or 16, got {spec.input_bits!r}")
    if spec.input_bits == 8:
        return
    if spec.method not in INT16_INPUT_METHODS:
        raise SpecError(
            f"--input-bits 16 is offered by methods {', '.join(INT16_INPUT_METHODS)}, "
            f"not {spec.method!r}"
        )
    if spec.bits != 16:
        raise SpecError(
            f"--input-bits 16 gives int16 output in TFLite's convention (scale 1/32768, zero "
            f"point 0): use --bits 16, got --bits {spec.bits!r}"
        )
    if spec.unroll is not None:
        raise SpecError("--unroll applies to int8 input only, not to --input-bits 16")
    if spec.method == "tflite" and spec.table_layout != "full":
        raise SpecError(
            "--table-layout applies to --method tflite with int8 input only (its int16 tables "
            "are TFLite's fixed 513-entry tables)"
        )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _validate_tflite(spec: Spec) -> None:
    """Options of method ``tflite``: TFLite's output formats, row limit and raw parameters."""
    raw = (spec.input_multiplier, spec.input_left_shift, spec.diff_min)
    if spec.method != "tflite":
        if any(v is not None for v in raw):
            raise SpecError(
                "input_multiplier, input_left_shift and diff_min apply to method tflite only"
            )
        return
    if spec.bits not in (8, 16):
        raise SpecError(
            f"method tflite supports bits 8 (int8 output) and 16 (int16 output) only, "
            f"got {spec.bits!r}"
        )
    if spec.input_bits == 16:
        _validate_tflite_s16(spec)
        return
    if spec.max_row > TFLITE_MAX_ROW_LIMIT:
        raise SpecError(
            f"method tflite accepts max_row up to {TFLITE_MAX_ROW_LIMIT}, got {spec.max_row!r}"
        )
    if all(v is None for v in raw):
        return
    if any(v is None for v in raw):
        raise SpecError("give input_multiplier, input_left_shift and diff_min together")
    multiplier, left_shift, diff_min = raw
    if not _is_int(multiplier) or not 1 <= multiplier <= (1 << 31) - 1:
        raise SpecError(f"input_multiplier must be an integer from 1 to 2^31-1, got {multiplier!r}")
    if not _is_int(left_shift) or not 0 <= left_shift <= 31:
        raise SpecError(f"input_left_shift must be an integer from 0 to 31, got {left_shift!r}")
    if not _is_int(diff_min) or not -(1 << 31) < diff_min <= 0:
        raise SpecError(f"diff_min must be an integer from -(2^31-1) to 0, got {diff_min!r}")
    # TFLite computes diff * (1 << left_shift) in int32 for every diff >= diff_min (diff >= -255).
    largest = min(255, -diff_min)
    if largest and (left_shift > 30 or largest << left_shift > 1 << 31):
        raise SpecError(
            f"diff_min {diff_min} with input_left_shift {left_shift} overflows TFLite's int32 "
            f"rescaling (|diff| * 2^left_shift must stay <= 2^31 for diff >= diff_min)"
        )


def _validate_tflite_s16(spec: Spec) -> None:
    """TFLite's int16 kernel has two parameters (no diff_min) and a signed shift."""
    if spec.max_row > TFLITE_S16_MAX_ROW_LIMIT:
        raise SpecError(
            f"method tflite with --input-bits 16 accepts max_row up to "
            f"{TFLITE_S16_MAX_ROW_LIMIT}, got {spec.max_row!r}"
        )
    multiplier, left_shift = spec.input_multiplier, spec.input_left_shift
    if spec.diff_min is not None:
        raise SpecError("--diff-min does not apply to --input-bits 16 (TFLite's int16 softmax "
                        "has no diff_min); give --input-multiplier and --input-left-shift")
    if multiplier is None and left_shift is None:
        return
    if multiplier is None or left_shift is None:
        raise SpecError("give input_multiplier and input_left_shift together")
    if not _is_int(multiplier) or not 0 <= multiplier <= (1 << 31) - 1:
        raise SpecError(f"input_multiplier must be an integer from 0 to 2^31-1, got {multiplier!r}")
    if not _is_int(left_shift) or not -31 <= left_shift <= 15:
        raise SpecError(
            f"input_left_shift must be an integer from -31 to 15 for int16 input (TFLite "
            f"multiplies differences down to -65535 by 2^shift in int32), got {left_shift!r}"
        )


def _validate_method_options(spec: Spec) -> None:
    """Domain of each optional field, and that only the method's own options are set."""
    allowed = METHOD_OPTIONS.get(spec.method, ())
    for name in _OPTIONAL_FIELDS:
        value = getattr(spec, name)
        if value is None:
            continue
        if name not in allowed:
            flag = "--" + name.replace("_", "-")
            raise SpecError(f"{flag} does not apply to method {spec.method!r}")
        if name in _OPTIONAL_INT_RANGES:
            low, high = _OPTIONAL_INT_RANGES[name]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise SpecError(f"{name} must be an integer from {low} to {high}, got {value!r}")
    if spec.sum_mode is not None and spec.sum_mode not in SUM_MODES:
        raise SpecError(f"sum_mode must be one of {', '.join(SUM_MODES)}; got {spec.sum_mode!r}")
    if spec.rounding is not None and spec.rounding not in ROUNDINGS:
        raise SpecError(f"rounding must be one of {', '.join(ROUNDINGS)}; got {spec.rounding!r}")


def check_prefix(prefix: object) -> None:
    """A prefix must make valid, unreserved C identifiers in both lower and upper case."""
    if not isinstance(prefix, str) or not _IDENTIFIER.match(prefix) or not prefix.isascii():
        raise SpecError(
            f"prefix must be a C identifier (ASCII letters, digits, '_', not starting with a "
            f"digit), got {prefix!r}"
        )
    if prefix in C_KEYWORDS:
        raise SpecError(f"prefix must not be a C keyword, got {prefix!r}")
    if prefix.startswith("_"):
        # C reserves all file-scope identifiers with a leading '_'; every emitted name is one.
        raise SpecError(f"prefix must not be a reserved identifier (leading '_'), got {prefix!r}")
    if "__" in prefix or prefix.endswith("_"):
        # C++ (which includes the header) reserves every identifier containing "__"; a
        # trailing '_' would make one when joined to "_softmax_s8".
        raise SpecError(
            f"prefix must not contain '__' or end in '_' (reserved in C++), got {prefix!r}"
        )
    if len(prefix) > 24:
        raise SpecError(f"prefix must be at most 24 characters, got {len(prefix)}")


def check_header_name(name: object) -> None:
    """The generated source includes the header by this name, so it must be safe in C text."""
    if not isinstance(name, str) or not name.isascii() or not _HEADER_NAME.match(name):
        raise SpecError(
            "header file name must use only ASCII letters, digits, '_', '.', '+' and '-' and "
            f"not start with '.', '+' or '-' (it goes into #include \"...\"), got {name!r}"
        )
