"""``lutcodegen model``: write the integer ViT as C (one file, optionally with a header).

Quantizes the float weights (the shipped digits model by default), calibrating on the digits
training split, and writes the C to stdout or ``-o``. Files are written whole or not at all.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .. import METHODS
from ..cli import USAGE_ERROR, write_atomically
from ..spec import SpecError, check_prefix
from . import example
from .codegen import command_line, render_model


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lutcodegen model",
        description="Generate the integer-only digits Vision Transformer as C99.",
        epilog="Example: lutcodegen model -o digits_vit.c --header digits_vit.h",
    )
    parser.add_argument(
        "--softmax",
        choices=METHODS,
        default="lut",
        help="softmax method inside attention (default lut)",
    )
    parser.add_argument(
        "--prefix", default=example.PREFIX, help=f"C name prefix (default {example.PREFIX})"
    )
    parser.add_argument(
        "--weights",
        type=Path,
        default=None,
        help="float weights .npz (default: the shipped digits model)",
    )
    parser.add_argument("-o", "--output", type=Path, help="write the C here instead of stdout")
    parser.add_argument("--header", type=Path, help="also write declarations to this .h")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_prefix(args.prefix)
        qm = example.quantized(args.softmax, args.weights, args.prefix)
    except (SpecError, FileNotFoundError) as exc:
        print(f"lutcodegen model: error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    command = command_line(args.prefix, args.softmax)
    generated = render_model(qm, args.prefix, args.header.name if args.header else None, command)
    if args.header is not None and generated.header is not None:
        write_atomically(args.header, generated.header)
    if args.output is not None:
        write_atomically(args.output, generated.source)
    else:
        sys.stdout.write(generated.source)
    return 0
