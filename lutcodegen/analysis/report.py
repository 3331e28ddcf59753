"""``lutcodegen report``: measured accuracy and table size of every method, bit width and scale.

Each configuration's numpy reference (bit-exact with its C) runs on the same rows, synthetic
attention-like ones or a calibration file, and is compared with the float64 softmax of the same
int8 input. The table has, per configuration:

* ``max err`` / ``mean err``: ``|(y + 2^(B-1)) - 2^B p|`` in output LSB;
* ``exact %``: outputs equal to the correctly rounded softmax (``ideal_output``);
* ``KL``: mean over rows of ``KL(p || q)``, nats, with ``q`` the outputs as probabilities,
  each floored at half an LSB (an output of 0 would make KL infinite) and renormalized;
* ``top-1 %``: rows whose largest output (first, if tied) is a true argmax of ``p``;
* ``mean abs(sum-1)``: mean over rows of ``|sum(q) - 1|``;
* ``TV %``: mean total variation ``sum |q - p| / 2``: the share of attention mass misplaced,
  which bounds the error of the attention output ``sum q_i v_i`` by ``2 TV max |v|``.

A row ``ideal`` (correct rounding, no tables) shows what the output precision alone costs.

The plot (``--plot FILE.png``, needs matplotlib: ``pip install lutcodegen[report]``) shows mean
error and TV against table bytes, one line per method and input scale, one point per bit width.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..cli import UsageError, check_c_outputs, run_command, write_atomically
from ..fixedpoint import ideal_output, softmax_float64
from ..methods import design_for, reference
from ..methods.calibrate import calibrate, load_rows, read_npy
from ..registry import (
    INT16_INPUT_METHODS,
    MAX_ROW_LIMIT,
    METHODS,
    OPTION_BY_NAME,
    SpecError,
    option,
)
from ..spec import Spec

#: Defaults of the sweep: every method, the useful output widths, two typical input scales.
DEFAULT_BITS = (4, 6, 8, 10, 12, 16)
DEFAULT_SCALES = (1 / 16, 1 / 8)
#: With --input-bits 16: int16 scales covering about +-8 and +-32 in real units.
DEFAULT_SCALES16 = (1 / 4096, 1 / 1024)
DEFAULT_LENGTHS = (16, 64, 128, 256)
DEFAULT_ROWS = 1000

#: Most synthetic elements (--rows x length) per length: 128 MiB of float64 scores, with room
#: for the copies each method's reference makes. More is refused before anything is allocated.
MAX_ELEMENTS = 1 << 24

#: The loss criterion of the summary: top-1 disagreement and misplaced mass both under 1 %.
LOSS_LIMIT = 0.01


@dataclass(frozen=True)
class Result:
    """The measured figures of one configuration."""

    method: str
    bits: int
    input_scale: float
    table_bytes: int
    max_err: float
    mean_err: float
    exact: float
    kl: float
    top1: float
    sum_err: float
    tv: float
    note: str = ""
    #: TV and top-1 of the correctly rounded output at the same bits and scale (None: no row)
    ideal_tv: float | None = None
    ideal_top1: float | None = None

    @property
    def within_loss(self) -> bool:
        """Top-1 agreement and attention mass both within LOSS_LIMIT of exact softmax."""
        return 1.0 - self.top1 < LOSS_LIMIT and self.tv < LOSS_LIMIT

    @property
    def within_loss_of_ideal(self) -> bool:
        """What the method adds to the output format's own loss is under LOSS_LIMIT."""
        if self.ideal_tv is None or self.ideal_top1 is None:
            return False
        return self.ideal_top1 - self.top1 < LOSS_LIMIT and self.tv - self.ideal_tv < LOSS_LIMIT


def synthetic_rows(lengths: Sequence[int], count: int, seed: int) -> list[np.ndarray]:
    """Attention-like scores in real units (float64), one array (count, L) per length.

    Each row is Gaussian with a standard deviation drawn log-uniformly from 0.5 to 4 (from
    nearly flat to sharply peaked attention); a third of the rows also get one to four keys
    boosted by 2 to 6, the few strong matches attention heads typically show.
    """
    rng = np.random.default_rng(seed)
    out = []
    for length in lengths:
        sigma = np.exp(rng.uniform(math.log(0.5), math.log(4.0), size=(count, 1)))
        z = sigma * rng.standard_normal((count, length))
        spiked = rng.random(count) < 1 / 3
        for r in np.flatnonzero(spiked):
            keys = rng.choice(length, size=min(length, int(rng.integers(1, 5))), replace=False)
            z[r, keys] += rng.uniform(2.0, 6.0, size=len(keys))
        out.append(z)
    return out


def quantize(z: np.ndarray, input_scale: float, input_bits: int = 8) -> np.ndarray:
    """Real scores to the int8 logits a kernel with this input scale sees."""
    with np.errstate(over="ignore"):  # a subnormal scale: the quotient saturates anyway
        if input_bits == 16:
            return np.clip(np.rint(z / input_scale), -32768, 32767).astype(np.int16)
        return np.clip(np.rint(z / input_scale), -128, 127).astype(np.int8)


def _ideal(x: np.ndarray, scale: float, bits: int, input_bits: int) -> np.ndarray:
    """Correct rounding in the output convention: int16 input means TFLite's 1/32768, no zero
    point; int8 input means 2^-B with zero point -2^(B-1)."""
    if input_bits == 16:
        return ideal_output(x, scale, 15) + (1 << 14)
    return ideal_output(x, scale, bits)


def measure(
    outputs: list[np.ndarray],
    inputs: list[np.ndarray],
    scale: float,
    bits: int,
    input_bits: int = 8,
) -> dict[str, Any]:
    """The figures of one configuration over row groups of possibly different lengths."""
    errs, exact, kl, top1, sum_err, tv = [], [], [], [], [], []
    zero, unit = (0, 1 << 15) if input_bits == 16 else (1 << (bits - 1), 1 << bits)
    for y, x in zip(outputs, inputs):
        p = softmax_float64(x, scale)
        level = (y + zero).astype(np.float64)
        q = level / unit
        errs.append(np.abs(level - p * unit).ravel())
        exact.append((y == _ideal(x, scale, bits, input_bits)).ravel())
        floored = np.maximum(level, 0.5)
        qn = floored / floored.sum(axis=-1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(p > 0, p * np.log(p / qn), 0.0)
        kl.append(terms.sum(axis=-1))
        pick = np.argmax(y, axis=-1)
        top1.append(np.take_along_axis(p, pick[:, None], axis=-1)[:, 0] >= p.max(axis=-1))
        sum_err.append(np.abs(q.sum(axis=-1) - 1.0))
        tv.append(0.5 * np.abs(q - p).sum(axis=-1))
    allerr = np.concatenate(errs)
    return {
        "max_err": float(allerr.max()),
        "mean_err": float(allerr.mean()),
        "exact": float(np.concatenate(exact).mean()),
        "kl": float(np.concatenate(kl).mean()),
        "top1": float(np.concatenate(top1).mean()),
        "sum_err": float(np.concatenate(sum_err).mean()),
        "tv": float(np.concatenate(tv).mean()),
    }


def run(
    methods: Sequence[str],
    bits_list: Sequence[int],
    scales: Sequence[float],
    scores: list[np.ndarray],
    max_row: int,
    calibrate_from: str | None = None,
    ideal: bool = True,
    options: dict[str, Any] | None = None,
    skip: frozenset[tuple[str, int]] | None = None,
    input_bits: int = 8,
) -> list[Result]:
    """Measure every configuration on ``scores`` (real units, or int8 logits used as is).

    With ``calibrate_from`` (a name for the notes), ``scores`` is one array of calibration
    rows and each method's free parameters are chosen from it, as ``--calibrate`` would.
    ``options`` are Spec fields given to every method they apply to (``registry.OPTIONS``).
    ``skip`` holds the (method, bits) pairs a method does not support (``supported_pairs``);
    any other refused configuration raises ``SpecError``, so a bad setting is never dropped
    without a word. Without ``skip``, every refused configuration is skipped with a note.
    ``input_bits`` 16 measures the int16-input kernels (int16 output, TFLite's convention).
    """
    results = []
    integer = np.int8 if input_bits == 8 else np.int16
    for scale in scales:
        inputs = [s if s.dtype == integer else quantize(s, scale, input_bits) for s in scores]
        for bits in bits_list:
            if ideal:
                outs = [_ideal(x, scale, bits, input_bits) for x in inputs]
                results.append(
                    Result(
                        "ideal", bits, scale, 0, **measure(outs, inputs, scale, bits, input_bits)
                    )
                )
            for method in methods:
                if skip is not None and (method, bits) in skip:
                    continue
                try:
                    mine = {
                        k: v
                        for k, v in (options or {}).items()
                        if OPTION_BY_NAME[k].applies_to(method)
                    }
                    spec = Spec(
                        method=method,
                        bits=bits,
                        input_scale=scale,
                        max_row=max_row,
                        input_bits=input_bits,
                        **mine,
                    )
                    note = ""
                    if calibrate_from is not None and OPTION_BY_NAME["sum_max"].applies_to(method):
                        spec, _ = calibrate(spec, inputs[0], source=calibrate_from)
                        note = _chosen(spec)
                    dsg = design_for(spec)
                except SpecError as exc:
                    if skip is not None:
                        raise SpecError(f"{method} bits={bits}: {exc}") from None
                    print(
                        f"lutcodegen report: skipping {method} bits={bits}: {exc}", file=sys.stderr
                    )
                    continue
                outs = [reference(dsg, x) for x in inputs]
                results.append(
                    Result(
                        method,
                        bits,
                        scale,
                        dsg.table_bytes,
                        **measure(outs, inputs, scale, bits, input_bits),
                        note=note,
                    )
                )
    baseline = {(r.bits, r.input_scale): r for r in results if r.method == "ideal"}
    return [
        dataclasses.replace(
            r,
            ideal_tv=baseline[r.bits, r.input_scale].tv,
            ideal_top1=baseline[r.bits, r.input_scale].top1,
        )
        if (r.bits, r.input_scale) in baseline and r.method != "ideal"
        else r
        for r in results
    ]


def _chosen(spec: Spec) -> str:
    names = ("sum_max", "sum_mantissa", "sum_shift")
    return " ".join(f"{n}={getattr(spec, n)}" for n in names if getattr(spec, n) is not None)


def _scale_text(scale: float) -> str:
    inverse = 1.0 / scale
    if not math.isfinite(inverse):  # a subnormal scale: 1/scale overflows
        return f"{scale:g}"
    return f"1/{round(inverse)}" if abs(inverse - round(inverse)) < 1e-9 else f"{scale:g}"


def format_table(results: Sequence[Result]) -> str:
    """A Markdown table, aligned so it also reads well in a terminal."""
    header = [
        "method",
        "bits",
        "scale",
        "table B",
        "max err LSB",
        "mean err LSB",
        "exact %",
        "KL (nats)",
        "top-1 %",
        "mean abs(sum-1)",
        "TV %",
        "TV - ideal",
        "< 1 % loss",
    ]
    rows = []
    for r in results:
        rows.append(
            [
                r.method,
                str(r.bits),
                _scale_text(r.input_scale),
                str(r.table_bytes),
                f"{r.max_err:.2f}",
                f"{r.mean_err:.3f}",
                f"{100 * r.exact:.2f}",
                f"{r.kl:.2e}",
                f"{100 * r.top1:.2f}",
                f"{r.sum_err:.4f}",
                f"{100 * r.tv:.3f}",
                "" if r.ideal_tv is None else f"{100 * (r.tv - r.ideal_tv):+.3f}",
                "yes" if r.within_loss else ("vs ideal" if r.within_loss_of_ideal else "no"),
            ]
        )
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.rjust(w) for c, w in zip(cells, widths)) + " |"

    out = [line(header), "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|"]
    out += [line(row) for row in rows]
    return "\n".join(out)


def summary(results: Sequence[Result]) -> list[str]:
    """Per method and scale, the bit widths meeting each loss criterion."""
    lines = []
    keys = sorted({(r.method, r.input_scale) for r in results}, key=lambda k: (k[1], k[0]))
    for method, scale in keys:
        mine = [r for r in results if r.method == method and r.input_scale == scale]
        absolute = [r.bits for r in mine if r.within_loss]
        relative = [r.bits for r in mine if r.within_loss_of_ideal]
        text = (
            f"{method} at input scale {_scale_text(scale)}: loss under "
            f"{100 * LOSS_LIMIT:.0f} % vs float64 at bits {_bits(absolute)}"
        )
        if method != "ideal":
            text += (
                f"; under {100 * LOSS_LIMIT:.0f} % beyond correct rounding at bits "
                f"{_bits(relative)}"
            )
        lines.append(text)
    return lines


def _bits(values: Sequence[int]) -> str:
    return ", ".join(str(b) for b in sorted(values)) if values else "none tested"


def plot(results: Sequence[Result], path: Path) -> None:
    """Mean error (probability units) and TV against table bytes, log-log, labeled by bits."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 5), constrained_layout=True)
    markers = ["o", "s", "^", "D", "v", "P"]
    scales = sorted({r.input_scale for r in results})
    methods = [m for m in dict.fromkeys(r.method for r in results) if m != "ideal"]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (field, label) in zip(
        axes,
        [
            ("mean_err", "mean |error| (probability)"),
            ("tv", "mean total variation (misplaced mass)"),
        ],
    ):
        for mi, method in enumerate(methods):
            for si, scale in enumerate(scales):
                pts = sorted(
                    (r for r in results if r.method == method and r.input_scale == scale),
                    key=lambda r: r.bits,
                )
                if not pts:
                    continue
                xs = [r.table_bytes for r in pts]
                if field == "mean_err":
                    ys = [r.mean_err / (1 << r.bits) for r in pts]
                else:
                    ys = [r.tv for r in pts]
                ax.plot(
                    xs,
                    ys,
                    marker=markers[si % len(markers)],
                    color=colors[mi % len(colors)],
                    linestyle="-" if si == 0 else "--",
                    label=f"{method}, scale {_scale_text(scale)}",
                )
                for r, x, y in zip(pts, xs, ys):
                    ax.annotate(
                        str(r.bits), (x, y), textcoords="offset points", xytext=(4, 3), fontsize=7
                    )
        if field == "tv":
            ax.axhline(LOSS_LIMIT, color="grey", linewidth=0.8, linestyle=":")
            ax.text(
                1.0,
                LOSS_LIMIT,
                "1 % ",
                va="bottom",
                ha="right",
                fontsize=8,
                color="grey",
                transform=ax.get_yaxis_transform(),
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("table bytes")
        ax.set_ylabel(label)
        ax.grid(True, which="both", linewidth=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("lutcodegen methods: error against table size (labels: output bits)")
    image = io.BytesIO()
    fig.savefig(image, format="png", dpi=110)
    plt.close(fig)
    write_atomically(path, image.getvalue())


def _list(kind: type, text: str) -> list[Any]:
    """A comma-separated list; scales must be positive and finite (``1/0``, ``nan`` and ``inf``
    are refused here, before they reach a division or a conversion to an integer)."""
    try:
        values = [kind(eval_fraction(v)) if kind is float else kind(v) for v in text.split(",")]
    except (ValueError, ZeroDivisionError, OverflowError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list") from None
    if kind is float:
        for value in values:
            if not math.isfinite(value) or value <= 0:
                raise argparse.ArgumentTypeError(f"{value!r} is not a positive finite number")
    return values


def eval_fraction(text: str) -> float:
    """``0.0625`` or ``1/16``."""
    if "/" in text:
        num, den = text.split("/", 1)
        return float(num) / float(den)
    return float(text)


def supported_pairs(
    methods: Sequence[str],
    bits_list: Sequence[int],
    scales: Sequence[float],
    max_row: int,
    options: dict[str, Any],
) -> frozenset[tuple[str, int]]:
    """Check every setting before any work, and return the (method, bits) pairs to skip.

    Each bits value, scale and ``max_row`` must be in the registry's domain. A method that does
    not support a width (``tflite`` at 4 bits) is skipped for it, since the default widths span
    every method's; but a width, scale or option that no method accepts, or a configuration
    refused for any other reason, is an error (exit 2), never a silently shorter table.
    """
    for bits in bits_list:
        OPTION_BY_NAME["bits"].validate(bits)
    for scale in scales:
        OPTION_BY_NAME["input_scale"].validate(scale)
    OPTION_BY_NAME["max_row"].validate(max_row)
    skip = set()
    for method in methods:
        for bits in bits_list:
            try:
                Spec(method=method, bits=bits)
            except SpecError:
                skip.add((method, bits))
                continue
            mine = {k: v for k, v in options.items() if OPTION_BY_NAME[k].applies_to(method)}
            for scale in scales:
                spec = Spec(method=method, bits=bits, input_scale=scale, max_row=max_row, **mine)
                try:
                    design_for(spec)  # design-time refusals (TFLite's range, table size) too
                except SpecError as exc:
                    raise SpecError(f"{method} bits={bits} scale {scale:g}: {exc}") from None
    for bits in bits_list:
        if all((m, bits) in skip for m in methods):
            Spec(method=methods[0], bits=bits)  # raises: no method supports this width
    for name in options:
        if not any(OPTION_BY_NAME[name].applies_to(m) for m in methods):
            raise SpecError(f"--option {name}: none of the methods {', '.join(methods)} has it")
    return frozenset(skip)


def check_plot_path(path: Path, inputs: Sequence[Path]) -> None:
    """The plot is a PNG file that can be written, checked before any work: a directory, a
    missing folder or a name without ``.png`` (``x.txt``, ``/dev/full``) is refused instead of
    failing after the whole run, or of writing ``NAME.png`` beside what was asked for."""
    if path.suffix.lower() != ".png":
        raise UsageError(f"--plot {path}: the plot is a PNG file, its name must end in .png")
    check_c_outputs(path, None, inputs)


def _option(text: str) -> tuple[str, object]:
    """``name=value`` for a method option of the registry, the value parsed to its type."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise SpecError(f"--option wants NAME=VALUE, got {text!r}")
    try:
        found = option(name)
    except SpecError:
        found = None
    if found is None or not found.methods:
        raise SpecError(f"--option: no method has an option {name.strip()!r}")
    return found.name, found.parse(value)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lutcodegen report",
        description="Measure every method's accuracy and table bytes against float64 softmax.",
    )
    parser.add_argument(
        "--methods",
        type=lambda t: _list(str, t),
        default=None,
        help=f"comma-separated (default {','.join(METHODS)})",
    )
    parser.add_argument(
        "--bits",
        type=lambda t: _list(int, t),
        default=None,
        help="comma-separated output widths (default 4,6,8,10,12,16; 16 with --input-bits 16); "
        "a width that one method lacks (tflite: 8 and 16 only) is skipped for it, one that no "
        "method has is an error",
    )
    parser.add_argument(
        "--input-scales",
        type=lambda t: _list(float, t),
        default=None,
        help="comma-separated, e.g. 1/16,1/8",
    )
    parser.add_argument(
        "--calibrate",
        type=Path,
        metavar="FILE.npy",
        help="measure on these scores (last axis = row) and calibrate each "
        "method from them, instead of synthetic rows",
    )
    parser.add_argument(
        "--lengths",
        type=lambda t: _list(int, t),
        default=list(DEFAULT_LENGTHS),
        help="synthetic row lengths (default 16,64,128,256)",
    )
    parser.add_argument(
        "--rows",
        type=int,
        default=DEFAULT_ROWS,
        help=f"synthetic rows per length (default {DEFAULT_ROWS})",
    )
    parser.add_argument("--seed", type=int, default=0, help="synthetic data seed (default 0)")
    parser.add_argument("--max-row", type=int, help="kernels' max_row (default: longest row)")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a method option (e.g. sum_mantissa=4) for every method that has it; repeatable",
    )
    parser.add_argument(
        "--input-bits",
        type=int,
        choices=(8, 16),
        default=8,
        help="16: the int16-input kernels (methods lut and tflite, int16 output scale 1/32768; "
        "defaults --bits 16 --input-scales 1/4096,1/1024)",
    )
    parser.add_argument(
        "--no-ideal", action="store_true", help="leave out the correctly rounded baseline rows"
    )
    parser.add_argument(
        "--plot", type=Path, metavar="FILE.png", help="also write the plot (a .png file)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lutcodegen report``; prints the table, optionally writes the plot."""
    args = build_parser().parse_args(argv)
    return run_command("lutcodegen report", lambda: _report(args))


def _report(args: argparse.Namespace) -> int:
    """Every argument is checked before any measurement; the table goes to stdout, and the plot
    is written whole or not at all."""
    started = time.perf_counter()
    wide = args.input_bits == 16
    if args.methods is None:
        args.methods = list(INT16_INPUT_METHODS if wide else METHODS)
    if args.bits is None:
        args.bits = [16] if wide else list(DEFAULT_BITS)
    if args.input_scales is None:
        args.input_scales = list(DEFAULT_SCALES16 if wide else DEFAULT_SCALES)
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        raise UsageError(f"unknown method {unknown[0]!r}; choose from {', '.join(METHODS)}")
    if args.rows < 1:
        raise UsageError(f"--rows must be at least 1, got {args.rows}")
    if args.seed < 0:
        raise UsageError(f"--seed must be 0 or more, got {args.seed}")
    for length in args.lengths:
        if not 1 <= length <= MAX_ROW_LIMIT:
            raise UsageError(f"--lengths: {length} is not a row length from 1 to {MAX_ROW_LIMIT}")
        if args.calibrate is None and args.rows * length > MAX_ELEMENTS:
            raise UsageError(
                f"--rows {args.rows} x length {length} is {args.rows * length} elements; at "
                f"most {MAX_ELEMENTS} per length"
            )
    if args.plot is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise UsageError("--plot needs matplotlib (pip install 'lutcodegen[report]')") from None
        check_plot_path(args.plot, [args.calibrate] if args.calibrate is not None else [])
    options = dict(_option(text) for text in args.option)
    if args.calibrate is not None:
        data = read_npy(args.calibrate)
        if np.issubdtype(data.dtype, np.floating):
            if data.ndim < 1 or data.size == 0:
                raise SpecError(f"calibration file {args.calibrate} holds no rows")
            if not np.isfinite(data).all():
                raise SpecError(f"calibration file {args.calibrate} contains NaN or infinity")
            scores = [data.reshape(-1, data.shape[-1]).astype(np.float64)]
        else:
            scores = [load_rows(args.calibrate, 1.0)]
        source = f"{args.calibrate.name} ({scores[0].shape[0]} rows of {scores[0].shape[1]})"
    else:
        scores = synthetic_rows(args.lengths, args.rows, args.seed)
        source = (
            f"synthetic attention-like rows: {args.rows} per length "
            f"{','.join(map(str, args.lengths))}, seed {args.seed}"
        )
    longest = max(s.shape[-1] for s in scores)
    max_row = args.max_row if args.max_row is not None else longest
    if max_row < longest:
        raise UsageError(f"--max-row {max_row} is shorter than the longest row, {longest}")
    skip = supported_pairs(
        args.methods,
        args.bits,
        args.input_scales,
        max_row,
        dict(options, input_bits=args.input_bits),
    )
    for method, bits in sorted(skip):
        print(f"lutcodegen report: {method} does not support bits={bits}", file=sys.stderr)
    results = run(
        args.methods,
        args.bits,
        args.input_scales,
        scores,
        max_row,
        calibrate_from=args.calibrate.name if args.calibrate else None,
        ideal=not args.no_ideal,
        options=options,
        skip=skip,
        input_bits=args.input_bits,
    )
    chosen = "".join(f"; --option {k}={v}" for k, v in options.items())
    wide_note = "; int16 input, int16 output (scale 1/32768)" if wide else ""
    out = [f"Data: {source}; max_row {max_row}{chosen}{wide_note}.\n", format_table(results), ""]
    out += [f"- {line}" for line in summary(results)]
    notes = [r for r in results if r.note]
    if notes:
        out.append("\nCalibration chose:")
        for r in notes:
            out.append(f"- {r.method} bits {r.bits} scale {_scale_text(r.input_scale)}: {r.note}")
    if args.plot is not None:
        plot(results, args.plot)
    sys.stdout.write("\n".join(out) + "\n")
    sys.stdout.flush()
    if args.plot is not None:
        print(f"\nPlot: {args.plot}", file=sys.stderr)
    print(
        f"lutcodegen report: {len(results)} configurations in "
        f"{time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )
    return 0
