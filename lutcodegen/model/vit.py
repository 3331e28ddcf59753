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
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: LayerNorm epsilon (PyTorch's default); the integer LayerNorm folds it in as a constant.
LN_EPS = 1e-5

#: Real value of one input LSB: pixels are integers 0..16 and the float model sees pixel / 16.
PIXEL_SCALE = 1.0 / 16.0


class WeightsError(ValueError):
    """A weights file, or a shape, the model cannot be built from.

    A ``ValueError`` so that callers treating bad input as a usage error (exit status 2) need
    no special case; the message names the array or setting, what was expected and what was
    found, because a shape mismatch is otherwise only discovered deep inside a matrix product
    (or, worse, silently broadcast).
    """


#: Inclusive ranges of the shape settings. They keep every size, index and scratch offset of
#: the generated C far inside ``int32_t``, the attention accumulators inside the bounds
#: ``quantize`` proves (``head_dim 128^2`` and ``tokens 256 128`` below 2^31) and the integer
#: LayerNorm's sum of squares (``dim^3 255^2``) inside 64 bits; the shapes of real models on a
#: microcontroller are far smaller.
CONFIG_RANGES: dict[str, tuple[int, int]] = {
    "image_size": (1, 1024),
    "patch": (1, 1024),
    "dim": (1, 4096),
    "heads": (1, 4096),
    "layers": (1, 256),
    "mlp_dim": (1, 16384),
    "classes": (1, 4096),
}

#: Longest token sequence (patches plus the class token): the softmax's row length and the side
#: of the ``tokens x tokens`` score matrix the C keeps in scratch.
MAX_TOKENS = 4096


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
        """Each setting in its range and the divisibility the model needs, else WeightsError."""
        for name, (lo, hi) in CONFIG_RANGES.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise WeightsError(f"config_{name} must be an integer in {lo}..{hi}, got {value!r}")
        if self.image_size % self.patch:
            raise WeightsError(
                f"config_patch {self.patch} does not divide config_image_size {self.image_size}"
            )
        if self.dim % self.heads:
            raise WeightsError(f"config_heads {self.heads} does not divide config_dim {self.dim}")
        if self.tokens > MAX_TOKENS:
            raise WeightsError(
                f"{self.tokens} tokens ((image_size / patch)^2 + 1) exceed the limit {MAX_TOKENS}"
            )


_CONFIG_KEYS = ("image_size", "patch", "dim", "heads", "layers", "mlp_dim", "classes")


def parameter_shapes(config: ViTConfig) -> dict[str, tuple[int, ...]]:
    """Every float parameter array of a weights file and its exact shape, in file order.

    This is the layout docs/model.md documents; loading checks files against it and the
    synthetic-weights helper writes it, so the three cannot drift apart.
    """
    c = config
    shapes: dict[str, tuple[int, ...]] = {
        "cls": (c.dim,),
        "pos": (c.tokens, c.dim),
        "patch_w": (c.dim, c.patch_size),
        "patch_b": (c.dim,),
    }
    for i in range(c.layers):
        for name, shape in (
            ("ln1_g", (c.dim,)),
            ("ln1_b", (c.dim,)),
            ("qkv_w", (3 * c.dim, c.dim)),
            ("qkv_b", (3 * c.dim,)),
            ("out_w", (c.dim, c.dim)),
            ("out_b", (c.dim,)),
            ("ln2_g", (c.dim,)),
            ("ln2_b", (c.dim,)),
            ("fc1_w", (c.mlp_dim, c.dim)),
            ("fc1_b", (c.mlp_dim,)),
            ("fc2_w", (c.dim, c.mlp_dim)),
            ("fc2_b", (c.dim,)),
        ):
            shapes[f"l{i}_{name}"] = shape
    shapes.update(
        {
            "lnf_g": (c.dim,),
            "lnf_b": (c.dim,),
            "head_w": (c.classes, c.dim),
            "head_b": (c.classes,),
        }
    )
    return shapes


#: Per-layer calibration points, in the order ``forward`` reaches them.
_LAYER_POINTS = (
    "ln1", "q", "k", "v", "scores", "ctx", "attn_out", "mid", "ln2", "fc1", "gelu", "fc2", "out",
)  # fmt: skip


def calibration_points(config: ViTConfig) -> list[str]:
    """Names of the tensors ``forward`` reports to its probe, in order; the order of the
    weights file's ``calibration_peaks``."""
    points = ["embed"]
    for i in range(config.layers):
        points += [f"l{i}.{name}" for name in _LAYER_POINTS]
    return points + ["lnf", "logits"]


#: Name of the optional array of calibration peaks (max |activation| per calibration point).
CALIBRATION_KEY = "calibration_peaks"


@dataclass(frozen=True)
class WeightsFile:
    """What a weights file holds: the shape, the float parameters (float64 for the numpy
    passes) and, when present, the calibration peaks (float64, ``calibration_points`` order)."""

    config: ViTConfig
    params: dict[str, np.ndarray]
    peaks: np.ndarray | None = None


def save_weights(
    path: Path,
    config: ViTConfig,
    params: dict[str, np.ndarray],
    peaks: np.ndarray | None = None,
) -> None:
    """Write float32 parameters, the shape and optionally the calibration peaks as one
    ``.npz`` (small and diff-stable). The peaks are float64: quantization reads them as they
    were measured, so a stored calibration gives the same integers as a fresh one."""
    config.validate()
    # Any: numpy types **kwds of savez_compressed as its bool option, not as arrays.
    arrays: dict[str, Any] = {
        f"config_{k}": np.array(getattr(config, k), dtype=np.int64) for k in _CONFIG_KEYS
    }
    arrays.update({k: np.asarray(v, dtype=np.float32) for k, v in params.items()})
    if peaks is not None:
        arrays[CALIBRATION_KEY] = np.asarray(peaks, dtype=np.float64)
    _check_arrays(config, arrays, str(path))
    np.savez_compressed(path, **arrays)


def _shape_text(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def _check_arrays(config: ViTConfig, arrays: dict[str, np.ndarray], where: str) -> None:
    """Presence, dtype, exact shape and finiteness of every array, against ``config``."""
    expected = parameter_shapes(config)
    allowed = set(expected) | {f"config_{k}" for k in _CONFIG_KEYS} | {CALIBRATION_KEY}
    unknown = sorted(set(arrays) - allowed)
    if unknown:
        raise WeightsError(
            f"{where}: unexpected array {unknown[0]!r} (not part of a model with {config.layers} "
            "layer(s); the layout is in docs/model.md)"
        )
    checks = list(expected.items())
    if CALIBRATION_KEY in arrays:
        checks.append((CALIBRATION_KEY, (len(calibration_points(config)),)))
    for name, shape in checks:
        if name not in arrays:
            raise WeightsError(f"{where}: array {name!r} is missing (expected shape {shape})")
        value = arrays[name]
        kinds = ("float64",) if name == CALIBRATION_KEY else ("float32", "float64")
        if value.dtype.name not in kinds:
            raise WeightsError(
                f"{where}: array {name!r} has dtype {value.dtype}, expected {' or '.join(kinds)}"
            )
        if value.shape != shape:
            raise WeightsError(
                f"{where}: array {name!r} has shape {_shape_text(value.shape)}, expected "
                f"{_shape_text(shape)}"
            )
        if not np.all(np.isfinite(value)):
            raise WeightsError(f"{where}: array {name!r} has non-finite values")
    if CALIBRATION_KEY in arrays and np.any(arrays[CALIBRATION_KEY] < 0):
        raise WeightsError(f"{where}: array {CALIBRATION_KEY!r} has negative peaks")


def _config_value(data: Any, key: str, where: str) -> int:
    name = f"config_{key}"
    if name not in data.files:
        raise WeightsError(f"{where}: array {name!r} is missing (expected an integer scalar)")
    value = data[name]
    if value.shape != () or value.dtype.kind not in "iu":
        raise WeightsError(
            f"{where}: array {name!r} must be an integer scalar, found dtype {value.dtype} "
            f"shape {_shape_text(value.shape)}"
        )
    return int(value)


def read_weights(path: Path) -> WeightsFile:
    """Load and check a weights file completely: every inconsistency is a ``WeightsError``."""
    where = str(path)
    if not Path(path).is_file():
        raise FileNotFoundError(f"weights file {where} not found")
    if not zipfile.is_zipfile(path):
        raise WeightsError(f"{where}: not an .npz weights file (a zip archive of .npy arrays)")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise WeightsError(f"{where}: not a readable .npz weights file ({exc})") from exc
    with data:
        config = ViTConfig(**{k: _config_value(data, k, where) for k in _CONFIG_KEYS})
        try:
            config.validate()
        except WeightsError as exc:
            raise WeightsError(f"{where}: {exc}") from None
        try:
            arrays = {k: data[k] for k in data.files}
        except (ValueError, OSError, zipfile.BadZipFile) as exc:  # not .npy, or pickled objects
            raise WeightsError(f"{where}: {exc}") from exc
    _check_arrays(config, arrays, where)
    params = {k: arrays[k].astype(np.float64) for k in parameter_shapes(config)}
    peaks = arrays.get(CALIBRATION_KEY)
    return WeightsFile(config, params, None if peaks is None else peaks.astype(np.float64))


def load_weights(path: Path) -> tuple[ViTConfig, dict[str, np.ndarray]]:
    """The shape and float64 parameters of a checked weights file (see ``read_weights``)."""
    weights = read_weights(path)
    return weights.config, weights.params


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
    """Float logits (n, classes) for pixel images (n, image_size, image_size), values 0..16."""

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
