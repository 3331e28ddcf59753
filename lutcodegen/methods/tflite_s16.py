"""Method ``tflite`` with int16 input: bit-identical to TFLite Micro's int16 softmax.

TFLite's int16 softmax (``SoftmaxInt16`` in its reference kernels), per row of int16 logits ``x``:

1. ``max = max(x)``; for each ``diff = x_i - max`` in [-65535, 0]:
   ``scaled = MultiplyByQuantizedMultiplier(diff, input_multiplier, input_left_shift)``, which
   maps ``diff * input_scale * beta = -10`` to -65535; ``sym = clamp(scaled + 32767)`` to int16;
   ``e_i = LUTLookup(sym, exp_lut)`` in Q0.15.
2. ``sum = sum_i e_i`` in an int32 (Q16.15).
3. ``hpo = clz(sum)``; ``shifted = ((sum << (hpo - 1)) + 2^13) >> 14`` (sum - 1 in Q0.16 plus
   65536), recentred by -98304 and clamped to int16; ``r = LUTLookup(that,
   one_over_one_plus_x_lut)``.
4. ``out_i = clamp((e_i * r + 2^(30 - hpo)) >> (31 - hpo), 0, 32767)``.

``LUTLookup`` interpolates a 513-entry int16 table: index ``256 + (v >> 7)``, then
``base + ((slope * (v & 127) + 64) >> 7)``. TFLite Micro fills both tables at Prepare, in the
arena, with ``LUTPopulate`` in float32: ``exp`` on [-10, 0] and ``1 / (1 + x)`` on [0, 1]. Their
inputs do not depend on the model, so both tables are constants: this module computes them once,
in numpy float32, operation by operation as ``LUTPopulate`` does, and the C keeps them ``const``
(flash). ``LUTPopulate`` calls the C library's ``expf``, which differs between libraries, and
a compiler may fuse its multiply-adds; ``tables_are_platform_independent`` checks that neither an
``expf`` off by a whole ULP either way nor fused multiply-adds changes a single int16 entry, so
these tables are the ones TFLite Micro builds on any IEEE-754 target (and the tests compare them
with the interpreter's outputs).

The multiplier's arithmetic (gemmlowp's SaturatingRoundingDoublingHighMul, then
RoundingDivideByPOT) is, for a non-positive ``diff = -d``, one rounding of a 64-bit product:
``g(d) = (d * m * 2^ls + 2^30 - 1 + [rs > 0] 2^(30 + rs)) >> (31 + rs)``, ``scaled = -g(d)``
(ls, rs: the left and right parts of the signed shift; the two nested floors combine exactly).
The C evaluates that, the lookups and steps 2-4 in integers, and caches ``e_i`` in the output
buffer between the passes as TFLite does (which is what makes ``output == input`` work).

Where TFLite would be undefined: ``diff * 2^ls`` overflows int32 once ``ls >= 16`` (beta *
input_scale of about 5 or more per LSB); such specs are refused. The sum stays below 2^31 for rows
up to 65536 elements (each ``e_i <= 32767``), the longest row accepted.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..registry import TFLITE_S16_MAX_ROW_LIMIT
from ..spec import Spec, SpecError
from . import gemmlowp
from .tflite import params_source

#: LUTPopulate's table: 512 interpolation steps and one end point.
LUT_SIZE = 513
#: TFLite's ``range`` in InitializeLutForInt16: int16 max - int16 min.
_RANGE = 65535

f32 = np.float32


def _tflite_round(x: np.float32) -> np.float32:
    """``TfLiteRound`` on a float (``std::round``): nearest, ties away from zero."""
    return f32(math.copysign(math.floor(abs(float(x)) + 0.5), float(x)))


def _expf(x: np.float32) -> np.float32:
    """Correctly rounded float32 exp: float64 exp (error < 1 ULP of float64) rounded once."""
    return f32(math.exp(float(x)))


def lut_populate(
    input_scale: np.float32,
    input_zero_point: int,
    output_scale: np.float32,
    transform: Callable[[np.float32], np.float32],
    fused: bool = False,
) -> np.ndarray:
    """TFLite's ``LUTPopulateInt16<float>`` (output zero point 0), every operation in float32.

    ``fused`` evaluates ``a * b + c`` with one rounding, as a compiler that contracts them into
    fused multiply-adds would (e.g. for a Cortex-M4F); the tests check it changes no entry.
    """

    def mul_add(a: np.float32, b: np.float32, c: np.float32) -> np.float32:
        if fused:  # the float64 product of two floats is exact; one rounding to float32
            return f32(float(a) * float(b) + float(c))
        return f32(f32(a * b) + c)

    i16min, i16max = -32768, 32767
    input_min = f32(input_scale * f32(i16min - input_zero_point))
    input_max = f32(input_scale * f32(i16max - input_zero_point))
    output_min = f32(output_scale * f32(i16min))
    output_max = f32(output_scale * f32(i16max))
    nb_steps = 512
    step = f32(f32(input_max - input_min) / f32(nb_steps))
    half_step = f32(step / f32(2))
    scaling_inv = f32(f32(65536) / f32(output_max - output_min))
    lut = np.empty(LUT_SIZE, dtype=np.int16)
    for i in range(nb_steps):
        at = mul_add(f32(i), step, input_min)
        val = transform(at)
        val_mid = transform(f32(at + half_step))
        val_next = transform(mul_add(f32(i + 1), step, input_min))
        sample = _tflite_round(f32(val * scaling_inv))
        interp = _tflite_round(f32(mul_add(val_next, scaling_inv, sample) / f32(2)))
        mid = _tflite_round(f32(val_mid * scaling_inv))
        bias = _tflite_round(f32(f32(interp - mid) / f32(2)))
        lut[i] = int(min(max(float(f32(sample - bias)), i16min), i16max))
    last = _tflite_round(f32(transform(input_max) * scaling_inv))
    lut[nb_steps] = int(min(max(float(last), i16min), i16max))
    return lut


def _exp_lut_inputs() -> tuple[np.float32, int, np.float32]:
    return f32(f32(10.0) / f32(_RANGE)), 32767, f32(f32(2.0) / f32(_RANGE))


def _recip_lut_inputs() -> tuple[np.float32, int, np.float32]:
    return f32(f32(1.0) / f32(_RANGE)), -32768, f32(f32(2.0) / f32(_RANGE))


def _recip(v: np.float32) -> np.float32:
    return f32(f32(1.0) / f32(f32(1.0) + v))


def exp_lut(expf: Callable[[np.float32], np.float32] = _expf, fused: bool = False) -> np.ndarray:
    """TFLite's int16 exp table: exp on [-10, 0] in Q0.15, 513 entries."""
    scale, zero, out_scale = _exp_lut_inputs()
    return lut_populate(scale, zero, out_scale, expf, fused)


def one_over_one_plus_x_lut(fused: bool = False) -> np.ndarray:
    """TFLite's 1 / (1 + x) table on [0, 1] in Q0.15, 513 entries (IEEE operations only)."""
    scale, zero, out_scale = _recip_lut_inputs()
    return lut_populate(scale, zero, out_scale, _recip, fused)


def tables_are_platform_independent() -> bool:
    """Whether both tables stay the same under the ways a platform's LUTPopulate may differ.

    ``expf`` is the C library's: one that is off by a whole ULP, up or down, on every argument
    must give the same int16 entries; and so must a compiler that fuses multiply-adds.
    """
    exp_base, recip_base = exp_lut(), one_over_one_plus_x_lut()
    variants = [exp_lut(fused=True)]
    for direction in (np.inf, -np.inf):

        def sloppy(v: np.float32, direction: float = direction) -> np.float32:
            return f32(np.nextafter(_expf(v), f32(direction)))

        variants += [exp_lut(sloppy), exp_lut(sloppy, fused=True)]
    return all(np.array_equal(v, exp_base) for v in variants) and np.array_equal(
        one_over_one_plus_x_lut(fused=True), recip_base
    )


@dataclass(frozen=True)
class TfliteS16Design:
    """TFLite's int16 parameters and tables the C and the reference share for one spec."""

    spec: Spec
    input_multiplier: int  #: SoftmaxParams.input_multiplier (Q0.31)
    input_left_shift: int  #: SoftmaxParams.input_left_shift (signed: > 0 left, < 0 right)
    params_given: bool  #: True when the user supplied the two parameters
    exp_table: np.ndarray  #: exp_lut, 513 x int16
    recip_table: np.ndarray  #: one_over_one_plus_x_lut, 513 x int16

    @property
    def left_shift(self) -> int:
        return max(self.input_left_shift, 0)

    @property
    def right_shift(self) -> int:
        return max(-self.input_left_shift, 0)

    @property
    def diff_rounding(self) -> int:
        """K in g(d) = (d * m * 2^ls + K) >> (31 + rs): both roundings of the rescaling."""
        rs = self.right_shift
        return (1 << 30) - 1 + ((1 << (30 + rs)) if rs else 0)

    @property
    def table_bytes(self) -> int:
        return int(self.exp_table.nbytes + self.recip_table.nbytes)

    @property
    def effective_scale(self) -> float:
        """The real scale per input LSB the quantized multiplier stands for."""
        return self.input_multiplier * 2.0 ** (self.input_left_shift - 31) * 10.0 / _RANGE


def check_spec(spec: Spec) -> None:
    """Rules of ``tflite`` with int16 input that span options: the row limit, and TFLite's two
    int16 parameters (no diff_min), given together, with a shift TFLite's int32 rescaling of
    differences down to -65535 survives."""
    if spec.max_row > TFLITE_S16_MAX_ROW_LIMIT:
        raise SpecError(
            f"method tflite with --input-bits 16 accepts max_row up to "
            f"{TFLITE_S16_MAX_ROW_LIMIT}, got {spec.max_row!r}"
        )
    if spec.diff_min is not None:
        raise SpecError(
            "--diff-min does not apply to --input-bits 16 (TFLite's int16 softmax has no "
            "diff_min); give --input-multiplier and --input-left-shift"
        )
    multiplier, left_shift = spec.input_multiplier, spec.input_left_shift
    if multiplier is None and left_shift is None:
        return
    if multiplier is None or left_shift is None:
        raise SpecError("give input_multiplier and input_left_shift together")
    if left_shift > 15:
        raise SpecError(
            f"input_left_shift must be an integer from -31 to 15 for int16 input (TFLite "
            f"multiplies differences down to -65535 by 2^shift in int32), got {left_shift!r}"
        )


def softmax_params(input_scale: float, beta: float) -> tuple[int, int]:
    """(input_multiplier, input_left_shift) as TFLite Micro's Prepare computes them for int16.

    ``QuantizeMultiplier(double(scale) * double(beta) / (10.0 / 65535.0))`` with scale and beta
    read as float32 from the model: [-65535, 0] times the multiplier covers [-10, 0].
    """
    s32 = gemmlowp.as_float32("input_scale", input_scale)
    b32 = gemmlowp.as_float32("beta", beta)
    with np.errstate(over="ignore"):  # the overflow is the error below, not a warning
        product = float(np.float32(s32) * np.float32(b32))
    if not math.isfinite(product):
        raise ValueError(
            f"beta * input_scale overflows float32, as TFLite stores them; got beta = {beta!r} "
            f"and input_scale = {input_scale!r}"
        )
    real = s32 * b32 / (10.0 / 65535.0)
    return gemmlowp.quantize_multiplier(real)


def design(spec: Spec) -> TfliteS16Design:
    """TFLite's parameters (computed as TFLite does, or given) and its two constant tables."""
    if spec.input_multiplier is not None:
        multiplier, left_shift = spec.input_multiplier, spec.input_left_shift
        given = True
    else:
        try:
            multiplier, left_shift = softmax_params(spec.input_scale, spec.beta)
        except ValueError as exc:
            raise SpecError(f"TFLite cannot prepare this softmax: {exc}") from None
        given = False
    assert left_shift is not None
    if left_shift >= 16:
        raise SpecError(
            f"TFLite's int16 softmax multiplies differences down to -65535 by 2^"
            f"{left_shift} in int32, which overflows: beta * input_scale must stay below "
            f"about 5.0 per input LSB (2^15 * 10 / 65535), got {spec.scale!r}"
        )
    return TfliteS16Design(
        spec, int(multiplier), int(left_shift), given, _tables()[0], _tables()[1]
    )


_TABLES: list[np.ndarray] = []


def _tables() -> list[np.ndarray]:
    """The two constant tables, computed once per process."""
    if not _TABLES:
        _TABLES.extend([exp_lut(), one_over_one_plus_x_lut()])
    return _TABLES


def scaled_magnitude(dsg: TfliteS16Design, d: np.ndarray) -> np.ndarray:
    """g(d) = -MultiplyByQuantizedMultiplier(-d, m, shift), exact, for d = max - x >= 0."""
    # d * 2^ls * m <= 65535 * 2^15 * (2^31 - 1) and the rounding <= 2^61: below 2^63
    d = np.asarray(d, dtype=np.uint64) << np.uint64(dsg.left_shift)
    total = d * np.uint64(dsg.input_multiplier) + np.uint64(dsg.diff_rounding)
    return (total >> np.uint64(31 + dsg.right_shift)).astype(np.int64)


def mbqm_literal(x: int, multiplier: int, shift: int) -> int:
    """TFLite's double-rounding MultiplyByQuantizedMultiplier, step by step (for the tests)."""
    left = shift if shift > 0 else 0
    right = -shift if shift < 0 else 0
    return gemmlowp.rounding_divide_by_pot(
        gemmlowp.srdhm(gemmlowp.checked(x * (1 << left)), multiplier), right
    )


def lut_lookup(value: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """TFLite's int16 ``LUTLookup``: interpolation between two of 513 entries."""
    v = np.asarray(value, dtype=np.int64)
    table = lut.astype(np.int64)
    index = 256 + (v >> 7)
    offset = v & 0x7F
    base = table[index]
    slope = table[index + 1] - base
    result: np.ndarray = (base + ((slope * offset + 64) >> 7)).astype(np.int64)
    return result


def exps(dsg: TfliteS16Design, rows: np.ndarray) -> np.ndarray:
    """TFLite's Q0.15 exp of each element's difference from its row maximum."""
    d = rows.max(axis=1, keepdims=True) - rows
    sym = np.maximum(32767 - scaled_magnitude(dsg, d), -32768)
    return lut_lookup(sym, dsg.exp_table)


def reference(dsg: TfliteS16Design, x: np.ndarray) -> np.ndarray:
    """Bit-exact model of the generated C, which equals TFLite Micro: int16 rows in, out."""
    spec = dsg.spec
    x = np.asarray(x)
    if x.shape[-1] < 1 or x.shape[-1] > spec.max_row:
        raise ValueError(f"row length {x.shape[-1]} outside 1..{spec.max_row}")
    rows = x.reshape(-1, x.shape[-1]).astype(np.int64)
    e = exps(dsg, rows)
    out = np.empty(rows.shape, dtype=np.int64)
    for r, total in enumerate(e.sum(axis=1).tolist()):
        if not 1 <= total < 1 << 31:
            raise AssertionError("TFLite's int32 sum is positive and cannot overflow here")
        hpo = 32 - total.bit_length()  # CountLeadingZeros
        shifted = ((total << (hpo - 1)) + (1 << 13)) >> 14
        sym = min(max(shifted - 98304, -32768), 32767)
        recip = int(lut_lookup(np.array([sym]), dsg.recip_table)[0])
        right = 31 - hpo
        out[r] = np.clip((e[r] * recip + (1 << (right - 1))) >> right, 0, 32767)
    return out.reshape(x.shape)


def describe(dsg: TfliteS16Design) -> list[str]:
    """Human-readable facts about the design, for the banner and for stderr (< 100 columns)."""
    spec = dsg.spec
    source = params_source(spec, dsg.params_given)
    return [
        f"TFLite SoftmaxParams: input_multiplier {dsg.input_multiplier}, input_left_shift "
        f"{dsg.input_left_shift},",
        f"  {source}",
        f"tables: exp_lut and one_over_one_plus_x_lut, 2 x {LUT_SIZE} x int16_t = "
        f"{dsg.table_bytes} bytes, const",
        "  (TFLite Micro builds the same two tables in the arena at Prepare, per operator)",
        "outputs bit-identical to TFLite Micro's softmax, int16 in, int16 out",
    ]


def template_context(dsg: TfliteS16Design) -> dict[str, object]:
    """Numbers the ``tflite_s16`` template prints (templates do no arithmetic)."""
    P = dsg.spec.prefix.upper()
    slopes_exp = np.diff(dsg.exp_table.astype(np.int64))
    return {
        "scale_text": repr(dsg.effective_scale),
        "accuracy_note": [
            "Bit-exact with TensorFlow Lite Micro's reference int16 softmax for",
            f"input_multiplier {dsg.input_multiplier}, input_left_shift {dsg.input_left_shift}.",
        ],
        "extra_declarations": [
            "/** TFLite softmax parameters this kernel was generated for (SoftmaxParams). */",
            f"#define {P}_INPUT_MULTIPLIER {dsg.input_multiplier}",
            f"#define {P}_INPUT_LEFT_SHIFT ({dsg.input_left_shift})",
        ],
        "diff_multiplier": f"{dsg.input_multiplier}u",
        "diff_shift": 31 + dsg.right_shift,
        "diff_rounding": f"0x{dsg.diff_rounding:x}u",
        "exp_slopes_nonnegative": bool((slopes_exp >= 0).all()),
        "exp_max_slope": int(slopes_exp.max()),
    }
