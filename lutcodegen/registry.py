"""The one declared table of generator options and methods.

Every place that lists options reads it from here: ``Spec`` validation and the banner's
command line (``spec.py``), the command-line flags and their help (``cli.py``), the
``custom_lutcodegen_*`` options of ``platformio.ini`` (``firmware/build.py``) and
``lutcodegen report --option``. Adding an option is one ``Option`` below plus its typed field on
``Spec`` (a test checks the two agree); the method records live in ``methods/__init__.py``,
which can import the method modules without an import cycle.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Union

#: Values an option can take once parsed.
Value = Union[int, float, str]

#: Rows longer than this cannot be proven overflow-free with 64-bit sums of 32-bit entries
#: at a useful precision; the bound is far beyond any attention row on a microcontroller.
MAX_ROW_LIMIT = 1 << 20

#: Method ``tflite`` sums exps of at most 2^19 each (1.0 in Q12.19) in 32 bits unsigned; this is
#: the longest row whose sum cannot wrap, so every accepted row has a defined result.
TFLITE_MAX_ROW_LIMIT = (1 << 13) - 1

#: Method ``tflite`` with int16 input sums exps of at most 32767 each in an int32, as TFLite does;
#: this is the longest row whose sum cannot overflow.
TFLITE_S16_MAX_ROW_LIMIT = 1 << 16

#: The methods that also take int16 input (``--input-bits 16``, TFLite's 16x8 mode). Each has a
#: record in ``lutcodegen.methods.METHOD_RECORDS_S16``.
INT16_INPUT_METHODS = ("lut", "tflite")

#: The methods, in the order the command line, reports and tests list them. Each has a record in
#: ``lutcodegen.methods.METHOD_RECORDS`` (a test checks they agree).
METHODS = ("lut", "rexp", "lut2d", "tflite")


class SpecError(ValueError):
    """A generator option is out of its domain; the message says what is allowed."""


@dataclass(frozen=True)
class Option:
    """One generator option: a ``Spec`` field, a ``--flag`` and a ``platformio.ini`` key.

    ``default`` None means "the method's own choice" (the option is then left out of the banner
    and may only be set for the methods in ``methods``). An empty ``methods`` means every method.
    The domain is ``choices`` (strings or integers), or ``low``..``high`` for integers, or
    ``positive`` for finite positive numbers; ``check`` adds a rule the others cannot express.
    """

    name: str
    kind: type
    default: Value | None
    help: str
    methods: tuple[str, ...] = ()
    choices: tuple[Value, ...] = ()
    low: int | None = None
    high: int | None = None
    positive: bool = False
    metavar: str | None = None
    group: str | None = None
    check: Callable[[object], None] | None = None
    #: How the domain reads in a message, when the numbers alone would be obscure.
    domain_text: str | None = None
    #: Leave the option out of the banner's command line while it has its default, so that
    #: adding it changed no existing banner (and no spec hash).
    quiet_default: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def applies_to(self, method: str) -> bool:
        return not self.methods or method in self.methods

    def parse(self, text: str) -> Value:
        """The option's value from text (``platformio.ini``, ``report --option``)."""
        text = text.strip()
        try:
            if self.kind is int:
                return int(text, 10)
            if self.kind is float:
                return float(text)
        except ValueError:
            raise SpecError(f"option {self.name} = {text!r} is not a valid value") from None
        return text

    def validate(self, value: object) -> None:
        """Raise ``SpecError`` if ``value`` is outside the option's domain."""
        if self.check is not None:
            self.check(value)
        if self.positive:
            _positive_finite(self.name, value)
        if self.kind is int and not (isinstance(value, int) and not isinstance(value, bool)):
            raise SpecError(f"{self.name} must be {self._int_domain()}, got {value!r}")
        if self.choices and value not in self.choices:
            if self.kind is int:
                raise SpecError(f"{self.name} must be {self._int_domain()}, got {value!r}")
            raise SpecError(
                f"{self.name} must be one of {', '.join(map(str, self.choices))}; got {value!r}"
            )
        if self.low is not None and self.high is not None:
            assert isinstance(value, int)
            if not self.low <= value <= self.high:
                raise SpecError(f"{self.name} must be {self._int_domain()}, got {value!r}")

    def _int_domain(self) -> str:
        if self.domain_text is not None:
            return self.domain_text
        if self.choices:
            *head, last = (str(c) for c in self.choices)
            return f"{', '.join(head)} or {last}" if head else last
        return f"an integer from {self.low} to {self.high}"


def _positive_finite(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(f"{name} must be a number, got {value!r}")
    try:
        as_float = float(value)  # a Python int past 1.8e308 does not convert
    except OverflowError:
        as_float = math.inf
    if not math.isfinite(as_float) or value <= 0:
        raise SpecError(f"{name} must be a positive finite number, got {value!r}")


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


_PAPER = (
    "options of the paper methods rexp and lut2d (default: the method's choice; "
    "see docs/paper-methods.md)"
)
_TFLITE = "method tflite"
_TFLITE_DOC = (
    "TFLite Micro's raw softmax parameters (all three or none); they replace the ones "
    "computed from --input-scale and --beta"
)

#: Argument groups of the command line: title -> description (None for no description).
GROUPS: dict[str, str | None] = {_TFLITE: _TFLITE_DOC, _PAPER: None}

#: Every option, in the order of the banner's command line.
OPTIONS: tuple[Option, ...] = (
    Option("method", str, "lut", "algorithm (default lut)", choices=METHODS),
    Option(
        "bits",
        int,
        8,
        "output bits, 2..16; int8 output up to 8, int16 above (default 8)",
        low=2,
        high=16,
        metavar="B",
    ),
    Option(
        "input_scale",
        float,
        0.0625,
        "real value of one input LSB, positive (default 0.0625)",
        positive=True,
        metavar="S",
    ),
    Option("beta", float, 1.0, "softmax temperature factor (default 1.0)", positive=True),
    Option(
        "max_row",
        int,
        256,
        f"longest row accepted, 1..{MAX_ROW_LIMIT}; proofs are made for it (default 256)",
        low=1,
        high=MAX_ROW_LIMIT,
        metavar="N",
    ),
    Option("prefix", str, "lcg", "C name prefix, a C identifier (default lcg)", check=check_prefix),
    Option(
        "table_layout",
        str,
        "full",
        "full: 256-entry exp table, no per-element bounds check (default); "
        "compact: only the nonzero entries, fewer bytes, slightly slower",
        methods=("lut", "tflite"),
        choices=("full", "compact"),
    ),
    Option(
        "index_shift",
        int,
        None,
        "numerator table step: 2^K input LSBs per entry, 0..7 (default 0)",
        methods=("rexp", "lut2d"),
        low=0,
        high=7,
        metavar="K",
        group=_PAPER,
    ),
    Option(
        "exp_entries",
        int,
        None,
        "clip the numerator table to N entries, 1..256 (default: until entries round to 0)",
        methods=("rexp", "lut2d"),
        low=1,
        high=256,
        metavar="N",
        group=_PAPER,
    ),
    Option(
        "sum_mode",
        str,
        None,
        "quantization of the row sum (default log)",
        methods=("rexp", "lut2d"),
        choices=("log", "linear"),
        group=_PAPER,
    ),
    Option(
        "sum_shift",
        int,
        None,
        "linear sum mode: buckets of 2^T numerator units (default 8)",
        methods=("rexp", "lut2d"),
        low=0,
        high=40,
        metavar="T",
        group=_PAPER,
    ),
    Option(
        "sum_mantissa",
        int,
        None,
        "log sum mode: 2^M buckets per octave (default 5 for rexp, 2 for lut2d)",
        methods=("rexp", "lut2d"),
        low=0,
        high=12,
        metavar="M",
        group=_PAPER,
    ),
    Option(
        "sum_max",
        int,
        None,
        "largest row sum with its own bucket (default: max-row * (2^bits - 1))",
        methods=("rexp", "lut2d"),
        low=1,
        high=1 << 40,
        metavar="S",
        group=_PAPER,
    ),
    Option(
        "num_shift",
        int,
        None,
        "lut2d: 2D table rows are the numerator rounded to 2^T (default bits - 4)",
        methods=("lut2d",),
        low=0,
        high=15,
        metavar="T",
        group=_PAPER,
    ),
    Option(
        "rounding",
        str,
        None,
        "rexp: rounding of (n * alpha) >> F (default nearest; the paper's >> is floor)",
        methods=("rexp",),
        choices=("nearest", "floor"),
        group=_PAPER,
    ),
    Option(
        "input_multiplier",
        int,
        None,
        "SoftmaxParams.input_multiplier, 1..2^31-1 (0..2^31-1 with --input-bits 16)",
        methods=("tflite",),
        low=0,
        high=(1 << 31) - 1,
        metavar="M",
        group=_TFLITE,
        domain_text="an integer from 0 to 2^31-1",
    ),
    Option(
        "input_left_shift",
        int,
        None,
        "SoftmaxParams.input_left_shift, 0..31 (-31..15 with --input-bits 16)",
        methods=("tflite",),
        low=-31,
        high=31,
        metavar="S",
        group=_TFLITE,
    ),
    Option(
        "diff_min",
        int,
        None,
        "SoftmaxParams.diff_min, <= 0",
        methods=("tflite",),
        low=-((1 << 31) - 1),
        high=0,
        metavar="D",
        group=_TFLITE,
        domain_text="an integer from -(2^31-1) to 0",
    ),
    Option(
        "unroll",
        int,
        None,
        "lut: elements per iteration of the portable loops, 1, 2, 4 or 8 (default 8); "
        "more is faster and larger, same outputs",
        methods=("lut",),
        choices=(1, 2, 4, 8),
        metavar="U",
    ),
    Option(
        "input_bits",
        int,
        8,
        "input width: 8 (int8 logits, default) or 16 (int16 logits, TFLite's 16x8 mode; "
        "methods lut and tflite with --bits 16: int16 output, scale 1/32768, zero point 0)",
        methods=INT16_INPUT_METHODS,
        choices=(8, 16),
        metavar="I",
        quiet_default=True,
    ),
    Option(
        "optimize",
        str,
        None,
        "lut: speed (default): unrolled loops and separate fast paths; size: the smallest "
        "code that stays fast (one loop per pass, saturation instead of a clamp loop); "
        "same outputs",
        methods=("lut",),
        choices=("speed", "size"),
    ),
    Option(
        "scratch_row",
        str,
        "off",
        "lut: on: the kernel takes a caller-supplied scratch row (one table entry per element) "
        "that keeps the exp values from the sum pass for the output pass instead of looking "
        "them up again; faster where a lookup costs more than a store and a load (Cortex-M0+, "
        "RV32), not on DSP or Helium cores; same outputs (default off)",
        methods=("lut",),
        choices=("off", "on"),
        quiet_default=True,
    ),
    Option(
        "max_table_bytes",
        int,
        None,
        f"refuse designs whose tables exceed N bytes, 1..2^31-1 (default {1 << 20}, 1 MiB); "
        "bounds the generator's time and memory as well as the flash",
        low=1,
        high=(1 << 31) - 1,
        metavar="N",
        domain_text="an integer from 1 to 2^31-1",
    ),
)

#: Options by name.
OPTION_BY_NAME: dict[str, Option] = {option.name: option for option in OPTIONS}


def options_of(method: str) -> tuple[Option, ...]:
    """The method-specific options of ``method`` (those not shared by every method)."""
    return tuple(o for o in OPTIONS if o.methods and method in o.methods)


def option(name: str) -> Option:
    """The option called ``name`` (``-`` or ``_`` spelling), or a ``SpecError`` naming the known."""
    key = name.strip().replace("-", "_")
    if key not in OPTION_BY_NAME:
        raise SpecError(f"no option {name!r}; options are {', '.join(OPTION_BY_NAME)}")
    return OPTION_BY_NAME[key]
