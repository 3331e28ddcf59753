"""``lutcodegen model``: write the integer ViT as C (one file, optionally with a header).

Quantizes the float weights (the shipped digits model by default), calibrating on the digits
training split, and writes the C to stdout or ``-o``. Files are written whole or not at all.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from .. import METHODS
from ..cli import UsageError, check_c_outputs, run_command, write_c_outputs
from ..spec import check_prefix
from . import example
from .codegen import command_line, render_model
from .vit import WeightsError


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


def _run(args: argparse.Namespace) -> int:
    check_prefix(args.prefix)
    inputs = [args.weights] if args.weights is not None else []
    header_name = check_c_outputs(args.output, args.header, inputs)
    if args.weights is not None and not args.weights.is_file():
        raise UsageError(f"cannot read weights {args.weights}: not a file")
    try:
        qm = example.quantized(args.softmax, args.weights, args.prefix)
    except (WeightsError, FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        raise UsageError(str(exc)) from None
    command = command_line(args.prefix, args.softmax)
    generated = render_model(qm, args.prefix, header_name, command)
    write_c_outputs(args.output, args.header, generated.source, generated.header)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lutcodegen model``: the shared output checks and error contract."""
    args = build_parser().parse_args(argv)
    return run_command("lutcodegen model", lambda: _run(args))
