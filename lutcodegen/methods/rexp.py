"""Method ``rexp``: Vasyltsov & Chang's REXP (normalization of reciprocal exponentiation).

Algorithm, per row (steps 1-5 shared with ``lut2d``, see ``lutcodegen.methods.paper``):

1-5. ``n_i = N[(d_i + h) >> k]`` (reciprocal exponentials scaled to 2^B - 1), ``S = sum n_i``,
     ``j = index(S)``.
6. ``a = A[j]`` with ``A[j] = round(2^(B+F) * (1/lo_j + 1/hi_j) / 2)``: the paper's
   compensation coefficient, ``2^(B+F) / S`` for the bucket's sums.
7. ``y_i = min((n_i * a + r) >> F, 2^B - 1) - 2^(B-1)`` with ``r = 2^(F-1)`` (``rounding =
   nearest``, default) or ``r = 0`` (``floor``, the paper's bare ``>> k``).

One coefficient serves the whole row, so the outputs keep the order of the inputs exactly as
the table keeps it (argmax is preserved up to ties the table creates); what the bucket costs is
the row's scale: outputs are off by the relative error of ``a`` against ``2^(B+F)/S``.

Error: against the exact ``2^B p_i``, the value before the final rounding differs by the table
rounding of ``n`` (relative, ``<= 1/2`` unit), the sum's bucket error (``|a 2^-(B+F) S - 1|``,
at most half the bucket's relative width: ``2^-(m+1)`` in log mode), and the coefficient's own
rounding (``<= n / 2^(F+1) <= 2^(B-F-1)`` LSB). These are measured, not bounded to 1 LSB: the
method is deliberately coarse. ``lutcodegen report`` publishes the figures.

Overflow proof: ``S <= max_row (2^B - 1)`` fits the sum type (asserted); ``F`` is the largest
shift with ``A[0] <= 2^16 - 1`` (the coefficient storage; F = 15 for every B) and
``(2^B - 1) A[0] + 2^(F-1) <= 2^32 - 1``, so every product fits ``uint32_t`` (asserted at design
time for the largest coefficient, which is A[0] since the buckets ascend).
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
DEFAULT_SUM_MANTISSA = 5
DEFAULT_SUM_SHIFT = 8
DEFAULT_ROUNDING = "nearest"


@dataclass(frozen=True)
class RexpDesign:
    """Every table and constant the C and the reference share for one ``rexp`` spec."""

    spec: Spec
    num_table: np.ndarray  #: N[q], uint8 (B <= 8) or uint16
    index_shift: int  #: k: one numerator entry spans 2^k input LSBs
    quantizer: paper.SumQuantizer  #: S -> j
    alpha: np.ndarray  #: A[j], uint16 or uint32
    alpha_bits: int  #: 16 or 32
    frac_bits: int  #: F
    rounding: str  #: "nearest" or "floor"

    @property
    def table_bytes(self) -> int:
        return int(self.num_table.nbytes + self.alpha.nbytes)


def _frac_bits(B: int, inv_max: float) -> tuple[int, int]:
    """Largest F with A[0] <= 2^16 - 1 and every product in 32 bits; see module doc.

    16-bit coefficients give F = 15 at every B from 2 to 16; their rounding then costs at most
    ``2^(B-16)`` LSB, which is far below the sum bucket's error even at B = 16 (1 LSB vs a
    relative 1.6 % for 32 buckets per octave). Wider coefficients would double the table for
    no measurable gain, so they are not offered.
    """
    for F in range(31, 0, -1):
        a0 = int(round_half_up(2.0 ** (B + F) * inv_max))
        if a0 <= 0xFFFF and ((1 << B) - 1) * a0 + (1 << (F - 1)) <= (1 << 32) - 1:
            return F, 16
    raise AssertionError("no coefficient scaling fits 16-bit entries and 32-bit products")


def design(spec: Spec) -> RexpDesign:
    """Tables for ``spec`` with each open choice taken from the spec or the method default."""
    k = DEFAULT_INDEX_SHIFT if spec.index_shift is None else spec.index_shift
    mode = spec.sum_mode or DEFAULT_SUM_MODE
    if mode == "log" and spec.sum_shift is not None:
        raise SpecError("--sum-shift applies to --sum-mode linear; use --sum-mantissa for log")
    if mode == "linear" and spec.sum_mantissa is not None:
        raise SpecError("--sum-mantissa applies to --sum-mode log; use --sum-shift for linear")
    if mode == "log":
        if spec.sum_mantissa is None:
            # Capped at bits - 1, the finest the quantizer allows at low precision.
            res = min(DEFAULT_SUM_MANTISSA, spec.bits - 1)
        else:
            res = spec.sum_mantissa
    else:
        res = DEFAULT_SUM_SHIFT if spec.sum_shift is None else spec.sum_shift
    quantizer = paper.make_quantizer(spec, mode, res, spec.sum_max)
    num_table = paper.numerator_table(spec, k, spec.exp_entries)
    inv = quantizer.reciprocals()
    B = spec.bits
    F, bits = _frac_bits(B, float(inv[0]))
    alpha = round_half_up(2.0 ** (B + F) * inv)
    if alpha.max() > (1 << bits) - 1 or alpha.min() < 0:
        raise AssertionError("coefficient out of its storage range")
    if ((1 << B) - 1) * int(alpha.max()) + (1 << (F - 1)) > (1 << 32) - 1:
        raise AssertionError("overflow proof violated: n * a + r exceeds 32 bits")
    if quantizer.s_cap > (1 << quantizer.sum_bits) - 1:
        raise AssertionError("overflow proof violated: the sum exceeds its type")
    dtype = np.uint16 if bits == 16 else np.uint32
    return RexpDesign(
        spec,
        num_table,
        k,
        quantizer,
        alpha.astype(dtype),
        bits,
        F,
        spec.rounding or DEFAULT_ROUNDING,
    )


def reference(dsg: RexpDesign, x: np.ndarray) -> np.ndarray:
    """Bit-exact model of the generated C: int8 rows (..., L) in, outputs (int64) out."""
    spec = dsg.spec
    x = np.asarray(x)
    paper.check_row_length(spec, x)
    n = paper.numerators(dsg.num_table, dsg.index_shift, x)
    sums = n.sum(axis=-1)
    a = dsg.alpha.astype(np.int64)[dsg.quantizer.index(sums)][..., None]
    r = (1 << (dsg.frac_bits - 1)) if dsg.rounding == "nearest" else 0
    y = (n * a + r) >> dsg.frac_bits
    B = spec.bits
    result: np.ndarray = np.minimum(y, (1 << B) - 1) - (1 << (B - 1))
    return result


def describe(dsg: RexpDesign) -> list[str]:
    """Human-readable facts about the design, for the banner and for stderr."""
    spec, q = dsg.spec, dsg.quantizer
    B = spec.bits
    if q.mode == "log":
        how = f"log, 2^{q.resolution} buckets per octave"
    else:
        how = f"linear, buckets of 2^{q.resolution}"
    return [
        f"numerator table: {len(dsg.num_table)} x {dsg.num_table.dtype}_t = "
        f"{dsg.num_table.nbytes} bytes, N[q] = round({(1 << B) - 1} * exp(-{spec.scale!r} * "
        f"{1 << dsg.index_shift} * q)), q = round((max - x) / {1 << dsg.index_shift})",
        f"coefficient table: {len(dsg.alpha)} x uint{dsg.alpha_bits}_t = {dsg.alpha.nbytes} bytes,"
        f" A[j] ~ 2^{B + dsg.frac_bits} / S, sum {how}, sums {q.s_min}..{q.sum_max}"
        f" (larger share the last)",
        f"output: (n * A[j]{' + 2^' + str(dsg.frac_bits - 1) if dsg.rounding == 'nearest' else ''})"
        f" >> {dsg.frac_bits} ({dsg.rounding}); tables total {dsg.table_bytes} bytes;"
        " no divide, no float",
        "accuracy: approximate (the paper's REXP); see lutcodegen report for measured error",
    ]


def template_context(dsg: RexpDesign) -> dict[str, object]:
    """Numbers the ``rexp.c.j2`` template prints (templates do no arithmetic)."""
    q = dsg.quantizer
    return {
        "accuracy_note": [
            "Bit-exact with lutcodegen's reference model for the same options. The method is",
            "the REXP of Vasyltsov & Chang (2021): approximate by design; its measured error",
            "against the exact softmax is published by `lutcodegen report`.",
        ],
        "num_ctype": f"{dsg.num_table.dtype}_t",
        "sum_ctype": f"uint{q.sum_bits}_t",
        "alpha_ctype": f"uint{dsg.alpha_bits}_t",
        "index_half": (1 << (dsg.index_shift - 1)) if dsg.index_shift > 0 else 0,
        "q": q,
        "sum_const": lambda v: paper.c_unsigned(v, q.sum_bits),
        "round_add": (1 << (dsg.frac_bits - 1)) if dsg.rounding == "nearest" else 0,
        "bucket_bounds": q.bounds(),
        "max_product": ((1 << dsg.spec.bits) - 1) * int(dsg.alpha.max())
        + ((1 << (dsg.frac_bits - 1)) if dsg.rounding == "nearest" else 0),
        "s_cap": q.s_cap,
        "alpha_scale_bits": dsg.spec.bits + dsg.frac_bits,
        "alpha_last": len(dsg.alpha) - 1,
        "round_bit": dsg.frac_bits - 1,
        **paper.template_numbers(dsg.num_table, dsg.index_shift, q),
    }
