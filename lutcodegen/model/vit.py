"""The float Vision Transformer in numpy: configuration, weights file and forward pass.

Training uses PyTorch (an optional extra); everything after training (calibration, float
accuracy, the demo) runs this numpy twin instead, so that nothing but numpy is needed to use the
shipped weights. ``examples/digits_vit/train.py`` checks that the two forward passes agree.

The model is a pre-norm encoder: patch embedding plus position embedding, a class token, per
layer ``x += Attn(LN1(x))`` and ``x += FC2(GELU(FC1(LN2(x))))``, then a final LayerNorm and a
linear classifier on the class token. GELU is the tanh form, so the numpy twin needs no erf.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: LayerNorm epsilon (PyTorch's default); the integer LayerNorm folds it in as a constant.
LN_EPS = 1e-5

#: Real value of one input LSB: pixels are integers 0..16 and the float model sees pixel / 16.
PIXEL_SCALE = 1.0 / 16.0


@dataclass(frozen=True)
class ViTConfig:
    """Shape of the model; all of it is stored in the weights file."""

    image_size: int = 8
    patch: int = 2
    dim: int = 32
    heads: int = 2
    layers: int = 2
    mlp_dim: int = 64
    classes: int = 10

    @property
    def patches(self) -> int:
        return (self.image_size // self.patch) ** 2

    @property
    def tokens(self) -> int:
        """Patches plus the class token (token 0)."""
        return self.patches + 1

    @property
    def patch_size(self) -> int:
        return self.patch * self.patch

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads

    def validate(self) -> None:
        if self.image_size % self.patch or self.dim % self.heads:
            raise ValueError(f"inconsistent model shape: {self}")


_CONFIG_KEYS = ("image_size", "patch", "dim", "heads", "layers", "mlp_dim", "classes")


def save_weights(path: Path, config: ViTConfig, params: dict[str, np.ndarray]) -> None:
    """Write float32 parameters and the shape as one ``.npz`` (small and diff-stable)."""
    # Any: numpy types **kwds of savez_compressed as its bool option, not as arrays.
    arrays: dict[str, Any] = {
        f"config_{k}": np.array(getattr(config, k), dtype=np.int64) for k in _CONFIG_KEYS
    }
    arrays.update({k: np.asarray(v, dtype=np.float32) for k, v in params.items()})
    np.savez_compressed(path, **arrays)


def load_weights(path: Path) -> tuple[ViTConfig, dict[str, np.ndarray]]:
    """Inverse of ``save_weights``; parameters come back as float64 for the numpy passes."""
    with np.load(path) as data:
        config = ViTConfig(**{k: int(data[f"config_{k}"]) for k in _CONFIG_KEYS})
        params = {k: data[k].astype(np.float64) for k in data.files if not k.startswith("config_")}
    config.validate()
    return config, params


def patchify(images: np.ndarray, config: ViTConfig) -> np.ndarray:
    """(n, H, W) -> (n, patches, patch*patch): patches row-major, pixels row-major inside.

    The C kernel gathers the same order straight from the image, so this is the contract.
    """
    n = images.shape[0]
    g, p = config.image_size // config.patch, config.patch
    x = images.reshape(n, g, p, g, p).transpose(0, 1, 3, 2, 4)
    result: np.ndarray = x.reshape(n, g * g, p * p)
    return result


def gelu(x: np.ndarray) -> np.ndarray:
    """GELU, tanh form (PyTorch ``approximate='tanh'``)."""
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    result: np.ndarray = (x - mean) / np.sqrt(var + LN_EPS) * gamma + beta
    return result


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    result: np.ndarray = e / e.sum(axis=-1, keepdims=True)
    return result


#: Called with (name, value) at every point the integer model quantizes; used for calibration.
Probe = Callable[[str, np.ndarray], None]


def forward(
    config: ViTConfig,
    params: dict[str, np.ndarray],
    images: np.ndarray,
    probe: Probe | None = None,
) -> np.ndarray:
    """Float logits (n, classes) for pixel images (n, 8, 8) with values 0..16."""

    def see(name: str, value: np.ndarray) -> np.ndarray:
        if probe is not None:
            probe(name, value)
        return value

    c = config
    n = images.shape[0]
    patches = patchify(np.asarray(images, dtype=np.float64) * PIXEL_SCALE, c)
    emb = patches @ params["patch_w"].T + params["patch_b"] + params["pos"][1:]
    cls = np.broadcast_to(params["cls"] + params["pos"][0], (n, 1, c.dim))
    x = see("embed", np.concatenate([cls, emb], axis=1))
    for i in range(c.layers):
        p = {k[len(f"l{i}_") :]: v for k, v in params.items() if k.startswith(f"l{i}_")}
        a = see(f"l{i}.ln1", layer_norm(x, p["ln1_g"], p["ln1_b"]))
        qkv = a @ p["qkv_w"].T + p["qkv_b"]
        q, k, v = (qkv[..., j * c.dim : (j + 1) * c.dim] for j in range(3))
        see(f"l{i}.q", q)
        see(f"l{i}.k", k)
        see(f"l{i}.v", v)
        split = (n, c.tokens, c.heads, c.head_dim)
        qh, kh, vh = (t.reshape(split).transpose(0, 2, 1, 3) for t in (q, k, v))
        scores = see(f"l{i}.scores", qh @ kh.transpose(0, 1, 3, 2) / math.sqrt(c.head_dim))
        ctx = softmax(scores) @ vh
        ctx = see(f"l{i}.ctx", ctx.transpose(0, 2, 1, 3).reshape(n, c.tokens, c.dim))
        o = see(f"l{i}.attn_out", ctx @ p["out_w"].T + p["out_b"])
        x = see(f"l{i}.mid", x + o)
        m = see(f"l{i}.ln2", layer_norm(x, p["ln2_g"], p["ln2_b"]))
        h = see(f"l{i}.fc1", m @ p["fc1_w"].T + p["fc1_b"])
        h = see(f"l{i}.gelu", gelu(h))
        f = see(f"l{i}.fc2", h @ p["fc2_w"].T + p["fc2_b"])
        x = see(f"l{i}.out", x + f)
    z = see("lnf", layer_norm(x[:, 0], params["lnf_g"], params["lnf_b"]))
    return see("logits", z @ params["head_w"].T + params["head_b"])
