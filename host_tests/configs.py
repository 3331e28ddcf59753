"""Representative specs per method: the one place hardening tests take their configurations from.

Each method maps to a list of specs chosen to reach every storage layout and edge of its design
(shortest and longest rows, tiny and huge scales, every output width). A method that is not in
``lutcodegen.METHODS`` on this checkout is simply skipped, so adding a method's line here is all
it takes to put it through the strict build matrix, the sanitizers and the fuzzer.
"""

from __future__ import annotations

from lutcodegen import METHODS, Spec

#: method -> representative specs. Every test that says "every configuration" uses these.
EXAMPLES: dict[str, list[Spec]] = {
    "lut": [
        Spec(),
        Spec(bits=16),
        Spec(bits=2, input_scale=1.0),
        Spec(bits=4, input_scale=0.25),
        Spec(bits=12, input_scale=1 / 64),
        Spec(bits=8, input_scale=1 / 64, beta=0.125),
        Spec(bits=8, max_row=4096),
        Spec(bits=16, max_row=4096, prefix="attn16"),
        Spec(bits=6, max_row=1024),  # output shift reaches the product width (issue 8 fix)
        Spec(bits=8, max_row=1),
        Spec(bits=16, max_row=1, input_scale=1e-300),  # all-equal table, 64-bit products
        Spec(bits=8, input_scale=1e300),  # one-entry table
        Spec(bits=2, max_row=1 << 16, input_scale=0.01),  # 64-bit sums
        Spec(table_layout="compact"),
        Spec(bits=16, table_layout="compact", input_scale=0.5, unroll=1),
        Spec(unroll=8, max_row=1000),
        # a caller-supplied scratch row: 16-bit entries and 32-bit products; 32-bit entries,
        # sums and products of 64 bits; two product widths by row length; the compact table
        Spec(scratch_row="on"),
        Spec(bits=16, max_row=4096, scratch_row="on", prefix="scr16"),
        Spec(bits=8, max_row=4096, scratch_row="on", prefix="scr8"),
        Spec(bits=4, input_scale=0.25, table_layout="compact", unroll=1, scratch_row="on"),
        # int16 input (TFLite's 16x8 mode): 32-bit sums, compact high table, 64-bit sums
        Spec(input_bits=16, bits=16, input_scale=3e-4),
        Spec(
            input_bits=16,
            bits=16,
            input_scale=1 / 16,
            max_row=1000,
            table_layout="compact",
            prefix="s16c",
        ),
        Spec(input_bits=16, bits=16, input_scale=1e-6, max_row=4096),
        Spec(input_bits=16, bits=16, input_scale=2.0, max_row=1),
    ],
    "rexp": [
        Spec(method="rexp"),
        Spec(method="rexp", bits=16, max_row=4096),
        Spec(method="rexp", bits=3, input_scale=1.0, rounding="floor", sum_mode="linear"),
    ],
    "lut2d": [
        Spec(method="lut2d"),
        Spec(method="lut2d", bits=12, max_row=1024),
        Spec(method="lut2d", bits=2, index_shift=3),
    ],
    "tflite": [
        Spec(method="tflite"),
        Spec(method="tflite", bits=16, max_row=8191),
        Spec(method="tflite", max_row=2048, input_scale=0.01, table_layout="compact"),
        Spec(method="tflite", input_bits=16, bits=16, input_scale=3e-4),
        Spec(method="tflite", input_bits=16, bits=16, input_scale=1e-7, beta=0.5, max_row=4096),
        Spec(method="tflite", input_bits=16, bits=16, input_scale=4.0),  # left shift 15
        Spec(
            method="tflite",
            input_bits=16,
            bits=16,
            input_multiplier=0,
            input_left_shift=0,
            prefix="t16raw",
        ),
    ],
}

#: method -> the specs the coverage-guided fuzzer runs on (a subset: fuzz time is per spec).
FUZZ: dict[str, list[Spec]] = {
    "lut": [
        Spec(),
        Spec(bits=16, max_row=4096, prefix="attn16"),
        Spec(bits=6, max_row=1024),
        Spec(bits=8, max_row=1, input_scale=1e300),
        Spec(input_bits=16, bits=16, input_scale=3e-4),
        Spec(bits=16, max_row=1024, scratch_row="on", prefix="scr16"),
    ],
    "rexp": [Spec(method="rexp", max_row=1024)],
    "lut2d": [Spec(method="lut2d", max_row=1024)],
    "tflite": [
        Spec(method="tflite", max_row=2048),
        Spec(method="tflite", input_bits=16, bits=16, input_scale=1e-3, max_row=2048),
    ],
}


def _present(table: dict[str, list[Spec]]) -> list[Spec]:
    return [spec for method in METHODS for spec in table.get(method, [])]


def all_specs() -> list[Spec]:
    """Every representative spec of every method this checkout has."""
    return _present(EXAMPLES)


def fuzz_specs() -> list[Spec]:
    """The specs to fuzz, for every method this checkout has."""
    return _present(FUZZ)


def spec_id(spec: Spec) -> str:
    """A short, unique, readable pytest id."""
    return (
        (
            f"{spec.method}-b{spec.bits}-s{spec.input_scale:g}-beta{spec.beta:g}"
            f"-n{spec.max_row}-{spec.prefix}-{spec.table_layout}-u{spec.unroll}"
            f"-{spec.sum_mode}-{spec.rounding}-{spec.index_shift}"
        )
        + (f"-in{spec.input_bits}" if spec.input_bits != 8 else "")
        + ("-scratch" if spec.scratch_row == "on" else "")
    )
