"""Method ``lut2d``: Vasyltsov & Chang's 2D LUT, the division replaced by a table.

Algorithm, per row (steps 1-5 shared with ``rexp``, see ``lutcodegen.methods.paper``):

1-5. ``n_i = N[(d_i + h) >> k]`` (reciprocal exponentials scaled to 2^B - 1), ``S = sum n_i``,
     ``c = index(S)``: the quantized sum is the column.
6. ``r_i = (n_i + 2^(t-1)) >> t`` with ``t = num_shift``: the numerator rounded to one of
   ``R = ((2^B - 1 + 2^(t-1)) >> t) + 1`` rows.
7. ``y_i = Y[r_i][c]`` where, with ``n_r = min(r 2^t, 2^B - 1)`` and the bucket ``[lo, hi]``,
   ``Y[r][c] = min(round(2^B n_r (1/lo + 1/hi) / 2), 2^B - 1) - 2^(B-1)``: the output itself,
   stored in the output type, so the element loop has no arithmetic beyond two shifts.

The public re-implementation reads the paper's table as 11 numerator steps x 60 sum steps
(660 bytes at 8 bits). The row quantization here is a power of two (divider-free); the defaults
are chosen in docs/paper-methods.md from measured error at an equal byte budget.

Error: outputs carry the numerator rounding (``<= 2^(t-1)`` units of ``n``, i.e. up to
``2^(t-1) * 2^B / S`` LSB) on top of everything ``rexp`` has; small probabilities (``n_i <
2^(t-1)``) become 0. Measured, not bounded: ``lutcodegen report`` publishes the figures.

Overflow proof: ``S <= max_row (2^B - 1)`` fits the sum type (asserted); ``n_i + 2^(t-1) <=
2^B - 1 + 2^14 < 2^32``; ``r_i <= R - 1`` and ``c <= C - 1`` by construction and clipping, so
every table read is in bounds. There are no products.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fixedpoint import round_half_up
from ..spec import Spec, SpecError
from . import paper

#: Method defaults (why: see docs/paper-methods.md, which tabulates the alternatives).
DEFAULT_INDEX_SHIFT = 0
DEFAULT_SUM_MODE = "log"
DEFAULT_SUM_MANTISSA = 2
DEFAULT_SUM_SHIFT = 8
#: num_shift default is bits - 4: 17 numerator rows at any precision.
DEFAULT_NUM_ROWS_LOG2 = 4


@dataclass(frozen=True)
class Lut2dDesign:
    """Every table and constant the C and the reference share for one ``lut2d`` spec."""

    spec: Spec
    num_table: np.ndarray  #: N[q], uint8 (B <= 8) or uint16
    index_shift: int  #: k: one numerator entry spans 2^k input LSBs
    quantizer: paper.SumQuantizer  #: S -> column c
    num_shift: int  #: t: row r = round(n / 2^t)
    table2d: np.ndarray  #: Y[r][c], int8 (B <= 8) or int16: the outputs

    @property
    def table_bytes(self) -> int:
        return int(self.num_table.nbytes + self.table2d.nbytes)


def design(spec: Spec) -> Lut2dDesign:
    """Tables for ``spec`` with each open choice taken from the spec or the method default."""
    B = spec.bits
    k = DEFAULT_INDEX_SHIFT if spec.index_shift is None else spec.index_shift
    mode = spec.sum_mode or DEFAULT_SUM_MODE
    if mode == "log" and spec.sum_shift is not None:
        raise SpecError("--sum-shift applies to --sum-mode linear; use --sum-mantissa for log")
    if mode == "linear" and spec.sum_mantissa is not None:
        raise SpecError("--sum-mantissa applies to --sum-mode log; use --sum-shift for linear")
    if mode == "log":
        res = min(DEFAULT_SUM_MANTISSA, B - 1) if spec.sum_mantissa is None else spec.sum_mantissa
    else:
        res = DEFAULT_SUM_SHIFT if spec.sum_shift is None else spec.sum_shift
    t = max(B - DEFAULT_NUM_ROWS_LOG2, 0) if spec.num_shift is None else spec.num_shift
    if t > B - 1:
        raise SpecError(f"num_shift must be from 0 to bits - 1 = {B - 1}, got {t}")
    quantizer = paper.make_quantizer(spec, mode, res, spec.sum_max)
    num_table = paper.numerator_table(spec, k, spec.exp_entries)
    qmax = (1 << B) - 1
    half = (1 << (t - 1)) if t > 0 else 0
    rows = ((qmax + half) >> t) + 1
    n_rep = np.minimum(np.arange(rows, dtype=np.float64) * (1 << t), qmax)
    inv = quantizer.reciprocals()
    values = np.minimum(round_half_up((1 << B) * n_rep[:, None] * inv[None, :]), qmax)
    table2d = (values - (1 << (B - 1))).astype(np.int8 if B <= 8 else np.int16)
    if quantizer.s_cap > (1 << quantizer.sum_bits) - 1:
        raise AssertionError("overflow proof violated: the sum exceeds its type")
    return Lut2dDesign(spec, num_table, k, quantizer, t, table2d)


def reference(dsg: Lut2dDesign, x: np.ndarray) -> np.ndarray:
    """Bit-exact model of the generated C: int8 rows (..., L) in, outputs (int64) out."""
    x = np.asarray(x)
    paper.check_row_length(dsg.spec, x)
    n = paper.numerators(dsg.num_table, dsg.index_shift, x)
    c = dsg.quantizer.index(n.sum(axis=-1))[..., None]
    t = dsg.num_shift
    r = (n + ((1 << (t - 1)) if t > 0 else 0)) >> t
    result: np.ndarray = dsg.table2d.astype(np.int64)[r, np.broadcast_to(c, r.shape)]
    return result


def describe(dsg: Lut2dDesign) -> list[str]:
    """Human-readable facts about the design, for the banner and for stderr."""
    spec, q = dsg.spec, dsg.quantizer
    B = spec.bits
    if q.mode == "log":
        how = f"log, 2^{q.resolution} columns per octave"
    else:
        how = f"linear, columns of 2^{q.resolution}"
    rows, cols = dsg.table2d.shape
    return [
        f"numerator table: {len(dsg.num_table)} x {dsg.num_table.dtype}_t = "
        f"{dsg.num_table.nbytes} bytes, N[q] = round({(1 << B) - 1} * exp(-{spec.scale!r} * "
        f"{1 << dsg.index_shift} * q)), q = round((max - x) / {1 << dsg.index_shift})",
        f"2D table: {rows} x {cols} x {dsg.table2d.dtype}_t = {dsg.table2d.nbytes} bytes, rows "
        f"round(n / {1 << dsg.num_shift}), columns: sum {how}, sums {q.s_min}..{q.sum_max}"
        f" (larger share the last)",
        f"tables total {dsg.table_bytes} bytes; no multiply, no divide, no float",
        "accuracy: approximate (the paper's 2D LUT); see lutcodegen report for measured error",
    ]


def template_context(dsg: Lut2dDesign) -> dict[str, object]:
    """Numbers the ``lut2d.c.j2`` template prints (templates do no arithmetic)."""
    q = dsg.quantizer
    t = dsg.num_shift
    return {
        "accuracy_note": [
            "Bit-exact with lutcodegen's reference model for the same options. The method is",
            "the 2D LUT of Vasyltsov & Chang (2021): approximate by design; its measured error",
            "against the exact softmax is published by `lutcodegen report`.",
        ],
        "num_ctype": f"{dsg.num_table.dtype}_t",
        "sum_ctype": f"uint{q.sum_bits}_t",
        "out_table_ctype": f"{dsg.table2d.dtype}_t",
        "index_half": (1 << (dsg.index_shift - 1)) if dsg.index_shift > 0 else 0,
        "num_half": (1 << (t - 1)) if t > 0 else 0,
        "q": q,
        "sum_const": lambda v: paper.c_unsigned(v, q.sum_bits),
        "bucket_bounds": q.bounds(),
        "s_cap": q.s_cap,
        "rows2d": [[int(v) for v in row] for row in dsg.table2d],
        "row_reps": [min(r << t, (1 << dsg.spec.bits) - 1) for r in range(dsg.table2d.shape[0])],
        "num_step": 1 << t,
        "rows_last": dsg.table2d.shape[0] - 1,
        "buckets_last": q.length - 1,
        **paper.template_numbers(dsg.num_table, dsg.index_shift, q),
    }
