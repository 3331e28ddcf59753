"""Train small Vision Transformers on the 8x8 digits and convert them to integer ``.tflite`` files.

The files written next to this script are real models made by the TensorFlow Lite converter, so
that the project's TFLite Micro path is checked on softmax operators as the converter really
emits them (scales, non-zero zero points, shapes ``[1, heads, T, T]``) rather than on invented
parameters. They are kept in the repository so that no test ever has to train or convert.

Written:

- ``vit17_int8.tflite``: 8x8 digits, 2x2 patches, 16 patch tokens + 1 class token, full int8;
- ``vit65_int8.tflite``: digits upscaled to 16x16 (nearest, x2), 64 patches + 1 class token,
  full int8;
- ``vit17_16x8.tflite``: the 17-token model in 16x8 mode (int16 activations, int8 weights);
- ``models.json``: shapes, quantization, accuracies (TFLite Micro), softmax operators, sha256.

TensorFlow is not a dependency of the project: make a venv outside the repository and run this
script from the repository root::

    python3 -m venv ../train-venv
    ../train-venv/bin/pip install tensorflow-cpu scikit-learn tflite-micro
    ../train-venv/bin/python examples/tflite_micro/models/train.py

Seeds are fixed (``tf.keras.utils.set_random_seed``, numpy) and TensorFlow ops are made
deterministic, so a re-run on the same machine and versions writes the same files.

Design choices, each for the converter or for TFLite Micro:

- LayerNorm is written out as ``(x - mean) * rsqrt(var + eps) * gamma + beta``: Keras'
  ``LayerNormalization`` leaves a float NEG in int8 and breaks the 16x8 conversion.
- The MLP uses ReLU: ``gelu`` becomes a GELU builtin that TFLite Micro lacks.
- The class token is a learned weight concatenated in front of the patch tokens (no GATHER).
- Attention is Keras ``MultiHeadAttention``, whose softmax becomes one SOFTMAX operator per layer.
- Conversion goes through ``TFLiteConverter.from_keras_model`` on a copy with a static batch of
  one: concrete functions keep the weights as variables and break int8 calibration.
- Quantized accuracy is measured with the TFLite Micro interpreter, the reference the project
  uses; ``tf.lite.Interpreter`` with its default XNNPACK delegate rounds differently.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from tensorflow.lite.python import schema_py_generated as schema  # noqa: E402
from tflite_micro.python.tflite_micro import runtime  # noqa: E402

keras = tf.keras
ops = keras.ops

HERE = Path(__file__).resolve().parent
SEED = 0
LN_EPS = 1e-5
ARENA_SIZE = 256 * 1024
PIXEL_MAX = 16.0


@dataclass(frozen=True)
class ViTConfig:
    """Shape of one model; ``upscale`` is the nearest-neighbour factor applied to each digit."""

    name: str
    upscale: int = 1
    patch: int = 2
    dim: int = 32
    heads: int = 2
    layers: int = 2
    mlp_dim: int = 64
    classes: int = 10
    epochs: int = 60
    batch: int = 32
    lr: float = 2e-3

    @property
    def side(self) -> int:
        """Side of the image the model sees, in pixels."""
        return 8 * self.upscale

    @property
    def tokens(self) -> int:
        """Patch tokens plus the class token: the softmax depth."""
        return (self.side // self.patch) ** 2 + 1


VIT17 = ViTConfig(name="vit17")
VIT65 = ViTConfig(name="vit65", upscale=2, epochs=40)


# ----------------------------------------------------------------------------- data


def load_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The project's split of the digits: 80/20, stratified, ``random_state=0``, sorted indices.

    Returns train images, train labels, test images, test labels; images are the raw pixel
    values 0..16 (int8, shape ``[n, 8, 8]``).
    """
    data = load_digits()
    images = data.images.astype(np.int8)
    labels = data.target.astype(np.int64)
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=0.2, stratify=labels, random_state=0
    )
    train_idx.sort()
    test_idx.sort()
    return images[train_idx], labels[train_idx], images[test_idx], labels[test_idx]


def preprocess(pixels: np.ndarray, upscale: int) -> np.ndarray:
    """Raw pixels 0..16 ``[n, 8, 8]`` -> float model input ``[n, side, side, 1]`` in [0, 1].

    Upscaling is nearest-neighbour (``np.kron`` with a block of ones) and comes before the
    division, so both models see exactly ``pixel / 16``.
    """
    x = pixels.astype(np.float32)
    if upscale > 1:
        x = np.kron(x, np.ones((1, upscale, upscale), dtype=np.float32))
    return (x / PIXEL_MAX)[..., None]


# ----------------------------------------------------------------------------- model


class LayerNorm(keras.layers.Layer):
    """LayerNorm over the last axis, spelled out so that it converts to integer MEAN/SUB/MUL/RSQRT.

    Keras' own ``LayerNormalization`` is lowered with a NEG that stays float in int8 and that
    the 16x8 mode rejects.
    """

    def __init__(self, eps: float = LN_EPS, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.eps = eps

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        """Create gamma and beta over the feature axis."""
        dim = input_shape[-1]
        self.gamma = self.add_weight(shape=(dim,), initializer="ones", name="gamma")
        self.beta = self.add_weight(shape=(dim,), initializer="zeros", name="beta")

    def call(self, x: Any) -> Any:
        """Normalize with the biased variance, as PyTorch and Keras do."""
        mean = ops.mean(x, axis=-1, keepdims=True)
        d = x - mean
        var = ops.mean(d * d, axis=-1, keepdims=True)
        return d * ops.rsqrt(var + self.eps) * self.gamma + self.beta


class ClassTokenAndPosition(keras.layers.Layer):
    """Prepend a learned class token and add learned position embeddings.

    The class token is a weight broadcast over the batch and concatenated; with the static batch
    of one used for conversion the broadcast folds into a constant, leaving one CONCATENATION
    and one ADD (no GATHER or TILE).
    """

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        """Create the class token and one position vector per token (patches + class)."""
        tokens, dim = input_shape[1], input_shape[2]
        self.cls = self.add_weight(shape=(1, 1, dim), initializer="zeros", name="cls")
        self.pos = self.add_weight(
            shape=(1, tokens + 1, dim),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
            name="pos",
        )

    def call(self, x: Any) -> Any:
        """``[b, T-1, d]`` patch embeddings -> ``[b, T, d]`` tokens."""
        cls = ops.broadcast_to(self.cls, (ops.shape(x)[0], 1, ops.shape(x)[2]))
        return ops.concatenate([cls, x], axis=1) + self.pos


def build_vit(c: ViTConfig, batch_size: int | None = None) -> keras.Model:
    """Pre-norm ViT: patch conv, class token, ``layers`` x (MHA, ReLU MLP), LayerNorm, head.

    ``batch_size=1`` gives the static-shape copy that the converter needs; layer creation order
    is the same either way, so ``set_weights(get_weights())`` carries the trained weights over.
    """
    inp = keras.Input(shape=(c.side, c.side, 1), batch_size=batch_size, name="image")
    x = keras.layers.Conv2D(c.dim, c.patch, strides=c.patch, name="patch")(inp)
    x = keras.layers.Reshape(((c.side // c.patch) ** 2, c.dim), name="tokens")(x)
    x = ClassTokenAndPosition(name="cls_pos")(x)
    for i in range(c.layers):
        h = LayerNorm(name=f"l{i}_ln1")(x)
        h = keras.layers.MultiHeadAttention(
            num_heads=c.heads, key_dim=c.dim // c.heads, name=f"l{i}_mha"
        )(h, h)
        x = keras.layers.Add(name=f"l{i}_res1")([x, h])
        h = LayerNorm(name=f"l{i}_ln2")(x)
        h = keras.layers.Dense(c.mlp_dim, activation="relu", name=f"l{i}_fc1")(h)
        h = keras.layers.Dense(c.dim, name=f"l{i}_fc2")(h)
        x = keras.layers.Add(name=f"l{i}_res2")([x, h])
    x = LayerNorm(name="lnf")(x[:, 0])
    out = keras.layers.Dense(c.classes, name="head")(x)
    return keras.Model(inp, out, name=c.name)


def train(c: ViTConfig, x: np.ndarray, y: np.ndarray) -> keras.Model:
    """Adam with cosine decay on the training split only; logits out, so a from-logits loss."""
    keras.utils.set_random_seed(SEED)
    model = build_vit(c)
    steps = c.epochs * int(np.ceil(len(x) / c.batch))
    schedule = keras.optimizers.schedules.CosineDecay(c.lr, decay_steps=steps)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x, y, batch_size=c.batch, epochs=c.epochs, shuffle=True, verbose=0)
    return model


def float_accuracy(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of the float Keras model."""
    logits = model.predict(x, batch_size=128, verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) == y))


# ----------------------------------------------------------------------------- conversion


def convert(
    model: keras.Model, c: ViTConfig, calib: np.ndarray, mode: str
) -> tuple[bytes, dict[str, str]]:
    """Convert a trained model to ``int8`` or ``16x8`` with a static batch of one.

    Returns the flatbuffer and the input/output types actually requested. For 16x8 the int16
    interface is tried first and int8-interface/float fallbacks are not taken silently: the
    caller records what came out.
    """
    static = build_vit(c, batch_size=1)
    static.set_weights(model.get_weights())

    def representative() -> Iterator[list[np.ndarray]]:
        for img in calib:
            yield [img[None].astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(static)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    if mode == "int8":
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        io_type = tf.int8
    elif mode == "16x8":
        conv.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
        io_type = tf.int16
    else:
        raise ValueError(mode)
    conv.inference_input_type = io_type
    conv.inference_output_type = io_type
    requested = {"inference_input_type": io_type.name, "inference_output_type": io_type.name}
    return conv.convert(), requested


# ----------------------------------------------------------------------------- read back


_TYPE_NAMES = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
_OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


def _quant(t: schema.TensorT) -> dict[str, Any]:
    """Scale and zero point of a per-tensor quantized tensor (None where not quantized)."""
    q = t.quantization
    if q is None or q.scale is None or len(q.scale) == 0:
        return {"scale": None, "zero_point": None}
    return {"scale": float(q.scale[0]), "zero_point": int(q.zeroPoint[0])}


def inspect_model(buf: bytes) -> dict[str, Any]:
    """Read the operator set and every SOFTMAX (shapes, quantization, beta) from the flatbuffer.

    This reads what the converter wrote, not what was asked for, so ``models.json`` can be
    trusted by tests that check the generated kernels against these exact parameters.
    """
    m = schema.ModelT.InitFromObj(schema.Model.GetRootAs(buf, 0))
    sub = m.subgraphs[0]
    names: list[str] = []
    for oc in m.operatorCodes:
        code = max(int(oc.builtinCode), int(oc.deprecatedBuiltinCode))
        names.append(_OP_NAMES[code])
    used = sorted({names[op.opcodeIndex] for op in sub.operators})
    softmaxes = []
    for idx, op in enumerate(sub.operators):
        if names[op.opcodeIndex] != "SOFTMAX":
            continue
        ti, to = sub.tensors[op.inputs[0]], sub.tensors[op.outputs[0]]
        qi, qo = _quant(ti), _quant(to)
        softmaxes.append(
            {
                "operator_index": idx,
                "input_shape": [int(s) for s in ti.shape],
                "input_type": _TYPE_NAMES[ti.type],
                "input_scale": qi["scale"],
                "input_zero_point": qi["zero_point"],
                "beta": float(op.builtinOptions.beta),
                "output_type": _TYPE_NAMES[to.type],
                "output_scale": qo["scale"],
                "output_zero_point": qo["zero_point"],
            }
        )
    return {"operators": used, "softmax": softmaxes}


# ----------------------------------------------------------------------------- TFLite Micro


def tflm_accuracy(buf: bytes, x: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, Any]]:
    """Top-1 accuracy in the TFLite Micro interpreter, quantizing ``x`` with the input params.

    Also returns the input/output details (dtype, shape, scale, zero point) as seen by TFLM.
    """
    interp = runtime.Interpreter.from_bytes(buf, arena_size=ARENA_SIZE)
    det_in = interp.get_input_details(0)
    det_out = interp.get_output_details(0)
    scale = float(det_in["quantization_parameters"]["scales"][0])
    zp = int(det_in["quantization_parameters"]["zero_points"][0])
    dtype = np.dtype(det_in["dtype"])
    info = np.iinfo(dtype)
    q = np.clip(np.round(x / scale) + zp, info.min, info.max).astype(dtype)
    correct = 0
    for img, label in zip(q, y):
        interp.set_input(img[None], 0)
        interp.invoke()
        correct += int(np.argmax(interp.get_output(0)) == label)
    oq = det_out["quantization_parameters"]
    details = {
        "input_dtype": dtype.name,
        "input_shape": [int(s) for s in det_in["shape"]],
        "input_scale": scale,
        "input_zero_point": zp,
        "output_dtype": np.dtype(det_out["dtype"]).name,
        "output_shape": [int(s) for s in det_out["shape"]],
        "output_scale": float(oq["scales"][0]),
        "output_zero_point": int(oq["zero_points"][0]),
    }
    return correct / len(y), details


# ----------------------------------------------------------------------------- main


def record(
    file: str,
    c: ViTConfig,
    mode: str,
    buf: bytes,
    requested: dict[str, str],
    acc_float: float,
    x_test: np.ndarray,
    y_test: np.ndarray,
) -> dict[str, Any]:
    """Write one ``.tflite`` and return its ``models.json`` entry."""
    (HERE / file).write_bytes(buf)
    acc_q, io = tflm_accuracy(buf, x_test, y_test)
    print(f"{file}: {len(buf)} bytes, float {acc_float:.4f}, TFLM {mode} {acc_q:.4f}", flush=True)
    entry: dict[str, Any] = {
        "file": file,
        "mode": mode,
        "tokens": c.tokens,
        "image_side": c.side,
        "upscale": c.upscale,
        "config": {k: v for k, v in asdict(c).items() if k != "name"},
        **requested,
        **io,
        "float_test_accuracy": acc_float,
        "quantized_test_accuracy_tflm": acc_q,
        "test_images": int(len(y_test)),
        "bytes": len(buf),
        "sha256": hashlib.sha256(buf).hexdigest(),
    }
    entry.update(inspect_model(buf))
    return entry


def main() -> None:
    """Train both models, convert three files, measure them in TFLM, write ``models.json``."""
    start = time.time()
    np.random.seed(SEED)
    tf.config.experimental.enable_op_determinism()
    x_tr_px, y_tr, x_te_px, y_te = load_split()
    entries = []
    jobs: list[tuple[ViTConfig, list[tuple[str, str]]]] = [
        (VIT17, [("int8", "vit17_int8.tflite"), ("16x8", "vit17_16x8.tflite")]),
        (VIT65, [("int8", "vit65_int8.tflite")]),
    ]
    for c, outputs in jobs:
        x_tr, x_te = preprocess(x_tr_px, c.upscale), preprocess(x_te_px, c.upscale)
        t0 = time.time()
        model = train(c, x_tr, y_tr)
        acc_float = float_accuracy(model, x_te, y_te)
        print(f"{c.name}: trained in {time.time() - t0:.1f} s, float {acc_float:.4f}", flush=True)
        for mode, file in outputs:
            buf, requested = convert(model, c, x_tr, mode)
            entries.append(record(file, c, mode, buf, requested, acc_float, x_te, y_te))
    meta = {
        "generator": "examples/tflite_micro/models/train.py",
        "versions": {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "numpy": np.__version__,
        },
        "dataset": {
            "source": "sklearn.datasets.load_digits (8x8, pixel values 0..16)",
            "split": "train_test_split(arange(1797), test_size=0.2, stratify=labels, "
            "random_state=0), both index arrays sorted",
            "train_images": int(len(y_tr)),
            "test_images": int(len(y_te)),
            "representative_dataset": "all training images, in split order",
        },
        "preprocessing": {
            "float_input": "x = pixel / 16.0 (in [0, 1]); for upscale 2 each pixel is first "
            "repeated into a 2x2 block (np.kron with ones((2, 2)), nearest neighbour); "
            "layout [1, side, side, 1] (NHWC)",
            "quantized_input": "q = clip(round(x / input_scale) + input_zero_point, "
            "dtype min, dtype max), with round half to even (np.round)",
        },
        "models": entries,
    }
    (HERE / "models.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"total {time.time() - start:.1f} s", flush=True)


if __name__ == "__main__":
    main()
