"""``lutcodegen demo``: the digits Vision Transformer end to end, on emulated microcontrollers.

From the shipped float weights it calibrates and quantizes the model (training images only),
generates the C, builds firmware for a Cortex-M4, a Cortex-M0+ and an RV32IMAC board, runs the
whole held-out split through each in QEMU, and prints float and int8 accuracy per softmax
method, bit-exact agreement with the host reference, instructions per inference and the
model's flash and RAM; with ``--profile``, where each board's instructions go, by function.
Exit status 1 if any board disagrees with the reference in any bit.

With ``--weights`` of another shape (``python -m lutcodegen.model.synthetic`` writes them), it
runs that model on random images instead: bit-exactness, instructions and the profile, no
accuracy (the digits data set fits only 8x8, ten-class models).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from .. import METHODS
from ..cli import UsageError, run_command
from ..firmware import cmsis_nn
from . import digits, example, firmware, intref, synthetic, vit
from .codegen import scratch_sizes
from .quantize import QuantModel


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f} %"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lutcodegen demo", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--weights",
        type=Path,
        default=None,
        help="float weights .npz (default: the shipped digits model)",
    )
    parser.add_argument(
        "--softmax",
        nargs="+",
        choices=METHODS,
        default=list(METHODS),
        help="softmax methods to compare (default: all); the first is traced",
    )
    parser.add_argument(
        "--boards",
        nargs="+",
        choices=sorted(firmware.BOARDS),
        default=list(firmware.BOARDS),
        help="emulated boards (default: all)",
    )
    parser.add_argument(
        "--trace-images",
        type=int,
        default=1,
        metavar="N",
        help="images whose instructions are counted from a QEMU trace on Arm "
        "boards (slow; 0 to skip; default 1)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="print where the instructions of the first image go, by function, on every "
        "board (first softmax method; from a QEMU trace)",
    )
    parser.add_argument(
        "--portable",
        action="store_true",
        help="build every board with the portable kernels only (default: the Cortex-M4 calls "
        "CMSIS-NN's matrix product, from its pinned source)",
    )
    parser.add_argument(
        "--keep", type=Path, default=None, help="keep the generated C and firmware in this folder"
    )
    return parser


#: RAM a board keeps beside the model's scratch: the firmware's stack (the model's deepest
#: path is under 0.5 KiB) and picolibc's data.
RAM_RESERVE = 2048


def boards_that_fit(config: vit.ViTConfig, names: Sequence[str]) -> list[str]:
    """The boards of ``names`` whose RAM holds the model's scratch; a note on stderr names each
    board left out (a 65-token model needs more than the microbit's 16 KiB)."""
    scratch = sum(scratch_sizes(config).values())
    fit = []
    for name in names:
        ram = firmware.BOARDS[name].ram[1]
        if scratch + RAM_RESERVE > ram:
            print(
                f"lutcodegen demo: note: {name} left out: the model needs {scratch} bytes of "
                f"scratch, and the board has {ram} bytes of RAM",
                file=sys.stderr,
            )
        else:
            fit.append(name)
    return fit


def kernel_options(names: Sequence[str], portable: bool) -> dict[str, dict[str, Any]]:
    """``firmware.build`` keywords per board: CMSIS-NN on ``firmware.CMSIS_NN_BOARDS`` unless
    ``portable``. Without CMSIS-NN's source (not unpacked, and not fetchable) those boards
    take the portable kernels, with a note on stderr: the same bits, more instructions."""
    options: dict[str, dict[str, Any]] = {name: {} for name in names}
    for name in names:
        if portable or name not in firmware.CMSIS_NN_BOARDS:
            continue
        try:
            options[name] = firmware.cmsis_nn_options(firmware.BOARDS[name])
        except cmsis_nn.CmsisNnError as exc:
            print(
                f"lutcodegen demo: note: {name} builds the portable kernels: {exc}",
                file=sys.stderr,
            )
    return options


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lutcodegen demo``, on the error contract every command shares."""
    args = build_parser().parse_args(argv)
    return run_command("lutcodegen demo", lambda: _demo(args))


def check_arguments(args: argparse.Namespace) -> tuple[vit.ViTConfig, dict[str, np.ndarray]]:
    """Everything the user gave, checked before training data, builds or QEMU: the weights
    (a regular, well-formed file), --trace-images and the --keep folder. Returns the weights."""
    if args.trace_images < 0:
        raise UsageError(f"--trace-images must be 0 or more, got {args.trace_images}")
    if args.keep is not None:
        if args.keep.exists() and not args.keep.is_dir():
            raise UsageError(f"--keep {args.keep}: not a folder")
        parent = args.keep.parent if str(args.keep.parent) else Path(".")
        if not args.keep.exists() and not parent.is_dir():
            raise UsageError(f"--keep {args.keep}: folder {parent} does not exist")
    try:
        config, params = vit.load_weights(example.weights_path(args.weights))
        return config, params
    except (FileNotFoundError, PermissionError, IsADirectoryError, vit.WeightsError) as exc:
        raise UsageError(str(exc)) from None


#: Random images a model of another shape than the digits model runs on.
RANDOM_IMAGES = 20


def is_digits_model(config: vit.ViTConfig) -> bool:
    """Whether the digits data set can evaluate the model (8x8 images, ten classes)."""
    try:
        example.check_digits_shape(config, "the demo")
    except vit.WeightsError:
        return False
    return True


def _demo(args: argparse.Namespace) -> int:
    started = time.monotonic()
    config, params = check_arguments(args)
    on_digits = is_digits_model(config)
    if on_digits and not digits.available():
        raise UsageError(
            "the demo evaluates the model on scikit-learn's digits data set, and scikit-learn "
            "is not installed: pip install 'lutcodegen[demo]' (lutcodegen model needs no "
            "scikit-learn)"
        )
    missing = sorted(
        {
            t
            for b in args.boards
            for t in firmware.tools_for(firmware.BOARDS[b])
            if shutil.which(t) is None
        }
    )
    if missing:
        print(
            f"lutcodegen demo: error: missing tools {', '.join(missing)} "
            "(bash scripts/setup.sh installs them)",
            file=sys.stderr,
        )
        return 2
    if firmware.find_project() is None:
        print(
            f"lutcodegen demo: error: the model firmware project {firmware.PROJECT_DIR} is "
            "missing; the demo builds it with PlatformIO and runs from a source checkout "
            "(examples/digits_vit/firmware and firmware/platforms/emu)",
            file=sys.stderr,
        )
        return 2
    if not firmware.platformio_available():
        print(
            "lutcodegen demo: error: PlatformIO is not installed in this Python; the demo "
            "builds the firmware with it: pip install 'lutcodegen[firmware]'",
            file=sys.stderr,
        )
        return 2
    boards = boards_that_fit(config, args.boards)
    if not boards:
        raise UsageError("the model's scratch does not fit the RAM of any board asked for")
    options = kernel_options(boards, args.portable)
    n_params = sum(int(v.size) for v in params.values())
    labels: np.ndarray | None = None
    float_acc = 0.0
    if on_digits:
        data = digits.load()
        images, labels = data.test_images, data.test_labels
        print(
            f"digits ViT: {n_params} parameters; {len(data.train_labels)} training images "
            f"(calibration), {len(labels)} held-out test images"
        )
        float_acc = float((vit.forward(config, params, images).argmax(1) == labels).mean())
        print(f"float model accuracy: {_pct(float_acc)}")
    else:
        images = synthetic.random_images(config, RANDOM_IMAGES, seed=0)
        print(
            f"ViT of {config.image_size}x{config.image_size} images, {config.patch}x"
            f"{config.patch} patches, {config.tokens} tokens, width {config.dim}, "
            f"{config.heads} heads, {config.layers} layers, MLP {config.mlp_dim}, "
            f"{config.classes} classes: {n_params} parameters; {RANDOM_IMAGES} random images "
            "(no accuracy: the digits data set fits only 8x8, ten-class models)"
        )
    n_test = len(images)

    workroot = args.keep or Path(tempfile.mkdtemp(prefix="lutcodegen-demo-"))
    rows = []
    profiles: list[str] = []
    failed = False
    try:
        for m_index, method in enumerate(args.softmax):
            qm = example.quantized(method, args.weights)
            ref = intref.run(qm, images)
            if labels is not None:
                host_acc = float((intref.predict(ref) == labels).mean())
                print(
                    f"\nsoftmax {method}: int8 accuracy {_pct(host_acc)} "
                    f"({100 * (host_acc - float_acc):+.2f} points vs float)"
                )
            else:
                print(f"\nsoftmax {method}:")

            def on_board(
                name: str, qm: QuantModel = qm, method: str = method
            ) -> tuple[firmware.Build, firmware.RunResult]:
                board = firmware.BOARDS[name]
                built = firmware.build(qm, images, board, workroot / method / name, **options[name])
                return built, firmware.run(built, n_test)

            # Two emulators at a time: the runs are independent processes.
            with ThreadPoolExecutor(max_workers=2) as pool:
                results = dict(zip(boards, pool.map(on_board, boards)))
            for name, (built, result) in results.items():
                board = built.board
                same = np.all(result.logits == ref, axis=1)
                agree = float(same.mean())
                failed |= agree < 1.0 or bool(np.any(result.classes != intref.predict(ref)))
                acc = None if labels is None else float((result.classes == labels).mean())
                kernels = "CMSIS-NN" if options[name] else "portable"
                traces: list[firmware.Trace] = []
                if m_index == 0 and (
                    args.profile or (args.trace_images > 0 and not board.is_riscv)
                ):
                    wanted = 1 if board.is_riscv else max(args.trace_images, 1)
                    traces = firmware.trace_runs(built, wanted)
                if board.is_riscv:
                    insns = result.insns
                    how = f"{int(insns.mean())} mean ({insns.min()}..{insns.max()}), minstret"
                elif traces:
                    insns = np.array([sum(t.addresses.values()) for t in traces])
                    how = f"{int(insns.mean())} (QEMU trace of {len(traces)} image(s))"
                else:
                    insns, how = np.array([0]), "not counted"
                if args.profile and traces:
                    what = (
                        f"{name} ({board.cpu_name}, {kernels} kernels), softmax {method}, first "
                        f"{'test' if on_digits else 'random'} image: instructions from "
                        "bench_start to bench_stop"
                    )
                    profiles.append(
                        firmware.format_parts(traces[0].parts, f"{what} by part")
                        + "\n\n"
                        + firmware.format_profile(
                            firmware.profile(built, traces[0].addresses), f"{what} by function"
                        )
                    )
                ram = built.scratch + built.stack_worst + built.model_static_ram
                print(
                    f"  {name:9s} {board.cpu_name} ({kernels} kernels): "
                    f"{int(same.sum())}/{n_test} images bit-exact "
                    f"({_pct(agree)}), accuracy {_pct(acc)}; instructions/inference {how}; "
                    f"model flash {built.model_flash} B, RAM {ram} B (scratch "
                    f"{built.scratch} + stack {built.stack_worst})"
                )
                rows.append(
                    (
                        method,
                        name,
                        f"{board.cpu_name}, {kernels}",
                        acc,
                        agree,
                        int(insns.mean()),
                        built.model_flash,
                        ram,
                    )
                )
    finally:
        if args.keep is None:
            shutil.rmtree(workroot, ignore_errors=True)

    print(
        "\n| softmax | board | CPU | int8 accuracy | bit-exact vs host | instructions/inference"
        " | model flash (B) | model RAM (B) |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for method, name, cpu, row_acc, row_agree, count, flash, row_ram in rows:
        print(
            f"| {method} | {name} | {cpu} | {_pct(row_acc)} | {_pct(row_agree)} | "
            f"{count if count else 'n/a'} | {flash} | {row_ram} |"
        )
    for table in profiles:
        print(f"\n{table}")
    print(
        (f"\nfloat accuracy {_pct(float_acc)}; " if on_digits else "\n")
        + f"demo took {time.monotonic() - started:.0f} s"
        + (
            "; MISMATCH between firmware and host reference"
            if failed
            else "; every board bit-exact with the host reference"
        )
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
