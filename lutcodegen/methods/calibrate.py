"""Calibration: pick each method's free parameters from real attention scores.

The input is a ``.npy`` array whose last axis is the softmax row: int8 logits as the kernel will
see them, or float scores in real units, which are quantized with the spec's input scale
(``round(x / input_scale)`` clipped to int8; ``-inf``, e.g. a mask, becomes -128).

What is chosen, per method (options the user set explicitly are never overridden):

* ``rexp`` and ``lut2d``: ``sum_max``, the largest row sum (of the integer numerators) seen in
  the data, so the sum table stops where real rows stop; then the finest sum resolution
  (``sum_mantissa`` in log mode, ``sum_shift`` in linear mode) whose tables fit in the bytes the
  uncalibrated default would take. Same memory, buckets spent where the data is.
* ``lut`` (and any method without free parameters): nothing to choose; the data is checked
  against ``max_row`` only.

Rows longer than ``max_row`` are an error: the kernel would reject them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from ..registry import OPTION_BY_NAME, SpecError
from ..spec import Spec
from . import design_for
from . import paper as paper_methods
from .lut2d import Lut2dDesign
from .rexp import RexpDesign


def read_npy(path: Path) -> np.ndarray:
    """One ``.npy`` array, its header checked against the file before anything is allocated:
    a 128-byte file can claim a shape of terabytes, and ``np.load`` would try to honour it."""
    if not path.is_file():
        raise SpecError(f"calibration file {path} is not a regular file")
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            magic = f.read(6)
            if magic[:2] == b"PK":
                raise SpecError(
                    f"calibration file {path} is an .npz archive; save one array with np.save"
                )
            if magic != b"\x93NUMPY":
                raise SpecError(f"calibration file {path} is not a .npy file (save with np.save)")
            f.seek(0)
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise SpecError(f"calibration file {path}: unknown .npy version {version}")
            if dtype.hasobject or dtype.kind not in "iuf" or dtype.fields is not None:
                raise SpecError(
                    f"calibration file {path}: dtype {dtype} is neither integer nor float"
                )
            need = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if f.tell() + need > size:
                raise SpecError(
                    f"calibration file {path}: its header claims shape {shape} "
                    f"({need} bytes), but the file holds {size - f.tell()} bytes of data"
                )
            data: np.ndarray = np.fromfile(f, dtype=dtype, count=int(np.prod(shape)))
            return data.reshape(shape, order="F" if fortran else "C")
    except SpecError:
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise SpecError(f"cannot read calibration file {path}: {exc}") from None


def load_rows(path: Path, input_scale: float) -> np.ndarray:
    """The calibration rows as a 2D int8 array (rows, L); raises ``SpecError`` on bad data."""
    data = read_npy(path)
    if data.ndim < 1 or data.size == 0 or data.shape[-1] < 1:
        raise SpecError(f"calibration file {path} holds no rows (shape {data.shape})")
    rows = data.reshape(-1, data.shape[-1])
    if rows.dtype.kind in "iu":
        if rows.min() < -128 or rows.max() > 127:
            raise SpecError(
                f"calibration file {path}: integer data must be int8 logits (-128..127), "
                f"found {rows.min()}..{rows.max()}; save float scores to have them quantized"
            )
        result: np.ndarray = rows.astype(np.int8)
        return result
    if rows.dtype.kind == "f":
        if not np.isfinite(rows).all():  # as lutcodegen report refuses them
            raise SpecError(f"calibration file {path} contains NaN or infinity")
        # Finite scores beyond int8 saturate, as quantizing them to int8 does.
        with np.errstate(over="ignore", invalid="ignore"):
            q = np.rint(rows.astype(np.float64) / input_scale)
        quantized: np.ndarray = np.clip(q, -128, 127).astype(np.int8)
        return quantized
    raise SpecError(f"calibration file {path}: dtype {rows.dtype} is neither integer nor float")


def _paper_design(spec: Spec) -> RexpDesign | Lut2dDesign:
    """The design of a paper method (the only ones with free parameters to calibrate)."""
    dsg = design_for(spec)
    if not isinstance(dsg, (RexpDesign, Lut2dDesign)):
        raise SpecError(f"method {spec.method} has no numerator table to calibrate")
    return dsg


def _row_sums(spec: Spec, rows: np.ndarray) -> np.ndarray:
    """S = sum of the integer numerators, with the spec's numerator table."""
    dsg = _paper_design(spec)
    n = paper_methods.numerators(dsg.num_table, dsg.index_shift, rows)
    result: np.ndarray = n.sum(axis=-1)
    return result


def calibrate(spec: Spec, rows: np.ndarray, source: str = "data") -> tuple[Spec, list[str]]:
    """The spec with its free parameters chosen from ``rows``, and lines saying what and why."""
    length = rows.shape[-1]
    if length > spec.max_row:
        raise SpecError(
            f"calibration rows have {length} elements but --max-row is {spec.max_row}; the "
            "kernel would reject them (raise --max-row)"
        )
    head = f"calibration: {rows.shape[0]} rows of {length} from {source}"
    if not OPTION_BY_NAME["sum_max"].applies_to(spec.method):
        return spec, [f"{head}; method {spec.method} has no free parameters to choose"]
    sums = _row_sums(spec, rows)
    chosen: dict[str, Any] = {}
    if spec.sum_max is None:
        chosen["sum_max"] = int(sums.max())
    budget = design_for(spec).table_bytes
    calibrated = dataclasses.replace(spec, **chosen)
    mode = _paper_design(calibrated).quantizer.mode
    field = "sum_mantissa" if mode == "log" else "sum_shift"
    if getattr(spec, field) is None:
        candidates = range(spec.bits - 1, -1, -1) if mode == "log" else range(0, 41)
        for value in candidates:
            update: dict[str, Any] = {field: value}
            trial = dataclasses.replace(calibrated, **update)
            if design_for(trial).table_bytes <= budget:
                chosen[field] = value
                calibrated = trial
                break
    dsg = design_for(calibrated)
    pct = np.percentile(sums, [50, 99]).round().astype(int)
    lines = [
        f"{head}: row sums {int(sums.min())}..{int(sums.max())} (median {pct[0]}, 99th "
        f"percentile {pct[1]}) of at most {spec.max_row * ((1 << spec.bits) - 1)}",
        "calibration chose "
        + (", ".join(f"--{k.replace('_', '-')} {v}" for k, v in chosen.items()) or "nothing")
        + f": tables {dsg.table_bytes} bytes (uncalibrated default {budget})",
    ]
    return calibrated, lines
