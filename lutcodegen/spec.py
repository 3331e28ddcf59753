"""The generator's input: one validated, immutable description of a softmax kernel.

Everything downstream (tables, reference model, C text) is a pure function of a ``Spec``, so
validating here, once, means no later stage has to guess what a bad value would do.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

#: Methods the generator knows. Each has a module in ``lutcodegen.methods``.
METHODS = ("lut",)

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
    """

    bits: int = 8
    input_scale: float = 0.0625
    beta: float = 1.0
    max_row: int = 256
    prefix: str = "lcg"
    method: str = "lut"

    def __post_init__(self) -> None:
        validate(self)

    @property
    def scale(self) -> float:
        """The effective input scale ``beta * input_scale`` that the exponent sees."""
        return self.beta * self.input_scale

    @property
    def output_ctype(self) -> str:
        return "int8_t" if self.bits <= 8 else "int16_t"

    @property
    def function_name(self) -> str:
        suffix = "s8" if self.bits <= 8 else "s8_s16"
        return f"{self.prefix}_softmax_{suffix}"

    def options(self) -> dict[str, object]:
        """The options as a plain dict, in a fixed order (used for the banner and hashing)."""
        return asdict(self)

    def command_line(self) -> str:
        """The full command line that reproduces this spec, every option spelled out."""
        return (
            f"lutcodegen --method {self.method} --bits {self.bits}"
            f" --input-scale {self.input_scale!r} --beta {self.beta!r}"
            f" --max-row {self.max_row} --prefix {self.prefix}"
        )


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
