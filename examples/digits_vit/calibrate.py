"""Measure a digits model's calibration peaks once and store them in its weights file.

Quantization needs, at every point where the integer model stores an int8 tensor, the largest
magnitude seen on the digits training split. Measuring it needs scikit-learn's digits; storing
it in the weights file (array ``calibration_peaks``) lets ``lutcodegen model`` emit the C with
numpy alone. ``train.py`` does this for the weights it writes; for the shipped weights::

    python examples/digits_vit/calibrate.py            # lutcodegen/model/data/digits_vit.npz

The parameters are rewritten unchanged (float32 to float64 and back is exact).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from lutcodegen.model import example, vit


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", type=Path, nargs="?", default=example.WEIGHTS)
    args = parser.parse_args()
    weights = vit.read_weights(args.weights)
    peaks = example.digits_peaks(weights.config, weights.params)
    if weights.peaks is not None and np.array_equal(weights.peaks, peaks):
        print(f"{args.weights}: calibration peaks already up to date")
        return 0
    vit.save_weights(args.weights, weights.config, weights.params, peaks)
    print(f"{args.weights}: wrote {len(peaks)} calibration peaks")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
