"""scikit-learn's bundled digits data set and the one fixed train/test split every tool uses.

The split lives here, once, so that training, calibration, evaluation, the demo and the tests
can never disagree about which images are held out. Calibration must only ever see ``train``.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import numpy as np

#: Held-out fraction and seed of the split; changing either invalidates the shipped results.
TEST_FRACTION = 0.2
SPLIT_SEED = 0


@dataclass(frozen=True)
class Digits:
    """Images as int8 pixel values 0..16 (shape (n, 8, 8)) and integer labels, per split."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


def available() -> bool:
    """Whether scikit-learn, which ships the digits, is installed (checked without importing
    it, so that a command can refuse with a message before doing any work)."""
    return importlib.util.find_spec("sklearn") is not None


def load() -> Digits:
    """The 1797 digits, split 80/20, stratified by label, with a fixed seed.

    scikit-learn ships the images inside its wheel, so this needs no network. It is imported
    here and not at module level because only the demo, the tests and training need it.
    """
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError(
            "the digits data set comes with scikit-learn: pip install 'lutcodegen[demo]'"
        ) from exc
    data = load_digits()
    images = data.images.astype(np.int8)  # pixel values are integers 0..16
    labels = data.target.astype(np.int64)
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=TEST_FRACTION, stratify=labels, random_state=SPLIT_SEED
    )
    train_idx.sort()
    test_idx.sort()
    return Digits(images[train_idx], labels[train_idx], images[test_idx], labels[test_idx])
