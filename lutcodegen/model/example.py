"""The shipped example: the digits ViT's weights file and its quantized forms.

The weights live in the source tree (``examples/digits_vit/digits_vit.npz``); the demo, the
tests and the ``lutcodegen model`` command find them here, or take another path.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from . import digits, vit
from .quantize import QuantModel, quantize

#: The trained float weights shipped with the source tree.
WEIGHTS = Path(__file__).resolve().parents[2] / "examples" / "digits_vit" / "digits_vit.npz"

#: C prefix of the example model.
PREFIX = "dvit"


def weights_path(path: Path | None = None) -> Path:
    """``path``, or the shipped weights; a clear error when neither exists."""
    found = Path(path) if path is not None else WEIGHTS
    if not found.is_file():
        raise FileNotFoundError(
            f"weights file {found} not found; the example's weights ship in the source tree "
            "(examples/digits_vit/digits_vit.npz), or train them with "
            "examples/digits_vit/train.py"
        )
    return found


@lru_cache(maxsize=8)
def quantized(method: str = "lut", path: Path | None = None, prefix: str = PREFIX) -> QuantModel:
    """The example model quantized for softmax ``method``, calibrated on the training split."""
    config, params = vit.load_weights(weights_path(path))
    return quantize(config, params, digits.load().train_images, method, prefix)
