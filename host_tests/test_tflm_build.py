"""Real TFLite Micro, built from its pinned sources, runs models exactly as the ``tflite-micro``
Python interpreter does (stock TFLM with reference kernels), bit for bit: on the host with the
reference and the CMSIS-NN kernels, and on Cortex-M4 (QEMU mps2-an386) with CMSIS-NN.

The library builds once into the cache (``lutcodegen.tflm.build``); the tests skip without the
sources (``scripts/setup.sh`` unpacks them), compilers or QEMU, and fail instead in CI
(LUTCODEGEN_REQUIRE_TOOLS=1).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from cbuild import REQUIRE_TOOLS, require_tool

from lutcodegen.tflm import build

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "examples" / "tflite_micro" / "models"
#: (target, kernels) pairs compared with the interpreter.
CONFIGS = [("host", "reference"), ("host", "cmsis_nn"), ("cortex-m4", "cmsis_nn")]


def _skip_or_fail(message: str) -> None:
    if REQUIRE_TOOLS:
        pytest.fail(message + " (LUTCODEGEN_REQUIRE_TOOLS=1)")
    pytest.skip(message)


def _need_interpreter() -> None:
    missing = [m for m in ("tflite_micro", "flatbuffers") if importlib.util.find_spec(m) is None]
    if missing:
        _skip_or_fail(
            f"Python package(s) {', '.join(missing)} not installed (pip install -e '.[test]')"
        )


def _need(target: str) -> None:
    """Compilers, QEMU and the unpacked sources for ``target``, or skip (fail in CI)."""
    for tool in (
        ("gcc", "g++", "ar")
        if target == "host"
        else ("arm-none-eabi-gcc", "arm-none-eabi-g++", "arm-none-eabi-nm", "qemu-system-arm")
    ):
        require_tool(tool)
    try:
        build.ensure_sources()
        build.toolchain(target)
    except build.TflmBuildError as exc:
        _skip_or_fail(str(exc))


def _softmax_model(bits: int) -> bytes:
    from tflite_oracle import build_model

    return build_model((4, 17), 0.0625, 1.0, bits)


def _softmax_samples() -> list[np.ndarray]:
    """Three samples of [4, 17]: random rows, and the edges (all equal, extremes, one peak)."""
    rng = np.random.default_rng(7)
    samples = [rng.integers(-128, 128, size=(4, 17)).astype(np.int8) for _ in range(2)]
    edges = np.zeros((4, 17), dtype=np.int8)
    edges[0] = 5
    edges[1, ::2], edges[1, 1::2] = 127, -128
    edges[2] = -128
    edges[2, 3] = 127
    edges[3] = np.arange(17) * 15 - 128
    return [*samples, edges]


def _interpreter_outputs(model: bytes, samples: list[np.ndarray]) -> list[list[np.ndarray]]:
    """Every output tensor of every sample, from the ``tflite-micro`` interpreter."""
    from tflite_micro import runtime
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    count = schema.Model.GetRootAs(model, 0).Subgraphs(0).OutputsLength()
    interpreter = runtime.Interpreter.from_bytes(model, arena_size=1 << 20)
    outputs = []
    for sample in samples:
        interpreter.set_input(sample.reshape(interpreter.get_input_details(0)["shape"]), 0)
        interpreter.invoke()
        outputs.append([np.array(interpreter.get_output(i)).reshape(-1) for i in range(count)])
    return outputs


def _assert_same(result: build.RunnerOutput, expected: list[list[np.ndarray]]) -> None:
    assert len(result.outputs) == len(expected)
    for sample, (got, want) in enumerate(zip(result.outputs, expected)):
        assert len(got) == len(want)
        for index, ref in enumerate(want):
            actual = np.frombuffer(got[index], dtype=ref.dtype)
            assert np.array_equal(actual, ref), (sample, index, actual, ref)


# --- without tools ------------------------------------------------------------------------------


def test_runner_data_header_layout() -> None:
    samples = [
        np.array([[1, -2], [3, 4]], dtype=np.int8),
        np.array([[5, 6], [7, -128]], dtype=np.int8),
    ]
    text = build.runner_data_header(b"\x01\xff\x10", samples)
    assert "#define RUNNER_SAMPLE_COUNT 2" in text
    assert "#define RUNNER_SAMPLE_ELEMENTS 4" in text
    assert "typedef int8_t runner_input_t;" in text
    assert "alignas(16) static const unsigned char runner_model[3]" in text
    assert "0x01, 0xff, 0x10," in text
    assert "1, -2, 3, 4, 5, 6, 7, -128," in text
    wide = build.runner_data_header(b"\0", [np.array([-32768, 32767], dtype=np.int16)])
    assert "typedef int16_t runner_input_t;" in wide and "-32768, 32767," in wide
    with pytest.raises(build.TflmBuildError, match="int8 or all int16"):
        build.runner_data_header(b"\0", [np.zeros(2, np.int8), np.zeros(2, np.int16)])
    with pytest.raises(build.TflmBuildError, match="differ in size"):
        build.runner_data_header(b"\0", [np.zeros(2, np.int8), np.zeros(3, np.int8)])
    with pytest.raises(build.TflmBuildError, match="int8 or all int16"):
        build.runner_data_header(b"\0", [np.zeros(2, np.float32)])


def test_parse_runner_output() -> None:
    text = "arena_used 832\r\nsome TFLM message\nout 0 0 80ff\nout 0 1 \nout 1 0 0102\n"
    result = build.parse_runner_output(text, 2)
    assert result.arena_used == 832
    assert result.outputs == [[b"\x80\xff", b""], [b"\x01\x02"]]
    assert list(result.array(0, 0)) == [-128, -1]
    assert result.log == "some TFLM message"
    with pytest.raises(build.TflmBuildError, match="1 of 2 samples"):
        build.parse_runner_output("arena_used 1\nout 0 0 00\n", 2)
    with pytest.raises(build.TflmBuildError, match="error invoke 0"):
        build.parse_runner_output("arena_used 1\nerror invoke 0\n", 1)


def test_cache_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LUTCODEGEN_CACHE", str(tmp_path / "c"))
    assert build.cache_dir() == tmp_path / "c"
    assert build.source_dir("tflite-micro") == tmp_path / "c" / "src" / "tflite-micro-90b983c2b3f1"
    monkeypatch.delenv("LUTCODEGEN_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert build.cache_dir() == tmp_path / "x" / "lutcodegen"


def test_missing_sources_say_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LUTCODEGEN_CACHE", str(tmp_path))
    monkeypatch.delenv("LUTCODEGEN_THIRD_PARTY", raising=False)
    with pytest.raises(build.TflmBuildError, match="scripts/setup.sh"):
        build.ensure_sources()


def test_fetch_checks_the_archive_hash(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LUTCODEGEN_CACHE", str(tmp_path / "cache"))
    third_party = tmp_path / "third_party"
    third_party.mkdir()
    (third_party / build.SOURCES["tflite-micro"].archive).write_bytes(b"not the archive")
    with pytest.raises(build.TflmBuildError, match="sha256"):
        build.fetch(third_party)
    # Nothing half-unpacked is left looking finished.
    assert not build.source_dir("tflite-micro").exists()


@pytest.mark.parametrize(
    "argv",
    [[], ["library"], ["library", "--target", "avr", "--kernels", "reference"], ["frobnicate"]],
)
def test_cli_bad_usage_exits_2(argv: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lutcodegen.tflm.build", *argv],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "usage" in done.stderr


def test_cli_fetch_from_missing_folder(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "lutcodegen.tflm.build",
            "fetch",
            "--from",
            str(tmp_path / "nowhere"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "not a folder" in done.stderr


# --- building and running -----------------------------------------------------------------------


@pytest.mark.slow
def test_second_library_call_compiles_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    _need("host")
    first = build.library("host", "reference")
    mtime = first.archive.stat().st_mtime_ns

    def no_compiling(*args: object, **kwargs: object) -> None:
        raise AssertionError("library() compiled again")

    monkeypatch.setattr(build, "_compile_all", no_compiling)
    started = time.monotonic()
    again = build.library("host", "reference")
    assert time.monotonic() - started < 5
    assert again == first
    assert again.archive.stat().st_mtime_ns == mtime
    assert (again.build_dir / "build.json").is_file()
    assert again.build_dir.parent == build.cache_dir() / "tflm-build"
    assert ROOT not in again.archive.parents  # the cache is outside the checkout


def _run_runner(
    target: str, kernels: str, model: bytes, samples: list[np.ndarray], out: Path, **kwargs: object
) -> build.RunnerOutput:
    program = build.build_runner(target, kernels, model, samples, out, **kwargs)
    return build.parse_runner_output(build.run_program(target, program), len(samples))


def _mark(target: str) -> list[pytest.MarkDecorator]:
    return [pytest.mark.firmware] if target != "host" else []


@pytest.mark.slow
@pytest.mark.parametrize(
    "target,kernels", [pytest.param(t, k, marks=_mark(t), id=f"{t}-{k}") for t, k in CONFIGS]
)
@pytest.mark.parametrize("bits", [8, 16])
def test_softmax_model_matches_interpreter(
    target: str, kernels: str, bits: int, tmp_path: Path
) -> None:
    _need_interpreter()
    _need(target)
    model = _softmax_model(bits)
    samples = _softmax_samples()
    result = _run_runner(target, kernels, model, samples, tmp_path / "runner")
    assert 0 < result.arena_used < 64 * 1024
    _assert_same(result, _interpreter_outputs(model, samples))


def _vit_cases() -> list[object]:
    """Both ViTs on every configuration, except the 16x8 one with CMSIS-NN (which refuses it,
    see ``test_cmsis_nn_refuses_the_16x8_vit``), which runs with the reference kernels on M4."""
    cases = []
    for name, configs in (
        ("vit17_int8", CONFIGS),
        ("vit17_16x8", [("host", "reference"), ("cortex-m4", "reference")]),
    ):
        for target, kernels in configs:
            cases.append(
                pytest.param(
                    name, target, kernels, marks=_mark(target), id=f"{name}-{target}-{kernels}"
                )
            )
    return cases


def _vit(name: str) -> tuple[bytes, list[np.ndarray]]:
    model_file, inputs_file = MODELS / f"{name}.tflite", MODELS / f"{name}_digits8.npy"
    if not model_file.is_file() or not inputs_file.is_file():
        pytest.skip(f"{model_file.name} is not in the checkout")
    return model_file.read_bytes(), list(np.load(inputs_file))


@pytest.mark.slow
@pytest.mark.parametrize("name,target,kernels", _vit_cases())
def test_vit_model_matches_interpreter(
    name: str, target: str, kernels: str, tmp_path: Path
) -> None:
    """A converted ViT (CONV_2D, BATCH_MATMUL, MEAN, RSQRT, TRANSPOSE, ...), eight digits."""
    model, samples = _vit(name)
    _need_interpreter()
    _need(target)
    result = _run_runner(target, kernels, model, samples, tmp_path / "runner")
    _assert_same(result, _interpreter_outputs(model, samples))


@pytest.mark.slow
def test_cmsis_nn_refuses_the_16x8_vit(tmp_path: Path) -> None:
    """TFLM's CMSIS-NN FULLY_CONNECTED has no int16 per-channel path: Prepare fails (a TFLM
    limitation at this commit, reported through the runner's ``error allocate``)."""
    model, samples = _vit("vit17_16x8")
    _need("host")
    program = build.build_runner("host", "cmsis_nn", model, samples, tmp_path / "runner")
    with pytest.raises(build.TflmBuildError, match="error allocate") as info:
        build.run_program("host", program)
    assert "FULLY_CONNECTED" in str(info.value)


REGISTRATION_H = """\
#ifndef TEST_SOFTMAX_H
#define TEST_SOFTMAX_H
#include "tensorflow/lite/micro/micro_common.h"
namespace test_app { TFLMRegistration Register_SOFTMAX(); }
#endif
"""
#: An application-side registration: TFLM's own kernel behind a wrapper that announces itself.
REGISTRATION_CC = """\
#include "test_softmax.h"
#include <cstdio>
#include "tensorflow/lite/micro/kernels/softmax.h"
namespace test_app {
namespace {
TFLMRegistration inner;
TfLiteStatus Invoke(TfLiteContext* context, TfLiteNode* node) {
  printf("app softmax\\n");
  return inner.invoke(context, node);
}
}  // namespace
TFLMRegistration Register_SOFTMAX() {
  inner = tflite::Register_SOFTMAX();
  TFLMRegistration r = inner;
  r.invoke = Invoke;
  return r;
}
}  // namespace test_app
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "target,kernels",
    [
        pytest.param("host", "reference", id="host-reference"),
        pytest.param("cortex-m4", "cmsis_nn", marks=pytest.mark.firmware, id="cortex-m4-cmsis_nn"),
    ],
)
def test_application_registration(target: str, kernels: str, tmp_path: Path) -> None:
    _need_interpreter()
    _need(target)
    (tmp_path / "test_softmax.h").write_text(REGISTRATION_H)
    (tmp_path / "test_softmax.cc").write_text(REGISTRATION_CC)
    model, samples = _softmax_model(8), _softmax_samples()
    result = _run_runner(
        target,
        kernels,
        model,
        samples,
        tmp_path / "runner",
        sources=[tmp_path / "test_softmax.cc"],
        include_dirs=[tmp_path],
        registration_header="test_softmax.h",
        registration="test_app::Register_SOFTMAX()",
    )
    assert result.log.splitlines() == ["app softmax"] * len(samples)
    _assert_same(result, _interpreter_outputs(model, samples))


def _unregistered_op_model() -> bytes:
    """The one-op model with its SOFTMAX turned into a TANH, which the runner does not add."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(_softmax_model(8), 0)
    model.operatorCodes[0].builtinCode = schema.BuiltinOperator.TANH
    model.operatorCodes[0].deprecatedBuiltinCode = schema.BuiltinOperator.TANH
    model.subgraphs[0].operators[0].builtinOptionsType = schema.BuiltinOptions.NONE
    model.subgraphs[0].operators[0].builtinOptions = None
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@pytest.mark.slow
@pytest.mark.parametrize("target", ["host", pytest.param("cortex-m4", marks=pytest.mark.firmware)])
def test_tflm_messages_reach_the_output(target: str, tmp_path: Path) -> None:
    """A missing operator: the runner says ``error allocate`` and exits 1, and TFLM's own
    MicroPrintf message naming the operator comes out (stderr on the host, semihosting on M4)."""
    _need_interpreter()
    _need(target)
    kernels = "reference" if target == "host" else "cmsis_nn"
    program = build.build_runner(
        target, kernels, _unregistered_op_model(), _softmax_samples(), tmp_path / "runner"
    )
    with pytest.raises(build.TflmBuildError, match="exited with 1") as info:
        build.run_program(target, program)
    assert "error allocate" in str(info.value)
    assert "TANH" in str(info.value)


@pytest.mark.slow
@pytest.mark.firmware
def test_instruction_counts_per_invoke_and_per_softmax(tmp_path: Path) -> None:
    """Marked regions: one per Invoke, or one per SOFTMAX operator; outputs are unchanged and the
    softmax alone is part of (less than) the whole invoke."""
    _need_interpreter()
    _need("cortex-m4")
    if not (ROOT / "firmware" / "tools" / "qemu-plugin" / "include" / "qemu-plugin.h").is_file():
        _skip_or_fail("qemu-plugin.h is missing (scripts/setup.sh fetches it)")
    model, samples = _softmax_model(8), _softmax_samples()
    expected = _interpreter_outputs(model, samples)
    counts = {}
    for mode in ("invoke", "softmax"):
        program = build.build_runner(
            "cortex-m4", "cmsis_nn", model, samples, tmp_path / f"runner-{mode}", count=mode
        )
        output, regions = build.run_counted(program)
        _assert_same(build.parse_runner_output(output, len(samples)), expected)
        assert len(regions) == len(samples) and all(n > 4 * 17 for n in regions), regions
        counts[mode] = regions
        assert build.count_regions(program) == regions  # exact and repeatable
    assert all(s < i for s, i in zip(counts["softmax"], counts["invoke"])), counts
