"""Command line: ``lutcodegen [options] > softmax_lut.c``.

Contract: the C goes to stdout (or ``-o FILE``), diagnostics to stderr. Bad usage exits 2 with a
message saying what is wrong and what is allowed; any other failure exits 1. An output file is
either written whole (via a temporary file renamed into place) or not touched at all.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .methods import describe, design_for
from .render import render
from .spec import MAX_ROW_LIMIT, METHODS, Spec, SpecError

USAGE_ERROR = 2


class UsageError(Exception):
    """A problem the user can fix by changing the command line (exit status 2)."""


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive finite number")
    return value


def _integer(text: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lutcodegen",
        description="Generate a divider-free lookup-table int8 softmax in portable C99.",
        epilog="Example: lutcodegen --bits 8 > softmax_lut.c",
    )
    parser.add_argument("--version", action="version", version=f"lutcodegen {__version__}")
    parser.add_argument("--method", choices=METHODS, default="lut", help="algorithm (default lut)")
    parser.add_argument(
        "--bits", type=_integer, default=8, metavar="B",
        help="output bits, 2..16; int8 output up to 8, int16 above (default 8)",
    )
    parser.add_argument(
        "--input-scale", type=_number, default=0.0625, metavar="S",
        help="real value of one input LSB, positive (default 0.0625)",
    )
    parser.add_argument(
        "--beta", type=_number, default=1.0, help="softmax temperature factor (default 1.0)"
    )
    parser.add_argument(
        "--max-row", type=_integer, default=256, metavar="N",
        help=f"longest row accepted, 1..{MAX_ROW_LIMIT}; proofs are made for it (default 256)",
    )
    parser.add_argument(
        "--prefix", default="lcg", help="C name prefix, a C identifier (default lcg)"
    )
    parser.add_argument("-o", "--output", type=Path, help="write the C here instead of stdout")
    parser.add_argument(
        "--header", type=Path, help="also write declarations to this .h; the C includes it"
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="describe the tables and bounds on stderr"
    )
    return parser


def _check_writable(path: Path) -> None:
    if path.is_dir():
        raise UsageError(f"cannot write {path}: it is a directory")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"cannot write {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"cannot write {path}: permission denied")


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` completely or not at all (temp file + fsync + rename)."""
    parent = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def run_generate(args: argparse.Namespace) -> int:
    spec = Spec(
        bits=args.bits, input_scale=args.input_scale, beta=args.beta,
        max_row=args.max_row, prefix=args.prefix, method=args.method,
    )
    for path in (args.output, args.header):
        if path is not None:
            _check_writable(path)
    if args.output is not None and args.header is not None:
        if args.output.resolve() == args.header.resolve():
            raise UsageError("--output and --header must be different files")
    dsg = design_for(spec)
    generated = render(dsg, header_name=args.header.name if args.header else None)
    if args.verbose:
        for line in describe(dsg):
            print(f"lutcodegen: {line}", file=sys.stderr)
    if args.header is not None and generated.header is not None:
        write_atomically(args.header, generated.header)
    if args.output is not None:
        write_atomically(args.output, generated.source)
    else:
        sys.stdout.write(generated.source)
        sys.stdout.flush()
    return 0


#: Subcommands other than generation: name -> module with ``main(argv) -> int``.
SUBCOMMANDS: dict[str, str] = {
    "demo": "lutcodegen.model.demo",
    "model": "lutcodegen.model.cli",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lutcodegen`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:
        module = importlib.import_module(SUBCOMMANDS[argv[0]])
        return int(module.main(argv[1:]))
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 with a usage message on bad syntax
    try:
        return run_generate(args)
    except (SpecError, UsageError) as exc:
        print(f"lutcodegen: error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except OSError as exc:
        print(f"lutcodegen: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
