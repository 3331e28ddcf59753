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
from lutcodegen.methods import gemmlowp
from lutcodegen.model import digits, example, fixedpoint, intref
from lutcodegen.model.quantize import QAdd, QLayerNorm, QLinear, Requant

pytest.importorskip("sklearn", reason="the digits data set comes with scikit-learn")


#: Every method with the host's 64-bit products, and the default one with the Cortex-M0+ forms
#: (64-bit products from 32-bit multiplies, indexed dot-product loops), which the host otherwise
#: never runs, and with CMSIS-NN's matrix product (its portable C on the host; its DSP code
#: runs on the boards).
BUILDS = [
    *((m, ()) for m in METHODS),
    ("lut", ("DVIT_MUL32=1", "DVIT_INDEXED_LOOPS=1")),
    ("lut", ("DVIT_CMSIS_NN=1",)),
]


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
        # Exponents over TFLite's whole range where acc * 2^shift fits int32 (|acc| < 2^21).
        shift = rng.integers(-31, 10 if trial % 2 else 1, size=out_dim).astype(np.int32)
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
    """Constants over the whole domain the int32 kernel is proven for (|gain| < 2^15,
    |bias| <= 2^29, shift 1..30), widths up to the largest allowed, and rows whose sum of
    squares has a high word (4096 values of -128 and 127)."""
    rng = np.random.default_rng(4)
    for dim in (1, 3, 16, 100, 256, 4096):
        gain = rng.integers(-(1 << 15) + 1, 1 << 15, size=dim).astype(np.int32)
        bias = rng.integers(-(1 << 29), (1 << 29) + 1, size=dim).astype(np.int32)
        if dim >= 2:
            gain[:2], bias[:2] = [(1 << 15) - 1, -(1 << 15) + 1], [1 << 29, -(1 << 29)]
        q = QLayerNorm(eps=int(rng.integers(1, 1000)), gain=gain, bias=bias, shift=0)
        extreme = np.where(np.arange(dim) % 2 == 0, -128, 127)[None, :]
        for shift in (1, int(rng.integers(2, 30)), 30):
            q = QLayerNorm(q.eps, gain, bias, shift)
            x = np.concatenate([_int8(rng, 20, dim), extreme])
            assert_equal(model.layer_norm(q, x), intref.layer_norm(x, q))


def test_add_kernel(model: CompiledModel) -> None:
    rng = np.random.default_rng(5)
    adds = [a for layer in model.qm.layers for a in (layer.add1, layer.add2)]
    adds += [
        QAdd(int(rng.integers(0, (1 << 22) + 1)), int(rng.integers(0, (1 << 22) + 1)), shift)
        for shift in [1, 30, *rng.integers(1, 31, size=8)]
    ]
    adds += [QAdd(1 << 22, 1 << 22, 30), QAdd(1 << 22, 1 << 22, 1)]  # the extremes
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


def _tflite_requantize(acc: int, mult: int, shift: int) -> int:
    """TFLite's MultiplyByQuantizedMultiplier from the scalar gemmlowp functions that
    ``--method tflite`` is built on, saturated to int8: an independent form of the same rule."""
    x = gemmlowp.checked(acc * (1 << max(shift, 0)))
    value = gemmlowp.rounding_divide_by_pot(gemmlowp.srdhm(x, mult), max(-shift, 0))
    return min(127, max(-128, value))


def test_requantize_is_tflites() -> None:
    """The vectorized requantization equals the scalar TFLite functions, on random values over
    TFLite's whole exponent range and on exact ties of both signs."""
    rng = np.random.default_rng(11)
    for _ in range(4000):
        shift = int(rng.integers(-31, 31))
        limit = 1 << (31 - max(shift, 0))
        acc = int(rng.integers(-limit, limit))
        mult = int(rng.integers(1 << 30, 1 << 31))
        got = fixedpoint.requantize(np.array([acc]), mult, shift)[0]
        assert got == _tflite_requantize(acc, mult, shift), (acc, mult, shift)
    for shift in range(-31, 1):
        h = (np.arange(-130, 130) * 2 + 1) << max(-shift - 1, 0)  # ties of the last rounding
        for acc in np.concatenate([2 * h - 1, 2 * h, 2 * h + 1]):
            acc = int(np.clip(acc, -(1 << 31), (1 << 31) - 1))
            got = fixedpoint.requantize(np.array([acc]), 1 << 30, shift)[0]
            assert got == _tflite_requantize(acc, 1 << 30, shift), (acc, shift)


def test_requantization_ties_and_signs(model: CompiledModel) -> None:
    """The C's requantization on exact ties of both signs at every right shift (and the
    left shifts), against the reference: the last rounding goes away from zero."""
    for shift in [*range(-31, 1), 1, 5]:
        half = 1 << max(-shift - 1, 0)
        j = np.arange(-128, 128)
        h = (2 * j + 1) * half if shift < 0 else j
        accs = np.clip(np.concatenate([2 * h - 1, 2 * h, 2 * h + 1]), -(1 << 24), 1 << 24)
        bias = accs.astype(np.int32)[None, :]
        q = QLinear(
            np.zeros((bias.shape[1], 1), dtype=np.int8),
            bias,
            Requant(
                np.full(bias.shape[1], 1 << 30, dtype=np.int32),
                np.full(bias.shape[1], shift, dtype=np.int32),
            ),
        )
        x = np.zeros((1, 1))
        expected = intref.linear(x, q)
        assert_equal(model.linear(q, x), expected)
        tflite = [_tflite_requantize(int(a), 1 << 30, shift) for a in accs]
        assert_equal(expected, np.array(tflite)[None, :])
