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
import stat
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .calibrate import calibrate, load_rows
from .methods import describe, design_for
from .render import render
from .spec import (
    MAX_ROW_LIMIT,
    METHODS,
    ROUNDINGS,
    SUM_MODES,
    TABLE_LAYOUTS,
    Spec,
    SpecError,
)

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
        epilog="Example: lutcodegen --bits 8 > softmax_lut.c\n\n"
        "Subcommands (each has --help):\n"
        "  lutcodegen tflm MODEL.tflite -o DIR   kernels and a TFLite Micro registration\n"
        "  lutcodegen bench                      instruction counts on emulated boards\n"
        "  lutcodegen report                     accuracy of every method and width\n"
        "  lutcodegen model -o M.c --header M.h  the example attention model as C\n"
        "  lutcodegen demo                       that model on emulated boards",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"lutcodegen {__version__}")
    parser.add_argument("--method", choices=METHODS, default="lut", help="algorithm (default lut)")
    parser.add_argument(
        "--bits", type=_integer, default=None, metavar="B",
        help="output bits, 2..16; int8 output up to 8, int16 above (default 8; 16 with "
        "--input-bits 16, the only width it allows)",
    )
    parser.add_argument(
        "--input-bits", type=_integer, default=8, metavar="I",
        help="input width: 8 (int8 logits, default) or 16 (int16 logits, TFLite's 16x8 mode, "
        "methods lut and tflite: int16 output, scale 1/32768, zero point 0)",
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
    tflite = parser.add_argument_group(
        "method tflite",
        "TFLite Micro's raw softmax parameters (all three or none); they replace the ones "
        "computed from --input-scale and --beta",
    )
    tflite.add_argument("--input-multiplier", type=_integer, metavar="M",
                        help="SoftmaxParams.input_multiplier, 1..2^31-1")
    tflite.add_argument("--input-left-shift", type=_integer, metavar="S",
                        help="SoftmaxParams.input_left_shift, 0..31")
    tflite.add_argument("--diff-min", type=_integer, metavar="D",
                        help="SoftmaxParams.diff_min, <= 0")
    parser.add_argument(
        "--prefix", default="lcg", help="C name prefix, a C identifier (default lcg)"
    )
    parser.add_argument(
        "--table-layout", choices=TABLE_LAYOUTS, default="full",
        help="full: 256-entry exp table, no per-element bounds check (default); "
        "compact: only the nonzero entries, fewer bytes, slightly slower",
    )
    parser.add_argument(
        "--unroll", type=_integer, metavar="U",
        help="lut: elements per iteration of the portable loops, 1, 2, 4 or 8 (default 8); "
        "more is faster and larger, same outputs",
    )
    paper = parser.add_argument_group(
        "options of the paper methods rexp and lut2d (default: the method's choice; "
        "see docs/paper-methods.md)"
    )
    paper.add_argument(
        "--index-shift", type=_integer, metavar="K",
        help="numerator table step: 2^K input LSBs per entry, 0..7 (default 0)",
    )
    paper.add_argument(
        "--exp-entries", type=_integer, metavar="N",
        help="clip the numerator table to N entries, 1..256 (default: until entries round to 0)",
    )
    paper.add_argument(
        "--sum-mode", choices=SUM_MODES, help="quantization of the row sum (default log)"
    )
    paper.add_argument(
        "--sum-shift", type=_integer, metavar="T",
        help="linear sum mode: buckets of 2^T numerator units (default 8)",
    )
    paper.add_argument(
        "--sum-mantissa", type=_integer, metavar="M",
        help="log sum mode: 2^M buckets per octave (default 5 for rexp, 2 for lut2d)",
    )
    paper.add_argument(
        "--sum-max", type=_integer, metavar="S",
        help="largest row sum with its own bucket (default: max-row * (2^bits - 1))",
    )
    paper.add_argument(
        "--num-shift", type=_integer, metavar="T",
        help="lut2d: 2D table rows are the numerator rounded to 2^T (default bits - 4)",
    )
    paper.add_argument(
        "--rounding", choices=ROUNDINGS,
        help="rexp: rounding of (n * alpha) >> F (default nearest; the paper's >> is floor)",
    )
    parser.add_argument(
        "--calibrate", type=Path, metavar="FILE.npy",
        help="choose the method's free parameters from these attention scores (last axis = "
        "row; int8 logits, or float scores quantized with --input-scale)",
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


class _Staged:
    """A file written to a temporary name next to its target, waiting to be renamed into place.

    A symlink is followed, so the file it points to is replaced and the link kept. An existing
    file that is not a regular file (a FIFO, ``/dev/stdout``, ``/dev/full``) is written directly:
    renaming over it would replace the pipe or device with a regular file. The result gets the
    replaced file's permissions, or the umask's for a new file, not the temp file's 0600.
    """

    def __init__(self, path: Path, text: str) -> None:
        self.tmp: str | None = None
        if path.exists() and not path.is_file():
            with open(path, "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
            return
        self.target = Path(os.path.realpath(path))
        if self.target.exists():
            mode = stat.S_IMODE(self.target.stat().st_mode)
        else:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        fd, self.tmp = tempfile.mkstemp(prefix=f".{self.target.name}.", suffix=".tmp",
                                        dir=self.target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
                os.fchmod(f.fileno(), mode)
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            self.discard()
            raise

    def commit(self) -> None:
        if self.tmp is not None:
            os.replace(self.tmp, self.target)
            self.tmp = None

    def discard(self) -> None:
        if self.tmp is not None:
            try:
                os.unlink(self.tmp)
            except FileNotFoundError:
                pass
            self.tmp = None


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` completely or not at all (temp file + fsync + rename)."""
    write_all_or_nothing([(path, text)])


def write_all_or_nothing(files: list[tuple[Path, str]]) -> None:
    """Write every file whole, or replace none of them: all are staged before any is renamed,
    so a full disk while writing the source cannot leave a new header beside an old source."""
    staged: list[_Staged] = []
    try:
        for path, text in files:
            staged.append(_Staged(path, text))
        for item in staged:
            item.commit()
    except BaseException:
        for item in staged:
            item.discard()
        raise


#: Method-specific options: argparse destination = ``Spec`` field.
_METHOD_FLAGS = (
    "index_shift", "exp_entries", "sum_mode", "sum_shift", "sum_mantissa", "sum_max",
    "num_shift", "rounding", "input_multiplier", "input_left_shift", "diff_min", "unroll",
)


def run_generate(args: argparse.Namespace) -> int:
    bits = args.bits if args.bits is not None else (16 if args.input_bits == 16 else 8)
    spec = Spec(
        bits=bits, input_bits=args.input_bits, input_scale=args.input_scale, beta=args.beta,
        max_row=args.max_row, prefix=args.prefix, method=args.method,
        table_layout=args.table_layout,
        **{name: getattr(args, name) for name in _METHOD_FLAGS if getattr(args, name) is not None},
    )
    notes: list[str] = []
    if args.calibrate is not None:
        rows = load_rows(args.calibrate, spec.input_scale)
        spec, notes = calibrate(spec, rows, source=args.calibrate.name)
        for line in notes:
            print(f"lutcodegen: {line}", file=sys.stderr)
    for path in (args.output, args.header):
        if path is not None:
            _check_writable(path)
    if args.output is not None and args.header is not None:
        if args.output.resolve() == args.header.resolve():
            raise UsageError("--output and --header must be different files")
    dsg = design_for(spec)
    generated = render(dsg, header_name=args.header.name if args.header else None, notes=notes)
    if args.verbose:
        for line in describe(dsg):
            print(f"lutcodegen: {line}", file=sys.stderr)
    files: list[tuple[Path, str]] = []
    if args.header is not None and generated.header is not None:
        files.append((args.header, generated.header))
    if args.output is not None:
        files.append((args.output, generated.source))
    write_all_or_nothing(files)
    if args.output is None:
        sys.stdout.write(generated.source)
        sys.stdout.flush()
    return 0


#: Subcommands other than generation: name -> module with ``main(argv) -> int``.
SUBCOMMANDS: dict[str, str] = {
    "bench": "lutcodegen.bench",
    "report": "lutcodegen.report",
    "demo": "lutcodegen.model.demo",
    "model": "lutcodegen.model.cli",
    "tflm": "lutcodegen.tflm.cli",
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
