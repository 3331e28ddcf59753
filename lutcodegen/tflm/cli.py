"""``lutcodegen tflm MODEL.tflite -o DIR``: kernels and a TFLite Micro registration for a model.

Contract, as for the main command: bad input (a file that is not a model, a model without a
servable softmax, an unwritable folder) exits 2 with a message on stderr and writes nothing;
other failures exit 1. The files are written all or nothing.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from collections.abc import Sequence
from pathlib import Path

from ..cli import UsageError, run_command, write_all_or_nothing
from .codegen import ON_MISMATCH, TFLM_METHODS, PlanError, plan, render_files
from .reader import ModelError, read_model

#: FlatBuffers cannot address more than 2 GiB; a larger file is not a model.
MAX_MODEL_BYTES = (1 << 31) - 1


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is an exception (exit 2 through one path, no SystemExit)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message}\n{self.format_usage().rstrip()}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="lutcodegen tflm",
        description="Generate a kernel for every distinct SOFTMAX of a .tflite model and a "
        "TFLite Micro registration that binds them: add "
        "resolver.AddSoftmax(<prefix>::Register_SOFTMAX()) and the generated files.",
        epilog="Example: lutcodegen tflm model.tflite -o softmax/",
    )
    parser.add_argument("model", type=Path, help="the .tflite model")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        metavar="DIR",
        help="folder for the generated files (created if missing)",
    )
    parser.add_argument(
        "--method",
        choices=TFLM_METHODS,
        default="tflite",
        help="tflite: bit-identical to TFLM (default); lut: fastest, within "
        "1 LSB of the correctly rounded softmax",
    )
    parser.add_argument(
        "--prefix",
        default="lcg",
        help="C prefix of the kernels and C++ namespace of the registration (default lcg)",
    )
    parser.add_argument(
        "--on-mismatch",
        choices=ON_MISMATCH,
        default="error",
        help="an operator no kernel covers at run time: fail Prepare with a "
        "message (error, default) or run TFLM's own kernel (fallback)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="list the operators and their kernels on stderr",
    )
    return parser


def _read(path: Path) -> bytes:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it: {exc.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise UsageError(f"{path} is a directory, not a .tflite model")
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"{path} is not a regular file")
    if info.st_size > MAX_MODEL_BYTES:
        raise UsageError(f"{path}: {info.st_size} bytes is more than a TFLite flatbuffer holds")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it: {exc.strerror}") from None


def _prepare_folder(folder: Path) -> bool:
    """Check (or create) the output folder; True when it was created here."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"-o {folder}: exists and is not a folder")
    created = False
    if not folder.exists():
        try:
            folder.mkdir(parents=True)
        except OSError as exc:
            raise UsageError(f"-o {folder}: cannot create the folder: {exc.strerror}") from None
        created = True
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"-o {folder}: the folder is not writable")
    return created


def run(args: argparse.Namespace) -> int:
    data = _read(args.model)
    model = read_model(data)
    p = plan(
        model,
        args.model.name,
        data,
        method=args.method,
        prefix=args.prefix,
        on_mismatch=args.on_mismatch,
    )
    files = render_files(p)  # everything is generated before the first byte is written
    created = _prepare_folder(args.output)
    try:
        write_all_or_nothing([(args.output / name, text) for name, text in files])
    except BaseException:
        if created:
            try:
                args.output.rmdir()
            except OSError:
                pass
        raise
    for op, why in p.unbound:
        print(f"lutcodegen tflm: {op.where} runs TFLM's own kernel: {why}", file=sys.stderr)
    if args.verbose:
        for k in p.kernels:
            for op in k.ops:
                print(
                    f"lutcodegen tflm: {op.where} -> {k.name} ({k.input_type} in, "
                    f"{k.output_type} out, rows of {op.row_size})",
                    file=sys.stderr,
                )
    n_ops = sum(len(k.ops) for k in p.kernels)
    print(
        f"lutcodegen tflm: {n_ops} SOFTMAX operators, {len(p.kernels)} kernels, "
        f"{len(files)} files in {args.output}; add resolver.AddSoftmax("
        f"{p.prefix}::Register_SOFTMAX())",
        file=sys.stderr,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``lutcodegen tflm``, on the error contract every command shares (``cli.run_command``);
    returns the exit status."""
    return run_command("lutcodegen tflm", lambda: _main(argv))


def _main(argv: Sequence[str] | None) -> int:
    """Parse and run; a model or plan the command cannot take is a usage error (exit 2)."""
    try:
        args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
        return run(args)
    except (ModelError, PlanError) as exc:
        raise UsageError(str(exc)) from None
