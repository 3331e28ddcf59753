"""Post-training quantization of the float ViT into an integer-only model.

Scheme (all symmetric, zero point 0, except the softmax output which is the kernel's own
1/256 scale with zero point -128):

- weights: int8 per output channel, scale ``max|w_c| / 127``; biases int32 at the
  accumulator's scale ``s_in * s_w[c]``;
- activations: int8 per tensor, scale ``max|a| / 127`` over the calibration images (training
  split only), measured at every point where the integer model stores an int8 tensor (the
  peaks are measured once and stored in the weights file, see ``activation_peaks``);
- the linear layers and the attention products rescale as TFLite does (its int8 convention):
  an int32 multiplier from TFLite's ``QuantizeMultiplier`` and an exponent, applied by doubling
  high multiply and a rounding shift (``fixedpoint.requantize``), per output channel, so that
  CMSIS-NN's kernels compute the same bits; the residual adds and LayerNorm, which TFLite has no
  int8 kernel for, keep one 64-bit product and one rounding shift. The C needs no float and no
  divide;
- the position embedding is folded into the patch embedding's bias, the class token into a
  constant int8 row; ``1/sqrt(head_dim)`` into the score rescaling; GELU into a 256-entry table.

The result, ``QuantModel``, holds only integer arrays and integer constants (plus the float
scales, for documentation). The numpy reference (``intref``) and the C generator (``codegen``)
both read it, so exactness tests compare algorithms, never two quantizers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..methods import Design, design_for
from ..methods.gemmlowp import quantize_multiplier
from ..spec import Spec
from . import vit

#: int8 symmetric range used for every activation and weight.
QMAX = 127

#: LayerNorm: the reciprocal of the integer standard deviation carries this many bits, and the
#: normalized value ``(x - mean) / std / sqrt(D)`` (within [-1, 1]) is kept with ``LN_UNIT_BITS``
#: fractional bits.
LN_RECIP_BITS = 30
LN_UNIT_BITS = 14


class QuantizationError(vit.WeightsError):
    """The weights' values (not their shapes) put a constant outside the range the integer
    kernels are proven for; a ``WeightsError`` because the file is what has to change."""


@dataclass(frozen=True)
class Requant:
    """Per-channel rescaling ``acc -> saturate(MultiplyByQuantizedMultiplier(acc, mult, shift))``,
    TFLite's (see ``fixedpoint.requantize``)."""

    mult: np.ndarray  #: int32, each in [2^30, 2^31)
    shift: np.ndarray  #: int32 exponent, -31..30: the real factor is mult * 2^(shift - 31)

    @classmethod
    def from_reals(cls, reals: np.ndarray, acc_bound: np.ndarray | int) -> Requant:
        """TFLite's ``QuantizeMultiplier`` of each factor; ``acc_bound`` (per channel, or one for
        all) bounds |acc|, which proves that ``acc * 2^shift`` of a factor above 1 fits int32."""
        pairs = [_multiplier(float(r)) for r in np.asarray(reals, dtype=np.float64)]
        rq = cls(
            np.array([m for m, _ in pairs], dtype=np.int32),
            np.array([s for _, s in pairs], dtype=np.int32),
        )
        bound = np.broadcast_to(np.asarray(acc_bound, dtype=np.int64), rq.shift.shape)
        if np.any(bound << np.maximum(rq.shift.astype(np.int64), 0) >= 1 << 31):
            raise QuantizationError("a requantization factor above 1 could overflow int32")
        return rq


def _multiplier(real: float) -> tuple[int, int]:
    """TFLite's ``(multiplier, exponent)`` of ``real``; tiny factors, which TFLite turns into a
    zero multiplier, and factors of 2^31 or more are errors of the weights file."""
    if not (real > 0 and math.isfinite(real)):
        raise QuantizationError(f"requantization factor {real} is not positive and finite")
    mult, shift = quantize_multiplier(real)
    if mult == 0 or shift > 30:
        raise QuantizationError(f"requantization factor {real:.3g} outside TFLite's range")
    return mult, shift


@dataclass(frozen=True)
class QLinear:
    """``out[r, c] = requant(sum_k w[c, k] in[r, k] + bias[r or 0, c])``."""

    weight: np.ndarray  #: int8 (out_dim, in_dim)
    bias: np.ndarray  #: int32 (bias_rows, out_dim); bias_rows is 1, or one row per input row
    rq: Requant

    @property
    def out_dim(self) -> int:
        return int(self.weight.shape[0])

    @property
    def in_dim(self) -> int:
        return int(self.weight.shape[1])


@dataclass(frozen=True)
class QLayerNorm:
    """Integer LayerNorm over rows of ``dim`` int8 values (see ``intref.layer_norm``)."""

    eps: int  #: epsilon in the units of sum((D x - sum x)^2), at least 1
    gain: np.ndarray  #: int32 (dim,), |.| < 2^15: sqrt(D) gamma / s_out * 2^(shift - LN_UNIT_BITS)
    bias: np.ndarray  #: int32 (dim,), |.| <= 2^29: beta / s_out * 2^shift
    shift: int  #: 1..30


@dataclass(frozen=True)
class QAdd:
    """Residual add ``saturate(rshift_round(a * mult_a + b * mult_b, shift))``."""

    mult_a: int  #: 0..2^22
    mult_b: int  #: 0..2^22
    shift: int  #: 1..30


@dataclass(frozen=True)
class QLayer:
    """One encoder layer."""

    ln1: QLayerNorm
    qkv: QLinear  #: output channels: Q (dim), K (dim), V (dim); scales folded per channel
    score: Requant  #: one channel: q.k -> softmax input LSB
    context: Requant  #: one channel: sum (p + 128) v -> context LSB
    out: QLinear
    add1: QAdd
    ln2: QLayerNorm
    fc1: QLinear
    gelu: np.ndarray  #: int8 (256,): gelu table indexed by fc1 output + 128
    fc2: QLinear
    add2: QAdd


@dataclass(frozen=True)
class QuantModel:
    """Everything the integer model computes with; produced by ``quantize``."""

    config: vit.ViTConfig
    softmax: Design  #: the softmax kernel (any method) with the model's score scale
    patch: QLinear  #: bias has one row per patch: position embedding folded in
    cls_row: np.ndarray  #: int8 (dim,): class token + its position embedding
    layers: tuple[QLayer, ...]
    lnf: QLayerNorm
    head: QLinear
    scales: dict[str, float] = field(default_factory=dict)  #: real value of one LSB, per tensor


def _weight(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 per-output-channel weights and their scales."""
    scale = np.maximum(np.abs(w).max(axis=1), 1e-12) / QMAX
    return np.clip(np.round(w / scale[:, None]), -QMAX, QMAX).astype(np.int8), scale


def _acc_bound(q: np.ndarray, bias: np.ndarray, in_max: int) -> np.ndarray:
    """Per output channel, a bound on |acc| for any input in [-in_max, in_max]; the int32
    accumulator cannot overflow."""
    bound: np.ndarray = np.abs(q.astype(np.int64)).sum(axis=1) * in_max + np.abs(bias).max(axis=0)
    if bound.max() >= 1 << 31:
        raise QuantizationError("int32 accumulator could overflow; weights or biases too large")
    return bound


def _linear(
    w: np.ndarray, b: np.ndarray, s_in: float, s_out: np.ndarray | float, in_max: int = 128
) -> QLinear:
    """Quantize ``y = x w^T + b`` with input scale ``s_in`` and (per-channel) output scales.

    ``b`` may be 2-D (one bias row per input row), as for the patch embedding.
    """
    q, s_w = _weight(w)
    acc_scale = s_in * s_w
    with np.errstate(over="ignore"):  # an infinite quotient is refused just below
        real_bias = np.round(np.atleast_2d(b) / acc_scale)
    # Checked before the integer cast, which is undefined beyond int64 (numpy gives INT64_MIN,
    # whose absolute value is negative and would pass the bound).
    if not np.all(np.abs(real_bias) < 1 << 31):
        raise QuantizationError(
            "int32 accumulator could overflow: a bias is 2^31 or more accumulator units (the "
            "bias too large, or the weights of its channel too small or zero beside it)"
        )
    bias = real_bias.astype(np.int64)
    bound = _acc_bound(q, bias, in_max)
    rq = Requant.from_reals(acc_scale / np.broadcast_to(s_out, acc_scale.shape), bound)
    return QLinear(q, bias.astype(np.int32), rq)


#: The residual add and LayerNorm kernels work in int32: every value they shift is below 2^30 in
#: magnitude and every shift is 1..30 (see ``_add`` and ``_layer_norm``).
MAX_SHIFT_32 = 30

#: Residual add multipliers are at most 2^22: |a mult_a + b mult_b| <= 2 * 128 * 2^22 = 2^30.
ADD_MULT_BITS = 22


def _add(s_a: float, s_b: float, s_out: float) -> QAdd:
    """Residual add: both multipliers at most 2^22 with one common shift of at most 30, so the
    C needs no 64-bit arithmetic: |a * mult_a + b * mult_b| <= 2^30. 22 bits of multiplier
    leave an error below 2^-13 LSB of the int8 output."""
    reals = (s_a / s_out, s_b / s_out)
    shift = min(MAX_SHIFT_32, ADD_MULT_BITS - math.ceil(math.log2(max(reals))))
    if shift < 1:
        raise QuantizationError(
            f"residual add rescales by {max(reals):.3g}, above 2^{ADD_MULT_BITS - 1}"
        )
    mult_a, mult_b = (int(round(r * (1 << shift))) for r in reals)
    return QAdd(mult_a, mult_b, shift)


def _layer_norm(gamma: np.ndarray, beta: np.ndarray, s_in: float, s_out: float) -> QLayerNorm:
    """LayerNorm constants for the int32 kernel: the largest shift (at most 30) that keeps
    |gain| < 2^15 and |bias| <= 2^29, so that |unit * gain + bias| < 2^30 for
    |unit| <= 2^14 + 1. 15 bits of gain are far finer than the int8 output."""
    dim = len(gamma)
    eps = max(1, int(round(vit.LN_EPS * dim**3 / s_in**2)))
    real_gain = math.sqrt(dim) * np.asarray(gamma, dtype=np.float64) / s_out
    real_bias = np.asarray(beta, dtype=np.float64) / s_out
    for shift in range(MAX_SHIFT_32, 0, -1):
        gain = np.round(real_gain * 2.0 ** (shift - LN_UNIT_BITS))
        bias = np.round(real_bias * 2.0**shift)
        if np.abs(gain).max() < 1 << 15 and np.abs(bias).max() <= 1 << 29:
            break
    else:
        raise QuantizationError("LayerNorm gain or offset too large for the int32 kernel")
    # The sum of squares n (n sum x^2 - (sum x)^2) + eps <= 2^50 + eps must stay in isqrt's
    # domain (below 2^62).
    if eps >= 1 << 61:
        raise QuantizationError("LayerNorm epsilon outside the kernel's proven range")
    return QLayerNorm(eps, gain.astype(np.int32), bias.astype(np.int32), shift)


def _gelu_table(s_in: float, s_out: float) -> np.ndarray:
    x = np.arange(-128, 128, dtype=np.float64) * s_in
    return np.clip(np.round(vit.gelu(x) / s_out), -128, 127).astype(np.int8)


def activation_peaks(
    config: vit.ViTConfig, params: dict[str, np.ndarray], images: np.ndarray
) -> np.ndarray:
    """``max|a|`` over ``images`` (training images only) at every calibration point, float64 in
    ``vit.calibration_points`` order: the statistic a weights file stores, so that emitting C
    needs neither the calibration images nor the library that ships them."""
    peaks: dict[str, float] = {}

    def probe(name: str, value: np.ndarray) -> None:
        peaks[name] = max(peaks.get(name, 0.0), float(np.abs(value).max()))

    vit.forward(config, params, images, probe)
    names = vit.calibration_points(config)
    if list(peaks) != names:  # the stored order is documented; forward must keep to it
        raise RuntimeError(f"forward reports {list(peaks)}, expected {names}")
    return np.array([peaks[name] for name in names], dtype=np.float64)


def calibrate(config: vit.ViTConfig, peaks: np.ndarray) -> dict[str, float]:
    """Per-tensor scales ``max|a| / 127`` from the peaks of ``activation_peaks``."""
    names = vit.calibration_points(config)
    if np.shape(peaks) != (len(names),):
        raise vit.WeightsError(
            f"calibration peaks have shape {np.shape(peaks)}, expected ({len(names)},)"
        )
    return {name: max(float(peak), 1e-6) / QMAX for name, peak in zip(names, peaks)}


def softmax_input_scale(scales: dict[str, float], layers: int) -> float:
    """One softmax input scale for all layers: the power of two covering every score seen.

    A power of two keeps the generated softmax's banner readable and lets any method (some
    prefer power-of-two scales) accept it; one scale means one softmax kernel in flash.
    """
    peak = max(scales[f"l{i}.scores"] for i in range(layers))  # already max|scores| / 127
    return 2.0 ** math.ceil(math.log2(peak))


def quantize(
    config: vit.ViTConfig,
    params: dict[str, np.ndarray],
    peaks: np.ndarray,
    softmax_method: str = "lut",
    prefix: str = "dvit",
) -> QuantModel:
    """The integer model: weights quantized, activations at the scales of the calibration
    ``peaks`` (``activation_peaks`` of training images)."""
    c = config
    s = calibrate(c, peaks)
    s["image"] = vit.PIXEL_SCALE
    s["softmax_in"] = softmax_input_scale(s, c.layers)
    s["softmax_out"] = 1.0 / 256.0
    spec = Spec(
        bits=8,
        input_scale=s["softmax_in"],
        max_row=c.tokens,
        prefix=f"{prefix}_attn",
        method=softmax_method,
    )
    softmax = design_for(spec)

    patch = _linear(
        params["patch_w"], params["patch_b"] + params["pos"][1:], s["image"], s["embed"]
    )
    cls_row = np.clip(np.round((params["cls"] + params["pos"][0]) / s["embed"]), -QMAX, QMAX)
    layers = []
    prev = "embed"
    for i in range(c.layers):
        p = {k[len(f"l{i}_") :]: v for k, v in params.items() if k.startswith(f"l{i}_")}
        n = f"l{i}."
        ln1 = _layer_norm(p["ln1_g"], p["ln1_b"], s[prev], s[n + "ln1"])
        qkv_out = np.repeat([s[n + "q"], s[n + "k"], s[n + "v"]], c.dim)
        qkv = _linear(p["qkv_w"], p["qkv_b"], s[n + "ln1"], qkv_out)
        # int32 accumulators of the attention: |q.k| <= hd 128^2, |sum (p+128) v| <= T 256 128.
        score_bound, context_bound = c.head_dim * 128 * 128, c.tokens * 256 * 128
        if max(score_bound, context_bound) >= 1 << 31:
            raise QuantizationError("attention accumulators could overflow int32")
        score = Requant.from_reals(
            np.array([s[n + "q"] * s[n + "k"] / math.sqrt(c.head_dim) / s["softmax_in"]]),
            score_bound,
        )
        context = Requant.from_reals(np.array([s[n + "v"] / 256.0 / s[n + "ctx"]]), context_bound)
        out = _linear(p["out_w"], p["out_b"], s[n + "ctx"], s[n + "attn_out"])
        add1 = _add(s[prev], s[n + "attn_out"], s[n + "mid"])
        ln2 = _layer_norm(p["ln2_g"], p["ln2_b"], s[n + "mid"], s[n + "ln2"])
        fc1 = _linear(p["fc1_w"], p["fc1_b"], s[n + "ln2"], s[n + "fc1"])
        gelu = _gelu_table(s[n + "fc1"], s[n + "gelu"])
        fc2 = _linear(p["fc2_w"], p["fc2_b"], s[n + "gelu"], s[n + "fc2"])
        add2 = _add(s[n + "mid"], s[n + "fc2"], s[n + "out"])
        layers.append(QLayer(ln1, qkv, score, context, out, add1, ln2, fc1, gelu, fc2, add2))
        prev = n + "out"
    lnf = _layer_norm(params["lnf_g"], params["lnf_b"], s[prev], s["lnf"])
    head = _linear(params["head_w"], params["head_b"], s["lnf"], s["logits"])
    return QuantModel(c, softmax, patch, cls_row.astype(np.int8), tuple(layers), lnf, head, s)
