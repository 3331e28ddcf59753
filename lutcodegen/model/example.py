"""The shipped example: the digits ViT's weights file and its quantized forms.

The weights ship inside the package (``lutcodegen/model/data/digits_vit.npz``), with the
activation peaks measured once on the digits training split (``calibration_peaks``), so that
``lutcodegen model`` emits the C from an installed wheel with numpy alone. The demo, the tests
and the command find them here, or take another path.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from . import digits, vit
from .quantize import QuantModel, activation_peaks, quantize

#: The trained float weights and their calibration peaks, shipped as package data.
WEIGHTS = Path(__file__).resolve().parent / "data" / "digits_vit.npz"

#: C prefix of the example model.
PREFIX = "dvit"

#: Shape of the digits images and labels, which calibration and the demo's evaluation need.
DIGITS_IMAGE_SIZE = 8
DIGITS_CLASSES = 10


def weights_path(path: Path | None = None) -> Path:
    """``path``, or the shipped weights; a clear error when neither exists."""
    found = Path(path) if path is not None else WEIGHTS
    if not found.is_file():
        raise FileNotFoundError(
            f"weights file {found} not found"
            + (
                "; train weights with examples/digits_vit/train.py or write random ones with "
                "python -m lutcodegen.model.synthetic"
                if path is not None
                else "; the package installation is incomplete (reinstall lutcodegen)"
            )
        )
    return found


def check_digits_shape(config: vit.ViTConfig, what: str, classes: bool = True) -> None:
    """``WeightsError`` unless the model reads 8x8 images (and, with ``classes``, has one
    output per digit): the digits data set can only calibrate or evaluate such a model."""
    if config.image_size != DIGITS_IMAGE_SIZE or (classes and config.classes != DIGITS_CLASSES):
        raise vit.WeightsError(
            f"{what} needs a model of {DIGITS_IMAGE_SIZE}x{DIGITS_IMAGE_SIZE} images"
            + (f" and {DIGITS_CLASSES} classes" if classes else "")
            + f"; this one has {config.image_size}x{config.image_size} images and "
            f"{config.classes} classes"
        )


def digits_peaks(config: vit.ViTConfig, params: dict[str, np.ndarray]) -> np.ndarray:
    """Calibration peaks of a digits model measured on the training split (scikit-learn)."""
    check_digits_shape(config, "calibrating on the digits", classes=False)
    try:
        train = digits.load().train_images
    except ImportError as exc:
        raise vit.WeightsError(
            f"calibrating on the digits needs scikit-learn ({exc}); or store the peaks in the "
            "weights file (examples/digits_vit/calibrate.py)"
        ) from exc
    return activation_peaks(config, params, train)


@lru_cache(maxsize=8)
def quantized(method: str = "lut", path: Path | None = None, prefix: str = PREFIX) -> QuantModel:
    """The model quantized for softmax ``method``: at the calibration peaks stored in its
    weights file, or, for a file without them, at peaks measured on the digits training split."""
    weights = vit.read_weights(weights_path(path))
    peaks = weights.peaks
    if peaks is None:
        peaks = digits_peaks(weights.config, weights.params)
    return quantize(weights.config, weights.params, peaks, method, prefix)
