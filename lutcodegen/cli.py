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
import secrets
import stat
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .methods import describe, design_for
from .methods.calibrate import calibrate, load_rows
from .registry import GROUPS, OPTIONS, Option
from .render import render
from .spec import Spec, SpecError, check_header_name

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

    def __init__(self, path: Path, text: str | bytes) -> None:
        self.tmp: str | None = None
        data = text.encode("utf-8") if isinstance(text, str) else text
        if path.exists() and not path.is_file():
            with open(path, "wb") as f:
                f.write(data)
            return
        self.target = Path(os.path.realpath(path))
        if self.target.exists():
            mode = stat.S_IMODE(self.target.stat().st_mode)
        else:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        # The temporary name is short whatever the target's (a name near NAME_MAX must still
        # fit), and it is recorded before the file is created: an interrupt at any point then
        # finds the name, and discard() removes the file if it exists. (Masking SIGINT around
        # mkstemp is not enough: in a process with other threads the signal can be taken by
        # one of them and still raise in this one before mkstemp returns the name.)
        try:
            fd = self._create(f".{self.target.name[:32]}.", self.target.parent)
            with os.fdopen(fd, "wb") as f:
                os.fchmod(f.fileno(), mode)
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            self.discard()
            raise

    def _create(self, prefix: str, folder: Path) -> int:
        """A new file ``folder/prefix<random>.tmp`` (``O_EXCL``, mode 0600), its name in
        ``self.tmp`` before it exists."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        for _ in range(100):
            self.tmp = str(folder / f"{prefix}{secrets.token_hex(4)}.tmp")
            try:
                return os.open(self.tmp, flags, 0o600)
            except FileExistsError:
                self.tmp = None
            except BaseException:
                self.discard()
                raise
        raise UsageError(f"cannot create a temporary file in {folder}")

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


def write_atomically(path: Path, text: str | bytes) -> None:
    """Write ``text`` (UTF-8, or bytes as they are) to ``path`` completely or not at all (temp
    file + fsync + rename)."""
    write_all_or_nothing([(path, text)])


def write_all_or_nothing(files: Sequence[tuple[Path, str | bytes]]) -> None:
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


def check_c_outputs(
    output: Path | None, header: Path | None, inputs: Sequence[Path] = ()
) -> str | None:
    """The one check of a command's C outputs, run before any work: both writable, the header
    name safe to print into ``#include "..."``, the two different files, and neither one of the
    command's ``inputs``. Returns the name the source includes (None without a header)."""
    for path in (output, header):
        if path is not None:
            _check_writable(path)
            for given in inputs:
                if given.exists() and path.exists() and os.path.samefile(given, path):
                    raise UsageError(f"cannot write {path}: it is the input file {given}")
    if output is not None and header is not None:
        if output.resolve() == header.resolve():
            raise UsageError("--output and --header must be different files")
    if header is None:
        return None
    try:
        check_header_name(header.name)
    except SpecError as exc:
        raise UsageError(str(exc)) from None
    return header.name


def write_c_outputs(
    output: Path | None, header: Path | None, source: str, header_text: str | None
) -> None:
    """Write the pair all or nothing, or the source to stdout when there is no ``-o``."""
    files: list[tuple[Path, str]] = []
    if header is not None and header_text is not None:
        files.append((header, header_text))
    if output is not None:
        files.append((output, source))
    write_all_or_nothing(files)
    if output is None:
        sys.stdout.write(source)
        sys.stdout.flush()


def run_command(prog: str, body: Callable[[], int]) -> int:
    """The error contract every command shares: bad usage (``SpecError``, ``UsageError``) exits
    2 with one line on stderr, an operating-system failure exits 1 the same way, a closed
    stdout exits 1 quietly (as ``head`` expects of a filter) and an interrupt exits 130; never
    a traceback. Writes are all or nothing, so no exit leaves a partial file."""
    try:
        return body()
    except (SpecError, UsageError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except BrokenPipeError:
        # Later flushes of the closed pipe would raise again at interpreter exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 1
    except OSError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: still one line, and a status that says it is not the user's
        print(f"{prog}: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def run_generate(args: argparse.Namespace) -> int:
    given = {o.name: getattr(args, o.name) for o in OPTIONS if getattr(args, o.name) is not None}
    spec = Spec(**given)
    notes: list[str] = []
    inputs = [args.calibrate] if args.calibrate is not None else []
    header_name = check_c_outputs(args.output, args.header, inputs)
    if args.calibrate is not None:
        rows = load_rows(args.calibrate, spec.input_scale)
        spec, notes = calibrate(spec, rows, source=args.calibrate.name)
        for line in notes:
            print(f"lutcodegen: {line}", file=sys.stderr)
    dsg = design_for(spec)
    generated = render(dsg, header_name=header_name, notes=notes)
    if args.verbose:
        for line in describe(dsg):
            print(f"lutcodegen: {line}", file=sys.stderr)
    write_c_outputs(args.output, args.header, generated.source, generated.header)
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
    return run_command("lutcodegen", lambda: run_generate(args))


if __name__ == "__main__":
    sys.exit(main())
