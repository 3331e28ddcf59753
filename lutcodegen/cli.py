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
from typing import Any

from . import __version__
from .methods import describe, design_for
from .methods.calibrate import calibrate, load_rows
from .registry import GROUPS, OPTIONS, Option
from .render import render
from .spec import Spec, SpecError

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


def add_option(parser: argparse._ActionsContainer, option: Option) -> None:
    """The ``--flag`` of one registry option. Domains are checked by ``Spec`` (exit 2 with its
    message), except that text which is no number at all is refused here, as argparse does."""
    kwargs: dict[str, Any] = {"help": option.help, "dest": option.name}
    if option.default is not None:
        kwargs["default"] = option.default
    if option.metavar is not None:
        kwargs["metavar"] = option.metavar
    if option.positive:
        kwargs["type"] = _number
    elif option.kind is int:
        kwargs["type"] = _integer
    elif option.choices:
        kwargs["choices"] = option.choices
    parser.add_argument(option.flag, **kwargs)


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
    groups: dict[str | None, argparse._ActionsContainer] = {None: parser}
    for title, text in GROUPS.items():
        groups[title] = parser.add_argument_group(title, text)
    for option in OPTIONS:
        add_option(groups[option.group], option)
    parser.add_argument(
        "--calibrate",
        type=Path,
        metavar="FILE.npy",
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
        fd, self.tmp = tempfile.mkstemp(
            prefix=f".{self.target.name}.", suffix=".tmp", dir=self.target.parent
        )
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


def run_generate(args: argparse.Namespace) -> int:
    given = {o.name: getattr(args, o.name) for o in OPTIONS if getattr(args, o.name) is not None}
    spec = Spec(**given)
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
    "bench": "lutcodegen.firmware.bench",
    "report": "lutcodegen.analysis.report",
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
