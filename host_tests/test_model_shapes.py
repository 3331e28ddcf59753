"""Models of other shapes than the digits one, from weights files alone: the file layout is
checked array by array, and for several shapes (random weights) the generated C equals the
integer reference bit for bit on the host and on the emulated boards."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cbuild import require_tool
from exactness import assert_equal
from modelbuild import build_model, run_sanitized
from test_compile import STRICT, _compile

from lutcodegen import METHODS
from lutcodegen.cli import main as cli_main
from lutcodegen.model import example, firmware, intref, synthetic, vit
from lutcodegen.model.codegen import SCRATCH_FORMULA, render_model
from lutcodegen.model.quantize import quantize

#: Shapes other than the digits model's, each stressing something else: a larger image with
#: three heads and one layer; three layers of narrow heads; 65 tokens of one-pixel patches; one
#: patch covering the whole image (more pixels than tokens x width, an MLP width that is no
#: multiple of four, a single class).
SHAPES = {
    "16px-p4-w24-h3-l1": vit.ViTConfig(16, 4, 24, 3, 1, 48, 5),
    "12px-p3-w16-h4-l3": vit.ViTConfig(12, 3, 16, 4, 3, 40, 3),
    "8px-p1-w8-h2-l1-t65": vit.ViTConfig(8, 1, 8, 2, 1, 20, 10),
    "6px-p6-w12-h2-l2-t2": vit.ViTConfig(6, 6, 12, 2, 2, 7, 1),
}


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("shapes")
    files = {}
    for seed, (name, config) in enumerate(SHAPES.items()):
        files[name] = root / f"{name}.npz"
        synthetic.write(files[name], config, seed=seed)
    return files


def _images(config: vit.ViTConfig, seed: int) -> np.ndarray:
    """Random 0..16 images, then arbitrary int8 ones including the extremes."""
    rng = np.random.default_rng(seed)
    size = config.image_size
    wild = rng.integers(-128, 128, size=(20, size, size))
    wild[0], wild[1], wild[2] = 127, -128, 0
    return np.concatenate([synthetic.random_images(config, 40, seed), wild])


@pytest.mark.parametrize("shape", SHAPES)
def test_other_shapes_bit_exact_on_the_host(shape: str, weight_files, tmp_path: Path) -> None:
    config = SHAPES[shape]
    qm = example.quantized("lut", weight_files[shape])
    assert qm.config == config
    model = build_model(qm, example.PREFIX, tmp_path)
    images = _images(config, 3)
    logits, status = model.run(images)
    expected = intref.run(qm, images)
    assert expected.shape == (len(images), config.classes)
    assert_equal(logits, expected)
    assert_equal(status, intref.predict(expected))


@pytest.mark.parametrize("shape", SHAPES)
def test_other_shapes_compile_strictly(shape: str, weight_files, tmp_path: Path) -> None:
    """Through the command line, as a user would: header and source, strict C99."""
    gcc = require_tool("gcc")
    status = cli_main(
        [
            "model",
            "--weights",
            str(weight_files[shape]),
            "-o",
            str(tmp_path / "m.c"),
            "--header",
            str(tmp_path / "m.h"),
        ]
    )
    assert status == 0
    c = SHAPES[shape]
    header = (tmp_path / "m.h").read_text()
    assert f"#define DVIT_INPUT_SIZE {c.image_size * c.image_size}\n" in header
    assert f"#define DVIT_CLASSES {c.classes}\n" in header
    result = _compile([gcc, "-std=c99", *STRICT, "-c", "m.c"], tmp_path)
    assert result.returncode == 0, result.stderr


#: One whole-image patch and width 2: 144 pixels, more than all of the scratch for tokens x
#: width (x, t, wide, scores, ctx: 28 bytes) would be.
TINY = vit.ViTConfig(12, 12, 2, 1, 1, 3, 2)

#: 257 one-pixel tokens at the digits model's widths, where the T x T attention scores are the
#: largest part of the scratch.
LONG = vit.ViTConfig(16, 1, 32, 2, 1, 64, 3)

#: One head with more tokens x width than pixels: the attention's copies of K and V (2 T D)
#: set the size of the normalized rows' region.
ONE_HEAD = vit.ViTConfig(8, 2, 8, 1, 1, 16, 3)


@pytest.mark.parametrize("shape", [*SHAPES, "tiny"])
def test_other_shapes_under_sanitizers(shape: str, weight_files, tmp_path: Path) -> None:
    """The firmware's main.c with its exactly sized static scratch buffer, on the host under
    ASan and UBSan: no access outside it, no undefined behaviour, the reference's logits."""
    gcc = require_tool("gcc")
    if shape == "tiny":
        path, config = tmp_path / "tiny.npz", TINY
        synthetic.write(path, config, seed=9)
    else:
        path, config = weight_files[shape], SHAPES[shape]
    qm = example.quantized("lut", path)
    images = _images(config, 7)
    result = run_sanitized(gcc, qm, images, tmp_path)
    assert_equal(result.logits, intref.run(qm, images))


def documented_scratch_bytes(c: vit.ViTConfig) -> int:
    """The scratch formula of docs/model.md and of the header, written out independently:
    residual stream, normalized rows (first the pixels), Q|K|V or MLP hidden, attention scores
    (overwritten by the probabilities in place) and attention context; the normalized rows'
    region also holds one head's K and V during attention, more than T x D with one head."""
    t, d, f, s, h = c.tokens, c.dim, c.mlp_dim, c.image_size, c.heads
    return t * d + max(t * d, s * s, 2 * t * (d // h)) + t * max(3 * d, f) + t * t + t * d


def _weights(shape: str, weight_files: dict[str, Path], tmp_path: Path) -> tuple[Path, int]:
    """The weights file of a named shape and a seed for its images."""
    extra = {"tiny": TINY, "long": LONG, "one-head": ONE_HEAD}
    if shape == "digits":
        return example.WEIGHTS, 0
    if shape in extra:
        path = tmp_path / f"{shape}.npz"
        synthetic.write(path, extra[shape], seed=11)
        return path, 11
    return weight_files[shape], 1


@pytest.mark.parametrize("shape", ["digits", *SHAPES, "tiny", "long", "one-head"])
def test_scratch_bytes_formula_and_use(shape: str, weight_files, tmp_path: Path) -> None:
    """The documented formula equals the generated <PREFIX>_SCRATCH_BYTES, and measured on the
    host: model_run writes every byte of a buffer of that size and not one after it (two runs
    over different fill patterns, so a byte written with its fill value is still seen), and
    its logits equal the reference with the scores and probabilities in one buffer."""
    path, seed = _weights(shape, weight_files, tmp_path)
    qm = example.quantized("lut", path)
    c = qm.config
    expected = documented_scratch_bytes(c)
    header = render_model(qm, example.PREFIX, header_name="m.h").header or ""
    macro = re.search(r"#define DVIT_SCRATCH_BYTES (\d+)\n", header)
    assert macro is not None and int(macro.group(1)) == expected
    assert f" * {SCRATCH_FORMULA} = {expected}\n" in header
    assert f"T = {c.tokens} tokens, width D = {c.dim}, MLP width F = {c.mlp_dim} " in header

    model = build_model(qm, example.PREFIX, tmp_path)
    image = synthetic.random_images(c, 1, seed)
    guard = 64
    written = np.zeros(expected + guard, dtype=bool)
    for fill in (0x55, -0x56):  # 0x55 and 0xAA as int8
        scratch = np.full(expected + guard, fill, dtype=np.int8)
        logits = np.empty(c.classes, dtype=np.int8)
        status = model.lib.dvit_model_run(
            model.ffi.from_buffer("int8_t[]", image),
            model.ffi.from_buffer("int8_t[]", logits),
            model.ffi.from_buffer("int8_t[]", scratch),
        )
        written |= scratch != fill
        reference = intref.run(qm, image)
        assert_equal(logits.astype(np.int64)[None, :], reference)
        assert status == intref.predict(reference)[0]
    assert written[:expected].all(), np.flatnonzero(~written[:expected])[:10]
    assert not written[expected:].any()


def test_scratch_formula_is_documented() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "model.md").read_text()
    assert f"`{SCRATCH_FORMULA}`" in doc


@pytest.mark.firmware
@pytest.mark.parametrize("board_name", list(firmware.BOARDS))
@pytest.mark.parametrize("shape", SHAPES)
def test_other_shapes_bit_exact_on_the_boards(
    shape: str, board_name: str, weight_files, tmp_path: Path
) -> None:
    board = firmware.BOARDS[board_name]
    for tool in firmware.tools_for(board):
        require_tool(tool)
    qm = example.quantized("lut", weight_files[shape])
    images = _images(SHAPES[shape], 5)[::6]  # 10 images: about a second per emulator run
    built = firmware.build(qm, images, board, tmp_path)
    result = firmware.run(built, len(images))
    expected = intref.run(qm, images)
    assert_equal(result.logits, expected)
    assert_equal(result.classes, intref.predict(expected))
    assert built.model_static_ram == 0


def test_shipped_weights_layout() -> None:
    weights = vit.read_weights(example.WEIGHTS)
    assert weights.config == vit.ViTConfig()
    assert sum(v.size for v in weights.params.values()) == 18_218
    assert weights.peaks is not None
    assert weights.peaks.shape == (len(vit.calibration_points(weights.config)),)


def test_shipped_calibration_is_the_digits_training_split() -> None:
    """The stored peaks are what calibration on the digits training split measures today, and
    they give byte for byte the C that fresh peaks give; rerun examples/digits_vit/calibrate.py
    if this fails. The C is what calibration decides, so that is compared exactly. The peaks
    are float maxima of float matrix products, whose last bits depend on numpy's and its BLAS's
    build and on the CPU (2 ulps, 4.7e-16 relative, between two machines that ran this suite),
    so they are compared to 1e-12 relative: far below anything a quantization step can see, far
    above that noise."""
    pytest.importorskip("sklearn", reason="the digits data set comes with scikit-learn")
    weights = vit.read_weights(example.WEIGHTS)
    fresh = example.digits_peaks(weights.config, weights.params)
    assert weights.peaks is not None
    np.testing.assert_allclose(weights.peaks, fresh, rtol=1e-12, atol=0)
    for method in METHODS:
        stored_c, fresh_c = (
            render_model(quantize(weights.config, weights.params, peaks, method, example.PREFIX))
            for peaks in (weights.peaks, fresh)
        )
        assert stored_c == fresh_c, method


def test_synthetic_peaks_follow_the_documented_order(weight_files) -> None:
    weights = vit.read_weights(weight_files["12px-p3-w16-h4-l3"])
    names = vit.calibration_points(weights.config)
    assert len(names) == 3 + 13 * 3
    assert names[:2] == ["embed", "l0.ln1"] and names[-2:] == ["lnf", "logits"]
    assert weights.peaks is not None and np.all(weights.peaks > 0)


# --- invalid weights files: one clear WeightsError each, and exit 2 from the command ----------


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def _mutated(weight_files, tmp_path: Path, change) -> Path:
    arrays = _arrays(weight_files["16px-p4-w24-h3-l1"])
    change(arrays)
    out = tmp_path / "bad.npz"
    np.savez(out, **arrays)
    return out


def _set(name: str, value: object):
    def change(a: dict[str, object]) -> None:
        a[name] = value

    return change


def _drop(name: str):
    def change(a: dict[str, object]) -> None:
        del a[name]

    return change


BAD_FILES = {
    "missing array": (_drop("l0_fc1_b"), r"array 'l0_fc1_b' is missing \(expected shape \(48,\)\)"),
    "transposed": (
        _set("l0_qkv_w", np.zeros((24, 72), np.float32)),
        r"array 'l0_qkv_w' has shape \(24, 72\), expected \(72, 24\)",
    ),
    "broadcastable": (
        _set("patch_b", np.zeros((1, 24), np.float32)),
        r"array 'patch_b' has shape \(1, 24\), expected \(24,\)",
    ),
    "pos too short": (
        _set("pos", np.zeros((16, 24), np.float32)),
        r"array 'pos' has shape \(16, 24\), expected \(17, 24\)",
    ),
    "integer weights": (
        _set("head_w", np.zeros((5, 24), np.int32)),
        r"array 'head_w' has dtype int32, expected float32 or float64",
    ),
    "extra layer": (
        _set("l1_qkv_w", np.zeros((72, 24), np.float32)),
        r"unexpected array 'l1_qkv_w'",
    ),
    "nan": (_set("cls", np.full(24, np.nan, np.float32)), r"array 'cls' has non-finite values"),
    "peaks length": (
        _set("calibration_peaks", np.ones(3)),
        r"array 'calibration_peaks' has shape \(3,\), expected \(16,\)",
    ),
    "peaks negative": (_set("calibration_peaks", -np.ones(16)), r"negative peaks"),
    "peaks float32": (
        _set("calibration_peaks", np.ones(16, np.float32)),
        r"'calibration_peaks' has dtype float32, expected float64",
    ),
    "patch": (_set("config_patch", np.int64(3)), r"config_patch 3 does not divide .* 16"),
    "heads": (_set("config_heads", np.int64(5)), r"config_heads 5 does not divide config_dim 24"),
    "dim zero": (_set("config_dim", np.int64(0)), r"config_dim must be an integer in 1\.\.4096"),
    "layers zero": (_set("config_layers", np.int64(0)), r"config_layers must be .* got 0"),
    "too many tokens": (
        _set("config_image_size", np.int64(1024)),
        r"1025 tokens|16385 tokens|65537 tokens",
    ),
    "float config": (_set("config_dim", np.float64(24)), r"'config_dim' must be an integer scalar"),
    "config missing": (_drop("config_mlp_dim"), r"'config_mlp_dim' is missing"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_weights_raise_one_clear_error(case: str, weight_files, tmp_path: Path) -> None:
    change, message = BAD_FILES[case]
    path = _mutated(weight_files, tmp_path, change)
    with pytest.raises(vit.WeightsError, match=message) as info:
        vit.read_weights(path)
    assert isinstance(info.value, ValueError)
    assert str(path) in str(info.value)


def _refused_by_the_command(path: Path, message: str, tmp_path: Path) -> None:
    """``lutcodegen model --weights path``: exit 2, ``message`` on stderr without a traceback or
    a warning, and no output file."""
    result = subprocess.run(
        [sys.executable, "-m", "lutcodegen", "model", "--weights", str(path), "-o", "m.c"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr and "Warning:" not in result.stderr
    assert not (tmp_path / "m.c").exists()


def test_bad_weights_exit_2_without_traceback(weight_files, tmp_path: Path) -> None:
    path = _mutated(weight_files, tmp_path, BAD_FILES["transposed"][0])
    _refused_by_the_command(
        path, "array 'l0_qkv_w' has shape (24, 72), expected (72, 24)", tmp_path
    )


@pytest.mark.parametrize("name", ["patch_b", "pos", "l0_fc2_b"])
def test_a_bias_beyond_int32_is_refused_not_wrapped(
    name: str, weight_files, tmp_path: Path
) -> None:
    """A bias too large for the int32 accumulator is refused before numpy's integer cast, which
    beyond int64 gives INT64_MIN: its absolute value is negative, so it passed the accumulator
    bound, and the C had a bias of 0."""

    def scale_up(a: dict[str, np.ndarray]) -> None:
        a[name] = a[name] * np.float32(1e30)

    path = _mutated(weight_files, tmp_path, scale_up)
    _refused_by_the_command(path, "int32 accumulator could overflow", tmp_path)


def test_not_an_npz_file(tmp_path: Path) -> None:
    path = tmp_path / "w.npz"
    path.write_text("not a zip")
    with pytest.raises(vit.WeightsError, match="not an .npz weights file"):
        vit.read_weights(path)
    np.save(tmp_path / "a.npy", np.zeros(3))
    with pytest.raises(vit.WeightsError, match="not an .npz weights file"):
        vit.read_weights(tmp_path / "a.npy")


def test_without_peaks_only_a_digits_shape_can_be_calibrated(weight_files, tmp_path) -> None:
    """A file without calibration peaks is calibrated on the digits, which are 8x8."""
    path = _mutated(weight_files, tmp_path, _drop("calibration_peaks"))
    with pytest.raises(vit.WeightsError, match="needs a model of 8x8 images; this one has 16x16"):
        example.quantized("lut", path)


def test_random_weights_command(tmp_path: Path) -> None:
    out = tmp_path / "r.npz"
    argv = ["--image-size", "4", "--patch", "2", "--dim", "8", "--heads", "2", "-o", str(out)]
    assert synthetic.main(argv) == 0
    assert vit.read_weights(out).config == vit.ViTConfig(4, 2, 8, 2, 2, 64, 10)
    assert synthetic.main([*argv[:-2], "--patch", "3", "-o", str(out)]) == 2
