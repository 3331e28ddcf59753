"""Numpy reference of the integer model: defines every bit the generated C computes.

Each kernel here has one C function of the same name in ``templates/model/attention_kernels.c.j2``
(``<prefix>_linear_s8``, ``<prefix>_layer_norm_s8`` ...); the host tests compare each pair and
the whole model bit for bit. Kernels work on a leading batch axis so that a whole test split
runs in one call; the C handles one image at a time.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .. import methods
from .fixedpoint import isqrt, reciprocal_round, requantize, rshift_round, saturate
from .quantize import LN_RECIP_BITS, LN_UNIT_BITS, QAdd, QLayerNorm, QLinear, QuantModel, Requant

#: Softmax zero point: probability = (p + 128) / 256.
SOFTMAX_ZERO = 128


def linear(x: np.ndarray, q: QLinear) -> np.ndarray:
    """int8 (..., rows, in) -> int8 (..., rows, out); bias rows broadcast over the batch."""
    acc = np.asarray(x, dtype=np.int64) @ q.weight.astype(np.int64).T + q.bias.astype(np.int64)
    return requantize(acc, q.rq.mult.astype(np.int64), q.rq.shift.astype(np.int64))


def layer_norm(x: np.ndarray, q: QLayerNorm) -> np.ndarray:
    """Integer LayerNorm along the last axis.

    ``c = D x - sum(x)`` (exact D-times-centred values), ``r = isqrt(sum c^2 + eps)``,
    ``u = rshift_round(c * round(2^30 / r), 30 - 14)`` (c / r in Q14, within [-1, 1]),
    ``y = saturate(rshift_round(u * gain + bias, shift))``. No division by a variable: the
    reciprocal is a shift-and-subtract loop in C, the square root a bit-by-bit loop.
    """
    x = np.asarray(x, dtype=np.int64)
    dim = x.shape[-1]
    c = dim * x - x.sum(axis=-1, keepdims=True)
    r = isqrt((c * c).sum(axis=-1, keepdims=True) + q.eps)
    inv = reciprocal_round(r, LN_RECIP_BITS)
    u = rshift_round(c * inv, LN_RECIP_BITS - LN_UNIT_BITS)
    return saturate(rshift_round(u * q.gain.astype(np.int64) + q.bias, q.shift))


def add(a: np.ndarray, b: np.ndarray, q: QAdd) -> np.ndarray:
    """Residual add of two int8 tensors with different scales."""
    total = np.asarray(a, dtype=np.int64) * q.mult_a + np.asarray(b, dtype=np.int64) * q.mult_b
    return saturate(rshift_round(total, q.shift))


def lookup(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    """int8 activation through a 256-entry table indexed by ``x + 128``."""
    return table.astype(np.int64)[np.asarray(x, dtype=np.int64) + 128]


Softmax = Callable[[np.ndarray], np.ndarray]


def attention(
    qkv: np.ndarray, heads: int, score: Requant, context: Requant, softmax: Softmax
) -> np.ndarray:
    """Multi-head self-attention core on int8 (..., T, 3D) Q|K|V rows -> int8 (..., T, D).

    Per head: ``s = requant(q . k)`` at the softmax input scale; ``p = softmax(s)`` (int8, zero
    point -128); ``ctx = requant(sum_j (p_j + 128) v_j)``.
    """
    qkv = np.asarray(qkv, dtype=np.int64)
    dim = qkv.shape[-1] // 3
    hd = dim // heads
    out = np.empty(qkv.shape[:-1] + (dim,), dtype=np.int64)
    for h in range(heads):
        cols = slice(h * hd, (h + 1) * hd)
        q = qkv[..., cols]
        k = qkv[..., dim : 2 * dim][..., cols]
        v = qkv[..., 2 * dim :][..., cols]
        s = requantize(q @ np.swapaxes(k, -1, -2), score.mult[0], score.shift[0])
        p = softmax(s) + SOFTMAX_ZERO
        out[..., cols] = requantize(p @ v, context.mult[0], context.shift[0])
    return out


def patch_gather(images: np.ndarray, image_size: int, patch: int) -> np.ndarray:
    """(n, H*W or H, W) pixels -> (n, patches, patch^2), the order the C reads them in."""
    n = images.shape[0]
    g = image_size // patch
    x = np.asarray(images, dtype=np.int64).reshape(n, g, patch, g, patch).transpose(0, 1, 3, 2, 4)
    result: np.ndarray = x.reshape(n, g * g, patch * patch)
    return result


Probe = Callable[[str, np.ndarray], None]


def run(qm: QuantModel, images: np.ndarray, probe: Probe | None = None) -> np.ndarray:
    """int8 logits (n, classes) of the integer model for int8 images (n, H, W), values 0..16."""

    def see(name: str, value: np.ndarray) -> np.ndarray:
        if probe is not None:
            probe(name, value)
        return value

    c = qm.config
    images = np.asarray(images)
    n = images.shape[0]

    def softmax(s: np.ndarray) -> np.ndarray:
        # requantize saturates to int8, so the narrowing keeps every value; the reference, like
        # the C, takes int8 rows only.
        return methods.reference(qm.softmax, s.astype(np.int8))

    emb = linear(patch_gather(images, c.image_size, c.patch), qm.patch)
    cls = np.broadcast_to(qm.cls_row.astype(np.int64), (n, 1, c.dim))
    x = see("embed", np.concatenate([cls, emb], axis=1))
    for i, layer in enumerate(qm.layers):
        a = see(f"l{i}.ln1", layer_norm(x, layer.ln1))
        qkv = see(f"l{i}.qkv", linear(a, layer.qkv))
        ctx = see(f"l{i}.ctx", attention(qkv, c.heads, layer.score, layer.context, softmax))
        o = see(f"l{i}.attn_out", linear(ctx, layer.out))
        x = see(f"l{i}.mid", add(x, o, layer.add1))
        m = see(f"l{i}.ln2", layer_norm(x, layer.ln2))
        h = see(f"l{i}.gelu", lookup(linear(m, layer.fc1), layer.gelu))
        f = see(f"l{i}.fc2", linear(h, layer.fc2))
        x = see(f"l{i}.out", add(x, f, layer.add2))
    z = see("lnf", layer_norm(x[:, :1], qm.lnf))
    return see("logits", linear(z, qm.head)[:, 0])


def predict(logits: np.ndarray) -> np.ndarray:
    """Class of each row: the first index of the largest logit (the C breaks ties the same)."""
    result: np.ndarray = np.argmax(logits, axis=-1)
    return result
