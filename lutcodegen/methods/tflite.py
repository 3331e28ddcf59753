"""Method ``tflite``: bit-identical to TFLite Micro's (and CMSIS-NN's) int8 softmax.

TFLite's int8 softmax, per row of int8 logits ``x``:

1. ``max = max(x)``; for each ``diff = x_i - max`` in [-255, 0] with ``diff >= diff_min``:
   ``e_i = exp_on_negative_values(SRDHM(diff << left_shift, multiplier))`` in Q0.31
   (gemmlowp's fixed-point exp); skipped elements have ``e_i = 0``.
2. ``sum = sum_i RoundingDivideByPOT(e_i, 12)`` in Q12.19 (int32).
3. ``(scale, nbou) = GetReciprocal(sum)``: ``1/sum = scale * 2^-nbou`` with ``scale`` in Q0.31
   from three Newton-Raphson steps (gemmlowp ``one_over_one_plus_x_for_x_in_0_1``).
4. ``out_i = clamp(RoundingDivideByPOT(SRDHM(scale, e_i), nbou + 31 - B) - 2^(B-1))``, B = 8 or 16.

``e_i`` depends only on ``d = max - x_i`` in [0, 255], so the generator evaluates step 1 for every
``d`` now, into a table of int32 values. Steps 2-4 are replicated exactly in the C (integer
multiplies and shifts only; the reciprocal needs no divide). With ``--table-layout full`` (the
default) the table has all 256 entries, zeros included, so the lookups need no bounds check;
with ``compact`` entries past the last non-zero value are not stored (they are 0: skipped by
``diff_min``, or an exp that rounds to 0) and the lookups check the index.

Where TFLite fails: for int8 output, once ``sum >= 2^28`` (e.g. 512 or more equal logits) the
shift ``nbou + 23`` reaches 32 and TFLite Micro aborts (``TFLITE_CHECK(exponent <= 31)``), while
CMSIS-NN shifts an int32 by 32 or more (undefined behaviour). Carried out exactly, step 4 with a
shift of 32 or more rounds ``SRDHM(scale, e_i) < 2^31`` to 0: every output is -128. The generated C
returns exactly that. It is within 1 LSB of correct rounding: ``sum >= 2^28`` means the exps add
up to at least 512 times the largest, so every probability is at most 1/512 (up to the fixed-point
error of the exps, ~1e-9 relative) and ``256 p <= 0.5``: the correctly rounded output is -128, or
-127 where ``256 p`` rounds up at 0.5. For int16 output the shift is at most 27 and TFLite's own
formula is used for every row; the sum is kept in 32 bits unsigned (TFLite casts its int32 sum
the same way before its reciprocal), which cannot wrap for rows up to 8191 elements.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..registry import TFLITE_MAX_ROW_LIMIT, SpecError
from ..spec import Spec
from . import gemmlowp

#: For int8 output TFLite's final shift is nbou + 23 <= 31 only while the Q12.19 sum is < 2^28.
INT8_SUM_LIMIT = 1 << 28


@dataclass(frozen=True)
class TfliteDesign:
    """TFLite's parameters and the exp table the C and the reference share for one spec."""

    spec: Spec
    input_multiplier: int  #: TFLite's input_multiplier (Q0.31 mantissa of beta*scale*2^26)
    input_left_shift: int  #: TFLite's input_left_shift
    diff_min: int  #: TFLite's diff_min: differences below it are skipped
    params_given: bool  #: True when the user supplied the three parameters
    exp_table: np.ndarray  #: int32 Q0.31 exp for d = max - x = 0 .. len-1 (0 beyond)

    @property
    def table_bytes(self) -> int:
        return int(self.exp_table.nbytes)

    @property
    def exponent_offset(self) -> int:
        """TFLite's final shift is num_bits_over_unit + this (31 - output bits)."""
        return 31 - self.spec.bits

    @property
    def effective_scale(self) -> float:
        """The real scale the quantized multiplier stands for: multiplier * 2^(shift-31-26)."""
        return self.input_multiplier * 2.0 ** (self.input_left_shift - 31 - 26)


def design(spec: Spec) -> TfliteDesign:
    """TFLite's parameters (computed as TFLite does, or given) and the exp table they imply."""
    if (
        spec.input_multiplier is not None
        and spec.input_left_shift is not None
        and spec.diff_min is not None
    ):  # Spec validation gives all three or none
        multiplier, left_shift, diff_min = (
            spec.input_multiplier,
            spec.input_left_shift,
            spec.diff_min,
        )
        given = True
    else:
        try:
            multiplier, left_shift, diff_min = gemmlowp.softmax_params(spec.input_scale, spec.beta)
        except ValueError as exc:
            raise SpecError(f"TFLite cannot prepare this softmax: {exc}") from None
        given = False
    values = [gemmlowp.exp_of_difference(d, multiplier, left_shift, diff_min) for d in range(256)]
    length = max((d + 1 for d, v in enumerate(values) if v), default=1)
    if spec.table_layout == "full":
        length = 256  # a full table needs no bounds check in the two per-element loops
    table = np.array(values[:length], dtype=np.int32)
    return TfliteDesign(spec, multiplier, left_shift, diff_min, given, table)


def _exps(dsg: TfliteDesign, rows: np.ndarray) -> np.ndarray:
    table = np.append(dsg.exp_table.astype(np.int64), np.int64(0))
    d = rows.max(axis=1, keepdims=True) - rows
    result: np.ndarray = table[np.minimum(d, len(table) - 1)]
    return result


def row_sums(dsg: TfliteDesign, x: np.ndarray) -> np.ndarray:
    """TFLite's Q12.19 sum of exps per row (exact integers; 2^19 stands for 1.0)."""
    rows = np.asarray(x).reshape(-1, np.asarray(x).shape[-1]).astype(np.int64)
    e = _exps(dsg, rows)
    # RoundingDivideByPOT(e, 12) for e >= 0, spelled as TFLite's remainder/threshold rule.
    terms = (e >> 12) + ((e & 4095) > 2047)
    result: np.ndarray = terms.sum(axis=1)
    return result


def reference(dsg: TfliteDesign, x: np.ndarray) -> np.ndarray:
    """Bit-exact model of the generated C (= TFLite Micro wherever TFLite Micro is defined).

    Follows TFLite's steps literally: SRDHM, then RoundingDivideByPOT by nbou + 31 - B, then the
    zero point and the clamp. For int8 rows with sum >= 2^28 the same formula is evaluated in
    exact arithmetic (shift >= 32), which is the defined result the C returns.
    """
    spec = dsg.spec
    x = np.asarray(x)
    if x.shape[-1] < 1 or x.shape[-1] > spec.max_row:
        raise ValueError(f"row length {x.shape[-1]} outside 1..{spec.max_row}")
    rows = x.reshape(-1, x.shape[-1]).astype(np.int64)
    e = _exps(dsg, rows)
    sums = row_sums(dsg, rows)
    lo, hi = -(1 << (spec.bits - 1)), (1 << (spec.bits - 1)) - 1
    out = np.empty(rows.shape, dtype=np.int64)
    for r, total in enumerate(sums.tolist()):
        scale, nbou = gemmlowp.reciprocal(int(total))
        exponent = nbou + dsg.exponent_offset
        if exponent < 0:
            raise AssertionError("TFLite's shift is never negative here")  # nbou >= 0
        v = (scale * e[r] + (1 << 30)) >> 31  # SRDHM(scale, e) for scale, e >= 0
        mask = (1 << exponent) - 1
        unsat = (v >> exponent) + ((v & mask) > (mask >> 1))
        out[r] = np.clip(unsat + lo, lo, hi)
    return out.reshape(x.shape)


def template_context(dsg: TfliteDesign) -> dict[str, object]:
    """Keys the ``tflite`` template and the shared declarations need, on top of the common ones."""
    spec = dsg.spec
    P = spec.prefix.upper()
    kernel = "int8 softmax" if spec.bits == 8 else "int8-to-int16 softmax"
    note = [
        f"Bit-exact with TensorFlow Lite Micro's reference {kernel} for",
        f"input_multiplier {dsg.input_multiplier}, input_left_shift {dsg.input_left_shift}, "
        f"diff_min {dsg.diff_min},",
        "wherever it is defined.",
    ]
    if spec.bits == 8:
        note += [
            "Rows whose Q12.19 sum of exps reaches 2^28 (e.g. 512+ equal logits) make",
            "TFLite Micro abort; here they give -128 everywhere, TFLite's formula evaluated",
            "exactly, within 1 LSB of the correctly rounded softmax.",
        ]
    # int8: rows reaching the normal path have sum < 2^28, so headroom >= 4 and k <= 31.
    shift_max = 31 if spec.bits == 8 else dsg.exponent_offset + 12
    return {
        "scale_text": repr(dsg.effective_scale),
        "accuracy_note": note,
        "extra_declarations": [
            "/** TFLite softmax parameters this kernel was generated for (SoftmaxParams). */",
            f"#define {P}_INPUT_MULTIPLIER {dsg.input_multiplier}",
            f"#define {P}_INPUT_LEFT_SHIFT {dsg.input_left_shift}",
            f"#define {P}_DIFF_MIN ({dsg.diff_min})",
        ],
        "exponent_offset": dsg.exponent_offset,
        "shift_max": shift_max,
        "round_high_bits": 30 + shift_max,
        "int8_sum_limit_hex": f"0x{INT8_SUM_LIMIT:08x}u",
        "exp_last": len(dsg.exp_table) - 1,
    }


def params_source(spec: Spec, given: bool) -> str:
    """Where a TFLite design's SoftmaxParams came from, for its description (int8 and int16)."""
    if given:
        return "given as options (--input-scale and --beta are not used)"
    return (
        f"computed as TFLite does from beta {spec.beta!r} and input_scale "
        f"{spec.input_scale!r} (as float32)"
    )


def describe(dsg: TfliteDesign) -> list[str]:
    """Human-readable facts about the design, for the banner and for stderr (< 100 columns)."""
    spec = dsg.spec
    source = params_source(spec, dsg.params_given)
    out = "int8" if spec.bits == 8 else "int16"
    lines = [
        f"TFLite SoftmaxParams: input_multiplier {dsg.input_multiplier}, input_left_shift "
        f"{dsg.input_left_shift}, diff_min {dsg.diff_min},",
        f"  {source}",
        f"exp table: {len(dsg.exp_table)} x uint32_t = {dsg.table_bytes} bytes of gemmlowp "
        "exp_on_negative_values, Q0.31",
        f"outputs bit-identical to TFLite Micro's softmax, int8 in, {out} out",
    ]
    if spec.bits == 8:
        lines.append(
            "rows whose sum of exps reaches 2^28 (TFLite Micro aborts): all -128, within 1 LSB"
        )
    return lines


def check_spec(spec: Spec) -> None:
    """Rules of method ``tflite`` that span options: TFLite's output formats, its row limit and
    the raw parameters, which come all three or none and must not overflow TFLite's rescaling.
    Each raw parameter's own range is checked by its registry entry before this runs."""
    raw = (spec.input_multiplier, spec.input_left_shift, spec.diff_min)
    if spec.bits not in (8, 16):
        raise SpecError(
            f"method tflite supports bits 8 (int8 output) and 16 (int16 output) only, "
            f"got {spec.bits!r}"
        )
    if spec.max_row > TFLITE_MAX_ROW_LIMIT:
        raise SpecError(
            f"method tflite accepts max_row up to {TFLITE_MAX_ROW_LIMIT}, got {spec.max_row!r}"
        )
    if all(v is None for v in raw):
        return
    if any(v is None for v in raw):
        raise SpecError("give input_multiplier, input_left_shift and diff_min together")
    from ..registry import OPTION_BY_NAME

    for name in ("input_scale", "beta"):
        if getattr(spec, name) != OPTION_BY_NAME[name].default:
            # The raw parameters replace the scale and beta; taking both would silently ignore one.
            raise SpecError(
                f"{name} does not apply when input_multiplier, input_left_shift and diff_min are "
                f"given (they already include it), got {name} = {getattr(spec, name)!r}"
            )
    left_shift, diff_min = spec.input_left_shift, spec.diff_min
    assert left_shift is not None and diff_min is not None
    if spec.input_multiplier == 0:
        raise SpecError("input_multiplier must be an integer from 1 to 2^31-1, got 0")
    if left_shift < 0:
        raise SpecError(f"input_left_shift must be an integer from 0 to 31, got {left_shift!r}")
    # TFLite computes diff * (1 << left_shift) in int32 for every diff >= diff_min (diff >= -255).
    largest = min(255, -diff_min)
    if largest and (left_shift > 30 or largest << left_shift > 1 << 31):
        raise SpecError(
            f"diff_min {diff_min} with input_left_shift {left_shift} overflows TFLite's int32 "
            f"rescaling (|diff| * 2^left_shift must stay <= 2^31 for diff >= diff_min)"
        )
