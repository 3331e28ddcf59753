"""``lutcodegen bench --tflm MODEL.tflite``: a whole model in TFLite Micro on Cortex-M4, counted.

For each model it builds TFLM with the CMSIS-NN kernels for ``mps2-an386`` (Cortex-M4, DSP
extension) and runs the model three ways: stock (CMSIS-NN's ``arm_softmax_s8``), with the
registration of ``lutcodegen tflm --method tflite`` and with ``--method lut``. ``--kernels
reference`` builds TFLM with its reference kernels instead, for models that TFLM+CMSIS-NN cannot
prepare (16x8 models with per-channel FULLY_CONNECTED weights, which CMSIS-NN takes with int8
input only). The QEMU
instruction-count plugin counts executed instructions (not cycles; QEMU has no timing model)
between markers, once around each ``Invoke()`` and, in a second build, around each SOFTMAX
operator's invoke only, so both the whole inference and the softmax share are exact counts of
the same program. Each count includes the two marker calls (a few instructions).

Reported per variant: instructions per inference and in the softmax operators, the speed-up
over stock, the ceiling (the speed-up if softmax cost nothing), flash (text + data of the whole
firmware, model included) and the arena TFLM used, and whether the outputs equal stock's.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..cli import USAGE_ERROR, UsageError, write_all_or_nothing
from . import build
from .cli import _Parser, _read
from .codegen import PlanError, plan, render_files
from .reader import ModelError, ModelInfo, read_model

TARGET = "cortex-m4"
#: TFLM kernel sets the bench builds with (``--kernels``); the first is the default.
KERNEL_CHOICES = ("cmsis_nn", "reference")
VARIANTS = ("stock", "tflite", "lut")
#: Default number of input samples (each one inference per count).
DEFAULT_SAMPLES = 4
MAX_SAMPLES = 64


@dataclass(frozen=True)
class Row:
    """One model run one way."""

    model: str
    variant: str
    kernels: str  #: TFLM's kernel set: cmsis_nn or reference
    inference: float  #: executed instructions per inference (mean over the samples)
    softmax: float  #: of which inside the SOFTMAX operators
    softmax_ops: int
    softmax_elements: int  #: elements per inference over all SOFTMAX operators
    flash_bytes: int
    arena_bytes: int
    equal_to_stock: bool
    samples: int


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="lutcodegen bench --tflm",
        description="Run .tflite models in TFLite Micro with CMSIS-NN kernels on Cortex-M4 "
        "(QEMU mps2-an386): stock, and with the lutcodegen tflm registration (tflite and lut "
        "methods); count executed instructions per inference and inside the softmax operators.",
    )
    parser.add_argument(
        "--kernels",
        choices=KERNEL_CHOICES,
        default=KERNEL_CHOICES[0],
        help="TFLM's kernels for every model: cmsis_nn (default) or reference (for models "
        "TFLM+CMSIS-NN cannot prepare, such as 16x8 models with per-channel weights)",
    )
    parser.add_argument(
        "--tflm",
        action="append",
        type=Path,
        required=True,
        metavar="MODEL",
        help="a .tflite model, repeatable",
    )
    parser.add_argument(
        "--inputs",
        action="append",
        type=Path,
        metavar="FILE.npy",
        help="input samples for the model of the same position (an int8 or "
        "int16 array, first axis = samples); default: seeded random inputs",
    )
    parser.add_argument(
        "--samples",
        type=int,
        default=DEFAULT_SAMPLES,
        metavar="N",
        help=f"inferences counted per variant, 1..{MAX_SAMPLES} (default "
        f"{DEFAULT_SAMPLES}; with --inputs, the first N)",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write results as JSON")
    parser.add_argument(
        "--markdown", type=Path, metavar="FILE", help="also write the table as Markdown"
    )
    return parser


def _input_shape(info: ModelInfo) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of the model's first input, which the runner feeds."""
    if not info.inputs:
        raise ModelError("the model's first subgraph has no input")
    t = info.inputs[0]
    if t.type_name not in ("int8", "int16") or not t.shape or any(d < 1 for d in t.shape):
        raise ModelError(
            f"the model's input is {t.type_name} {list(t.shape)}; the bench feeds "
            "int8 or int16 inputs of a static shape"
        )
    return t.shape, np.dtype(t.type_name)


def _samples(path: Path | None, shape: tuple[int, ...], dtype: np.dtype, count: int) -> np.ndarray:
    size = math.prod(shape)
    if path is None:
        info = np.iinfo(dtype)
        rng = np.random.default_rng(0)
        return rng.integers(info.min, info.max + 1, size=(count, size)).astype(dtype)
    try:
        with path.open("rb") as f:
            x: np.ndarray = np.load(f, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise UsageError(f"--inputs {path}: not a readable .npy array ({exc})") from None
    if x.dtype != dtype or x.ndim < 1 or x.size != len(x) * size or len(x) < 1:
        raise UsageError(
            f"--inputs {path}: {x.dtype} {list(x.shape)}; the model wants "
            f"{dtype} samples of {list(shape)}"
        )
    samples: np.ndarray = x[:count].reshape(-1, size)
    return samples


def _flash(program: Path) -> int:
    size = shutil.which("arm-none-eabi-size")
    if size is None:
        raise build.TflmBuildError("arm-none-eabi-size not found; run scripts/setup.sh")
    fields = (
        subprocess.run([size, str(program)], capture_output=True, text=True, check=True)
        .stdout.splitlines()[1]
        .split()
    )
    return int(fields[0]) + int(fields[1])  # text + data


def measure(
    model_path: Path,
    inputs: Path | None,
    samples: int,
    work: Path,
    kernels: str = KERNEL_CHOICES[0],
) -> list[Row]:
    """The three variants of one model (stock first), in TFLM built with ``kernels``."""
    data = _read(model_path)
    info = read_model(data)
    shape, dtype = _input_shape(info)
    x = _samples(inputs, shape, dtype, samples)
    elements = sum(math.prod(op.input.shape) for op in info.softmax)
    rows: list[Row] = []
    stock_outputs = None
    for variant in VARIANTS:
        sources: list[Path] = []
        include_dirs: list[Path] = []
        header: str | None = None
        registration: str | None = None
        if variant != "stock":
            p = plan(info, model_path.name, data, method=variant, prefix="lcg")
            folder = work / variant
            folder.mkdir()
            write_all_or_nothing([(folder / n, t) for n, t in render_files(p)])
            sources = sorted(folder.glob("*.c")) + sorted(folder.glob("*.cc"))
            include_dirs = [folder]
            header, registration = "lcg_tflm.h", "lcg::Register_SOFTMAX()"
        counts = {}
        for count in ("invoke", "softmax"):
            program = build.build_runner(
                TARGET,
                kernels,
                data,
                list(x),
                work / f"{variant}-{count}.elf",
                sources=sources,
                include_dirs=include_dirs,
                registration_header=header,
                registration=registration,
                count=count,
            )
            text, regions = build.run_counted(program)
            out = build.parse_runner_output(text, len(x))
            counts[count] = regions
            if count == "invoke":
                flash, arena, outputs = _flash(program), out.arena_used, out.outputs
        if len(counts["invoke"]) != len(x) or len(counts["softmax"]) != len(x) * len(info.softmax):
            raise build.TflmBuildError(
                f"{model_path.name} {variant}: {len(counts['invoke'])} inference and "
                f"{len(counts['softmax'])} softmax regions for {len(x)} samples"
            )
        if stock_outputs is None:
            stock_outputs = outputs
        rows.append(
            Row(
                model_path.name,
                variant,
                kernels,
                float(np.mean(counts["invoke"])),
                float(np.sum(counts["softmax"])) / len(x),
                len(info.softmax),
                elements,
                flash,
                arena,
                outputs == stock_outputs,
                len(x),
            )
        )
        print(
            f"bench --tflm: {model_path.name} {variant}: {rows[-1].inference:,.0f} "
            "instructions per inference",
            file=sys.stderr,
        )
    return rows


def table(rows: Sequence[Row]) -> tuple[list[str], list[list[str]]]:
    header = [
        "model",
        "softmax",
        "insn/inference",
        "speed-up",
        "in softmax",
        "softmax share",
        "softmax speed-up",
        "insn/softmax elem",
        "flash B",
        "arena B",
        "outputs = stock",
    ]
    body = []
    stock: dict[str, Row] = {}
    for r in rows:
        base = stock.setdefault(r.model, r)
        ceiling = base.inference / (base.inference - base.softmax)
        speedup = base.inference / r.inference
        body.append(
            [
                r.model,
                r.variant,
                f"{r.inference:,.0f}",
                f"{speedup:.3f}x" + (f" (ceiling {ceiling:.3f}x)" if r is base else ""),
                f"{r.softmax:,.0f}",
                f"{r.softmax / r.inference:.1%}",
                f"{base.softmax / r.softmax:.1f}x",
                f"{r.softmax / r.softmax_elements:.1f}",
                f"{r.flash_bytes:,}",
                f"{r.arena_bytes:,}",
                "yes" if r.equal_to_stock else "no",
            ]
        )
    return header, body


def text_table(header: list[str], body: list[list[str]]) -> str:
    widths = [max(len(c) for c in col) for col in zip(header, *body)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths)) for line in [header, *body]
    )


def markdown_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(line) + " |" for line in body]
    return "\n".join(lines)


def note(kernels: str) -> str:
    """What the table measured, for TFLM built with ``kernels``."""
    if kernels == "reference":
        built, stock = "its reference kernels", "TFLM's reference softmax"
    else:
        built, stock = "CMSIS-NN kernels", "CMSIS-NN's arm_softmax_s8 (s16 for int16 input)"
    return (
        f"TFLite Micro with {built} on Cortex-M4 (QEMU mps2-an386), arm-none-eabi-gcc; "
        "executed instructions (not cycles) counted by a QEMU plugin, mean over the samples. "
        f"stock = {stock}; tflite/lut = lutcodegen tflm registrations. "
        "Ceiling: the speed-up if the softmax operators cost nothing."
    )


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.samples <= MAX_SAMPLES:
        raise UsageError(f"--samples must be 1..{MAX_SAMPLES}, not {args.samples}")
    inputs = list(args.inputs or [])
    if len(inputs) > len(args.tflm):
        raise UsageError("more --inputs than --tflm models")
    for path in (args.json, args.markdown):
        if path is not None:
            from ..cli import _check_writable

            _check_writable(path)
    for model in args.tflm:  # read and plan everything before any build
        data = _read(model)
        info = read_model(data)
        _input_shape(info)
        for method in VARIANTS[1:]:
            plan(info, model.name, data, method=method)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="lutcodegen-bench-tflm-") as tmp:
        for i, model in enumerate(args.tflm):
            work = Path(tmp) / str(i)
            work.mkdir()
            rows += measure(
                model, inputs[i] if i < len(inputs) else None, args.samples, work, args.kernels
            )
    header, body = table(rows)
    text = note(args.kernels)
    print(text)
    print(text_table(header, body))
    files = []
    if args.json:
        files.append(
            (
                args.json,
                json.dumps(
                    {
                        "tool": f"lutcodegen {__version__} bench --tflm",
                        "note": text,
                        "results": [asdict(r) for r in rows],
                    },
                    indent=2,
                )
                + "\n",
            )
        )
    if args.markdown:
        files.append((args.markdown, text + "\n\n" + markdown_table(header, body) + "\n"))
    write_all_or_nothing(files)
    return 0


def main(argv: Sequence[str]) -> int:
    """``lutcodegen bench --tflm ...``; returns the exit status."""
    try:
        return run(build_parser().parse_args(list(argv)))
    except (UsageError, ModelError, PlanError) as exc:
        print(f"lutcodegen bench: error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except build.TflmBuildError as exc:
        print(f"lutcodegen bench: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"lutcodegen bench: error: {exc}", file=sys.stderr)
        return 1
