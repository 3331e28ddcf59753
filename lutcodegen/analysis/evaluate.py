"""Accuracy of a design against float64 softmax, on the project's standard row sets.

``python -m lutcodegen.analysis.evaluate`` prints the accuracy and size table published in the
README.
The reference model is used (it is bit-exact with the C, which the tests prove), so a million
outputs take about a second.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..fixedpoint import ideal_output
from ..methods import Design, design_for, reference
from ..spec import Spec
from . import rowsets

#: Row lengths of the standard evaluation: short, odd, powers of two, and up to 256.
LENGTHS = (1, 2, 3, 5, 8, 16, 31, 64, 100, 128, 200, 255, 256)


@dataclass(frozen=True)
class Accuracy:
    """Errors in output LSB against ``min(round(2^B p), 2^B - 1)``."""

    max_error: int
    mean_error: float
    equal: float  #: fraction of outputs equal to correct rounding
    outputs: int


def accuracy(
    dsg: Design, lengths: Sequence[int] = LENGTHS, per_length: int = 40000, seed: int = 12345
) -> Accuracy:
    """Uniform random rows, Gaussian attention-like rows, edge rows and every table index,
    for each row length (lengths above the design's max_row are skipped)."""
    spec = dsg.spec
    rng = np.random.default_rng(seed)
    worst, total_err, equal, total = 0, 0, 0, 0
    for length in (n for n in lengths if n <= spec.max_row):
        count = max(4, per_length // length)
        for x in (
            rowsets.uniform(rng, count, length),
            rowsets.gaussian(rng, count, length, spec.scale),
            rowsets.edge_rows(length),
            rowsets.every_difference(length),
        ):
            err = np.abs(reference(dsg, x) - ideal_output(x, spec.scale, spec.bits))
            worst = max(worst, int(err.max()))
            total_err += int(err.sum())
            equal += int((err == 0).sum())
            total += err.size
    return Accuracy(worst, total_err / total, equal / total, total)


def ideal_output16(x: np.ndarray, scale: float) -> np.ndarray:
    """TFLite's int16 convention, correctly rounded: ``min(round(32768 p), 32767)``."""
    return ideal_output(x, scale, 15) + (1 << 14)


def accuracy16(
    dsg: Design, lengths: Sequence[int] = LENGTHS, per_length: int = 40000, seed: int = 12345
) -> Accuracy:
    """The int16-input counterpart of ``accuracy``: uniform, Gaussian and edge int16 rows per
    length, every difference 0..65535 at length 2 and a strided subset of them at the others."""
    spec = dsg.spec
    rng = np.random.default_rng(seed)
    worst, total_err, equal, total = 0, 0, 0, 0
    for length in (n for n in lengths if n <= spec.max_row):
        count = max(4, per_length // length)
        for x in (
            rowsets.uniform16(rng, count, length),
            rowsets.gaussian16(rng, count, length, spec.scale),
            rowsets.edge_rows16(length),
            rowsets.every_difference16(length, 1 if length == 2 else 257, length % 257),
        ):
            err = np.abs(reference(dsg, x) - ideal_output16(x, spec.scale))
            worst = max(worst, int(err.max()))
            total_err += int(err.sum())
            equal += int((err == 0).sum())
            total += err.size
    return Accuracy(worst, total_err / total, equal / total, total)


def table16(specs: Sequence[Spec]) -> str:
    """A Markdown table for int16-input specs (int16 output, scale 1/32768, zero point 0)."""
    lines = [
        "| method | input scale | max row | table bytes | max error (LSB16) | mean error | "
        "equal to correct rounding | outputs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for spec in specs:
        dsg = design_for(spec)
        acc = accuracy16(dsg)
        lines.append(
            f"| {spec.method} | {spec.scale:g} | {spec.max_row} | {dsg.table_bytes} | "
            f"{acc.max_error} | {acc.mean_error:.4f} | {acc.equal:.3%} | {acc.outputs:,} |"
        )
    return "\n".join(lines)


def table(specs: Sequence[Spec]) -> str:
    """A Markdown table: one line per spec with its accuracy and table bytes."""
    lines = [
        "| bits | input scale | max row | table bytes | max error (LSB) | equal to correct "
        "rounding | outputs |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for spec in specs:
        dsg = design_for(spec)
        acc = accuracy(dsg)
        lines.append(
            f"| {spec.bits} | {spec.scale:g} | {spec.max_row} | {dsg.table_bytes} | "
            f"{acc.max_error} | {acc.equal:.3%} | {acc.outputs:,} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lutcodegen.analysis.evaluate",
        description="Accuracy and table size of the default method on the standard row sets "
        "(and of the int16-input methods).",
    )
    parser.add_argument("--bits", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--scales", type=float, nargs="+", default=[1 / 64, 1 / 16, 1 / 4, 1.0])
    parser.add_argument(
        "--input-bits",
        type=int,
        nargs="+",
        default=[8, 16],
        choices=[8, 16],
        help="int8-input table, int16-input table (lut and tflite), or both",
    )
    parser.add_argument(
        "--scales16",
        type=float,
        nargs="+",
        default=[1 / 4096, 1 / 1024, 1 / 256],
        help="input scales of the int16 table (default 1/4096 1/1024 1/256)",
    )
    args = parser.parse_args(argv)
    if 8 in args.input_bits:
        specs = [Spec(bits=b, input_scale=s) for b in args.bits for s in args.scales]
        print(table(specs))
    if 16 in args.input_bits:
        if 8 in args.input_bits:
            print("\nint16 input (TFLite's 16x8 mode), int16 output:\n")
        print(
            table16(
                [
                    Spec(method=m, input_bits=16, bits=16, input_scale=s)
                    for m in ("lut", "tflite")
                    for s in args.scales16
                ]
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
