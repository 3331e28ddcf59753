"""Weights files of any shape with random parameters, calibrated on random images.

The generator, the integer reference and the firmware must work for every shape a weights file
may declare, not only the digits model's; training a model per shape would need PyTorch and
minutes each. Random parameters at a sensible scale (fan-in scaled weights, LayerNorm gains
near 1) exercise the same arithmetic, and random 0..16 images stand in for calibration data.
The file is an ordinary weights file, calibration peaks included, so everything downstream
treats it like the shipped one::

    python -m lutcodegen.model.synthetic --image-size 16 --patch 4 --dim 24 --heads 3 \\
        --layers 1 --mlp-dim 48 --classes 5 -o random16.npz
    lutcodegen model --weights random16.npz -o m.c --header m.h
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import vit
from .quantize import activation_peaks

#: Pixel values of the images the model reads (``vit.PIXEL_SCALE`` maps 16 to 1.0).
PIXEL_MAX = 16


def random_params(config: vit.ViTConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """Parameters of every array ``vit.parameter_shapes`` lists, as float32 values in float64
    (what a weights file gives back when loaded, so the peaks are measured on the stored model)."""
    rng = np.random.default_rng(seed)
    params: dict[str, np.ndarray] = {}
    for name, shape in vit.parameter_shapes(config).items():
        if name.endswith("_w"):
            value = rng.normal(0.0, 1.0 / np.sqrt(shape[1]), size=shape)
        elif name.endswith("_g"):
            value = 1.0 + 0.1 * rng.normal(size=shape)
        else:  # biases, LayerNorm offsets, class token and position embedding
            value = 0.1 * rng.normal(size=shape)
        params[name] = value.astype(np.float32).astype(np.float64)
    return params


def random_images(config: vit.ViTConfig, count: int, seed: int = 0) -> np.ndarray:
    """``count`` int8 images of the model's size with pixels 0..16."""
    rng = np.random.default_rng(seed)
    size = (count, config.image_size, config.image_size)
    images: np.ndarray = rng.integers(0, PIXEL_MAX + 1, size=size).astype(np.int8)
    return images


def write(path: Path, config: vit.ViTConfig, seed: int = 0, calibration_images: int = 256) -> None:
    """A complete weights file: random parameters and peaks measured on random images."""
    config.validate()
    params = random_params(config, seed)
    peaks = activation_peaks(config, params, random_images(config, calibration_images, seed + 1))
    vit.save_weights(path, config, params, peaks)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lutcodegen.model.synthetic",
        description="Write a weights file of any shape with random parameters and calibration.",
    )
    defaults = vit.ViTConfig()
    for name in ("image_size", "patch", "dim", "heads", "layers", "mlp_dim", "classes"):
        lo, hi = vit.CONFIG_RANGES[name]
        parser.add_argument(
            "--" + name.replace("_", "-"),
            type=int,
            default=getattr(defaults, name),
            help=f"{lo}..{hi} (default {getattr(defaults, name)})",
        )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the .npz to write")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = vit.ViTConfig(
        args.image_size, args.patch, args.dim, args.heads, args.layers, args.mlp_dim, args.classes
    )
    try:
        write(args.output, config, args.seed)
    except (vit.WeightsError, OSError) as exc:
        print(f"{build_parser().prog}: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}: {config.tokens} tokens, {config}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
