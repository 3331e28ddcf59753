"""The generated model C equals the integer numpy reference bit for bit: kernel by kernel, on
random and extreme inputs, and for the whole model on every digits image.

Every softmax method the generator knows is tested, so new methods are covered when they land.
"""

from __future__ import annotations

import numpy as np
import pytest
from exactness import assert_equal
from modelbuild import CompiledModel, build_model

from lutcodegen import METHODS
from lutcodegen.model import digits, example, intref
from lutcodegen.model.quantize import QAdd, QLayerNorm, QLinear, Requant

pytest.importorskip("sklearn", reason="the digits data set comes with scikit-learn")


#: Every method with the host's 64-bit products, and the default one with the Cortex-M0+ form
#: (64-bit products from 32-bit multiplies), which the host otherwise never runs.
BUILDS = [*((m, ()) for m in METHODS), ("lut", ("DVIT_MUL32=1",))]


@pytest.fixture(
    scope="module", params=BUILDS, ids=[m + "".join("-" + d for d in ds) for m, ds in BUILDS]
)
def model(request, tmp_path_factory) -> CompiledModel:
    method, defines = request.param
    qm = example.quantized(method)
    root = tmp_path_factory.mktemp(f"model_{method}")
    return build_model(qm, example.PREFIX, root, defines)


def _int8(rng: np.random.Generator, *shape: int) -> np.ndarray:
    """Uniform int8 plus rows pinned at -128 and 127 (saturation and extreme products)."""
    x = rng.integers(-128, 128, size=shape)
    x[..., 0, :] = -128
    if shape[-2] > 1:
        x[..., 1, :] = 127
    return x


def _linears(model: CompiledModel) -> list[QLinear]:
    qm = model.qm
    out = [qm.patch, qm.head]
    for layer in qm.layers:
        out += [layer.qkv, layer.out, layer.fc1, layer.fc2]
    return out


def test_linear_kernel(model: CompiledModel) -> None:
    rng = np.random.default_rng(1)
    for q in _linears(model):
        rows = q.bias.shape[0] if q.bias.shape[0] > 1 else 40
        x = _int8(rng, rows, q.in_dim)
        assert_equal(model.linear(q, x), intref.linear(x, q))


def test_linear_kernel_random_requantization(model: CompiledModel) -> None:
    """Multipliers and shifts over their whole range, including results that saturate."""
    rng = np.random.default_rng(2)
    for trial in range(20):
        out_dim, in_dim = int(rng.integers(1, 40)), int(rng.integers(1, 70))
        weight = rng.integers(-127, 128, size=(out_dim, in_dim)).astype(np.int8)
        bias = rng.integers(-(1 << 20), 1 << 20, size=(1, out_dim)).astype(np.int32)
        mult = rng.integers(1 << 30, 1 << 31, size=out_dim).astype(np.int32)
        shift = rng.integers(20 if trial % 2 else 40, 63, size=out_dim).astype(np.uint8)
        q = QLinear(weight, bias, Requant(mult, shift))
        x = _int8(rng, 30, in_dim)
        assert_equal(model.linear(q, x), intref.linear(x, q))


def test_layer_norm_kernel(model: CompiledModel) -> None:
    rng = np.random.default_rng(3)
    qm = model.qm
    norms = [qm.lnf] + [n for layer in qm.layers for n in (layer.ln1, layer.ln2)]
    dim = qm.config.dim
    constant = np.repeat(np.arange(-128, 128, 17)[:, None], dim, axis=1)  # variance 0: eps only
    spike = np.full((4, dim), -128)
    spike[np.arange(4), np.arange(4)] = 127
    for q in norms:
        for x in (_int8(rng, 200, dim), constant, spike, rng.integers(-3, 4, size=(50, dim))):
            assert_equal(model.layer_norm(q, x), intref.layer_norm(x, q))


def test_layer_norm_kernel_other_widths(model: CompiledModel) -> None:
    rng = np.random.default_rng(4)
    for dim in (1, 3, 16, 100, 256):
        q = QLayerNorm(
            eps=int(rng.integers(1, 1000)),
            gain=rng.integers(-(1 << 29), 1 << 29, size=dim).astype(np.int32),
            bias=rng.integers(-(1 << 40), 1 << 40, size=dim).astype(np.int64),
            shift=int(rng.integers(30, 47)),
        )
        x = _int8(rng, 50, dim)
        assert_equal(model.layer_norm(q, x), intref.layer_norm(x, q))


def test_add_kernel(model: CompiledModel) -> None:
    rng = np.random.default_rng(5)
    adds = [a for layer in model.qm.layers for a in (layer.add1, layer.add2)]
    adds += [
        QAdd(
            int(rng.integers(0, 1 << 30)), int(rng.integers(0, 1 << 30)), int(rng.integers(25, 40))
        )
        for _ in range(10)
    ]
    for q in adds:
        a, b = _int8(rng, 40, 32), _int8(rng, 40, 32)[::-1].copy()
        assert_equal(model.add(q, a, b), intref.add(a, b, q))


def test_lookup_kernel_every_input(model: CompiledModel) -> None:
    x = np.arange(-128, 128)
    for layer in model.qm.layers:
        assert_equal(model.lookup(x, layer.gelu), intref.lookup(x, layer.gelu))


def test_attention_kernel(model: CompiledModel) -> None:
    rng = np.random.default_rng(6)
    qm = model.qm
    t, dim = qm.config.tokens, qm.config.dim

    def softmax(s: np.ndarray) -> np.ndarray:
        from lutcodegen import reference

        return reference(qm.softmax, s.astype(np.int8))  # saturated to int8 by requantize

    for layer in qm.layers:
        cases = [
            _int8(rng, t, 3 * dim),
            rng.integers(-8, 9, size=(t, 3 * dim)),
            np.full((t, 3 * dim), 127),
            np.full((t, 3 * dim), -128),
        ]
        for qkv in cases:
            status, out = model.attention(qkv, layer.score, layer.context)
            assert status == 0
            expected = intref.attention(qkv, qm.config.heads, layer.score, layer.context, softmax)
            assert_equal(out, expected)


def test_patch_gather(model: CompiledModel) -> None:
    c = model.qm.config
    image = np.arange(c.image_size**2).reshape(1, c.image_size, c.image_size)
    expected = intref.patch_gather(image, c.image_size, c.patch)[0]
    assert_equal(model.patch_gather(image[0]), expected)
    # The first patch is the top-left 2x2 block, pixels row-major.
    assert model.patch_gather(image[0])[0].tolist() == [0, 1, c.image_size, c.image_size + 1]


def test_whole_model_every_digit(model: CompiledModel) -> None:
    """All 1797 images (both splits) for the default softmax, the test split for the others:
    logits and returned class equal the reference."""
    data = digits.load()
    images = data.test_images
    if model.qm.softmax.spec.method == METHODS[0]:
        images = np.concatenate([data.train_images, images])
    logits, status = model.run(images)
    expected = intref.run(model.qm, images)
    assert_equal(logits, expected)
    assert_equal(status, intref.predict(expected))


def test_whole_model_arbitrary_int8_images(model: CompiledModel) -> None:
    """Out-of-range images (any int8) saturate identically: the C is defined for every input."""
    rng = np.random.default_rng(7)
    images = rng.integers(-128, 128, size=(100, 8, 8))
    images[0] = 127
    images[1] = -128
    images[2] = 0
    logits, status = model.run(images)
    expected = intref.run(model.qm, images)
    assert_equal(logits, expected)
    assert_equal(status, intref.predict(expected))


def test_null_pointers(model: CompiledModel) -> None:
    ffi, run = model.ffi, getattr(model.lib, f"{model.prefix}_model_run")
    image = ffi.new("int8_t[]", 64)
    logits = ffi.new("int8_t[]", 10)
    scratch = ffi.new("int8_t[]", model.scratch_bytes)
    assert run(ffi.NULL, logits, scratch) == -1
    assert run(image, ffi.NULL, scratch) == -1
    assert run(image, logits, ffi.NULL) == -1


def test_requantization_ties_and_signs(model: CompiledModel) -> None:
    """Exact ties of both signs, at every shift where both C paths (shift < 33 and >= 33)
    apply: round half up, i.e. (2j + 1) / 2 -> j + 1, for j = -128 .. 126."""
    j = np.arange(-128, 127)
    for shift in range(31, 55):
        half = 1 << (shift - 31)  # acc * 2^30 / 2^shift = acc / 2^(shift - 30)
        bias = ((2 * j + 1) * half).astype(np.int32)[None, :]
        q = QLinear(
            np.zeros((len(j), 1), dtype=np.int8),
            bias,
            Requant(
                np.full(len(j), 1 << 30, dtype=np.int32), np.full(len(j), shift, dtype=np.uint8)
            ),
        )
        x = np.zeros((1, 1))
        expected = np.clip(j + 1, -128, 127)[None, :]
        assert_equal(intref.linear(x, q), expected)
        assert_equal(model.linear(q, x), expected)
