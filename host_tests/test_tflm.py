"""The generated TFLite Micro registration inside real TFLM, built from its pinned sources.

Every test runs a model twice in the same TFLM build: with TFLM's own SOFTMAX (stock: the
reference kernel, or CMSIS-NN's in a CMSIS-NN build) and with ``<prefix>::Register_SOFTMAX()``
from ``lutcodegen tflm``. Builds: the host with the reference kernels and with CMSIS-NN's
(portable C paths), and Cortex-M4 with CMSIS-NN's (DSP paths) in QEMU's ``mps2-an386``.

- ``--method tflite``: the outputs equal stock TFLM bit for bit, on multi-operator models (int8
  and int16 outputs, several scales, zero points, betas and row lengths) and on real converted
  transformers (all 360 held-out digits).
- ``--method lut``: every softmax output within 1 LSB of the correctly rounded softmax of that
  operator's own input (read back by listing the softmax tensors as model outputs), and the
  model's accuracy stated.
- An operator no kernel covers (another scale, a longer row, int16 input): Prepare fails with
  the documented message, or, generated with ``--on-mismatch fallback``, runs stock TFLM.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tflm_models

from lutcodegen import ideal_output
from lutcodegen.tflm import build
from lutcodegen.tflm import cli as tflm_cli
from lutcodegen.tflm.reader import read_model

pytestmark = pytest.mark.slow

MODELS = Path(__file__).resolve().parents[1] / "examples" / "tflite_micro" / "models"
MODELS_JSON = {m["file"]: m for m in json.loads((MODELS / "models.json").read_text())["models"]}

#: (target, kernels) builds of TFLM the registration must work in.
BUILDS = [("host", "reference"), ("host", "cmsis_nn"), ("cortex-m4", "cmsis_nn")]


def _build_params() -> list[object]:
    marks = {"cortex-m4": [pytest.mark.firmware]}
    return [pytest.param(t, k, id=f"{t}-{k}", marks=marks.get(t, [])) for t, k in BUILDS]


def _require(target: str) -> None:
    """Skip when TFLM's sources or the toolchain are missing, unless tools are required."""
    try:
        build.ensure_sources()
        build.toolchain(target)
    except build.TflmBuildError as exc:
        if os.environ.get("LUTCODEGEN_REQUIRE_TOOLS") == "1":
            raise
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tflm")


def generate(work: Path, model: bytes, name: str, *args: str) -> Path:
    """Run ``lutcodegen tflm`` on the model; returns the folder of generated files."""
    folder = work / name
    model_path = work / f"{name}.tflite"
    model_path.write_bytes(model)
    assert tflm_cli.main([str(model_path), "-o", str(folder), *args]) == 0
    return folder


def run(
    work: Path,
    target: str,
    kernels: str,
    model: bytes,
    inputs: np.ndarray,
    name: str,
    generated: Path | None = None,
    prefix: str = "lcg",
) -> build.RunnerOutput:
    """Build the runner (stock, or with the generated registration) and run it."""
    extra: dict[str, object] = {}
    if generated is not None:
        extra = {
            "sources": sorted(generated.glob("*.c")) + sorted(generated.glob("*.cc")),
            "include_dirs": [generated],
            "registration_header": f"{prefix}_tflm.h",
            "registration": f"{prefix}::Register_SOFTMAX()",
        }
    program = build.build_runner(
        target, kernels, model, list(inputs), work / "bin" / f"{name}-{target}-{kernels}", **extra
    )  # type: ignore[arg-type]
    return build.parse_runner_output(build.run_program(target, program), len(inputs))


@pytest.mark.parametrize(("target", "kernels"), _build_params())
def test_registration_compiles_warning_free(work: Path, target: str, kernels: str) -> None:
    """The generated .cc and .c compile under TFLM's own flags plus -Werror."""
    _require(target)
    lib = build.library(target, kernels)
    gen = generate(
        work, tflm_models.build(), f"strict-{target}-{kernels}", "--on-mismatch", "fallback"
    )
    includes = [f"-I{d}" for d in (gen, *lib.include_dirs)]
    defines = [f"-D{d}" for d in lib.defines]
    for source in sorted(gen.glob("*.c*")):
        if source.suffix == ".c":
            cmd = [lib.cc, *lib.c_flags, "-std=c99", "-pedantic", "-Wconversion"]
        else:
            cmd = [lib.cxx, *lib.cxx_flags]
        for fallback in ("0", "1"):
            out = work / f"{source.stem}-{target}-{kernels}-{fallback}.o"
            proc = subprocess.run(
                [
                    *cmd,
                    "-Werror",
                    "-O2",
                    *defines,
                    f"-DLCG_TFLM_FALLBACK={fallback}",
                    *includes,
                    "-c",
                    str(source),
                    "-o",
                    str(out),
                ],
                capture_output=True,
                text=True,
            )
            assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(("target", "kernels"), _build_params())
def test_multi_operator_model_equals_stock(work: Path, target: str, kernels: str) -> None:
    """Five SOFTMAX operators (four kernels, int8 and int16 outputs): tflite == stock TFLM."""
    _require(target)
    model = tflm_models.build()
    x = tflm_models.inputs(12)
    gen = generate(work, model, f"multi-{target}-{kernels}")
    stock = run(work, target, kernels, model, x, "multi-stock")
    ours = run(work, target, kernels, model, x, "multi-tflite", gen)
    assert ours.outputs == stock.outputs
    assert ours.arena_used <= stock.arena_used, (ours.arena_used, stock.arena_used)
    # the outputs are not trivially equal: int16 output differs from int8 and rows vary
    assert len({o for sample in stock.outputs for o in sample}) > 5


def _softmax_checks(model: bytes, result: build.RunnerOutput, pairs: list[tuple[int, int]]) -> int:
    """Each softmax output within 1 LSB of the correctly rounded softmax of its own input (as
    the runner printed it); returns the number of outputs checked."""
    checked = 0
    ops = read_model(model).softmax
    assert len(ops) == len(pairs)
    for (i_in, i_out), op in zip(pairs, ops):
        bits = 8 if op.output.type_name == "int8" else 16
        in_dtype = np.int8 if op.input.type_name == "int8" else np.int16
        out_dtype = np.int8 if bits == 8 else np.int16
        scale = float(op.input.quantization.scale) * op.beta  # both float32 values, exact
        for sample in range(len(result.outputs)):
            x = result.array(sample, i_in, in_dtype).reshape(-1, op.row_size)
            y = result.array(sample, i_out, out_dtype).reshape(x.shape).astype(np.int64)
            err = np.abs(y - ideal_output(x.astype(np.int64), scale, bits))
            assert err.max() <= 1, (op.where, sample, int(err.max()))
            checked += y.size
    return checked


@pytest.mark.parametrize(("target", "kernels"), _build_params())
def test_multi_operator_lut_within_one_lsb(work: Path, target: str, kernels: str) -> None:
    _require(target)
    model, pairs = tflm_models.with_softmax_outputs(tflm_models.build())
    x = tflm_models.inputs(12)
    gen = generate(work, model, f"multi-lut-{target}-{kernels}", "--method", "lut")
    ours = run(work, target, kernels, model, x, "multi-lut", gen)
    checked = _softmax_checks(model, ours, pairs)
    assert checked == 12 * 5 * 576


def _vit(name: str, count: int | None = None) -> tuple[bytes, np.ndarray, np.ndarray, dict]:
    facts = MODELS_JSON[name]
    x, labels = tflm_models.digits_inputs(facts)
    if count is not None:
        x, labels = x[:count], labels[:count]
    return (MODELS / name).read_bytes(), x, labels, facts


def _accuracy(result: build.RunnerOutput, labels: np.ndarray) -> float:
    predicted = [int(np.argmax(result.array(s, 0))) for s in range(len(labels))]
    return float(np.mean(np.array(predicted) == labels))


@pytest.mark.parametrize("name", ["vit17_int8.tflite", "vit65_int8.tflite"])
@pytest.mark.parametrize(("target", "kernels"), _build_params())
def test_real_transformer_tflite_equals_stock(
    work: Path, target: str, kernels: str, name: str
) -> None:
    """A converted Keras ViT: identical logits on the held-out digits with the registration."""
    _require(target)
    count = None if target == "host" else (360 if name.startswith("vit17") else 60)
    model, x, labels, facts = _vit(name, count)
    gen = generate(work, model, f"{name}-{target}-{kernels}")
    stock = run(work, target, kernels, model, x, f"{name}-stock")
    ours = run(work, target, kernels, model, x, f"{name}-tflite", gen)
    assert ours.outputs == stock.outputs
    assert ours.arena_used <= stock.arena_used
    if count is None:
        # stock TFLM here agrees with the accuracy measured by the TFLM Python interpreter
        assert _accuracy(stock, labels) == pytest.approx(facts["quantized_test_accuracy_tflm"])


@pytest.mark.parametrize("name", ["vit17_int8.tflite", "vit65_int8.tflite"])
def test_real_transformer_lut(work: Path, name: str, hardening_report: list[str]) -> None:
    """Method lut in the real model: every softmax within 1 LSB; accuracy stated."""
    target, kernels = "host", "reference"
    _require(target)
    model, x, labels, facts = _vit(name)
    probe, pairs = tflm_models.with_softmax_outputs(model)
    gen = generate(work, probe, f"{name}-lut", "--method", "lut")
    ours = run(work, target, kernels, probe, x, f"{name}-lut", gen)
    stock = run(work, target, kernels, probe, x, f"{name}-lut-stock")
    checked = _softmax_checks(probe, ours, pairs)
    # the registration is really in use: some softmax outputs differ from stock's
    differing = sum(
        int(np.count_nonzero(ours.array(s, o) != stock.array(s, o)))
        for s in range(len(x))
        for _, o in pairs
    )
    assert differing > 0
    lut_acc, stock_acc = _accuracy(ours, labels), facts["quantized_test_accuracy_tflm"]
    hardening_report.append(
        f"tflm {name}: lut registration accuracy {lut_acc:.2%} (stock "
        f"{stock_acc:.2%}), {checked} softmax outputs within 1 LSB, "
        f"{differing} bytes of them differ from stock TFLM's"
    )
    assert abs(lut_acc - stock_acc) <= 0.02


def _mismatched(kind: str = "both") -> tuple[tflm_models.Branch, ...]:
    """The multi model re-quantized (branch 3 at another scale) and/or with longer rows
    (branch 0), as a model changed after the kernels were generated."""
    b = list(tflm_models.BRANCHES)
    if kind in ("scale", "both"):
        b[3] = tflm_models.Branch(b[3].shape, b[3].beta, b[3].out_bits, scale=0.021, zero=b[3].zero)
    if kind in ("rows", "both"):
        b[0] = tflm_models.Branch((1, 4, 144), b[0].beta, b[0].out_bits)
    return tuple(b)


@pytest.mark.parametrize(("target", "kernels"), _build_params())
def test_mismatch_fails_prepare_with_the_documented_message(
    work: Path, target: str, kernels: str
) -> None:
    _require(target)
    gen = generate(work, tflm_models.build(), f"mismatch-error-{target}-{kernels}")
    expected = {
        "scale": [
            "lcg: no generated kernel for SOFTMAX: INT8 in (scale 0.021, zero point 7, "
            "beta 1), INT8 out, 36 rows of 16; SoftmaxParams input_multiplier",
            "Node SOFTMAX (number 9) failed to prepare",
        ],
        "rows": [
            "lcg: no generated kernel for SOFTMAX: INT8 in (scale 0.05, zero point 3, "
            "beta 1), INT8 out, 4 rows of 144",
            "lcg: the kernel for these parameters takes rows of at most 72",
            "Node SOFTMAX (number 1) failed to prepare",
        ],
    }
    for kind, lines in expected.items():
        with pytest.raises(build.TflmBuildError) as failure:
            run(
                work,
                target,
                kernels,
                tflm_models.build(_mismatched(kind)),
                tflm_models.inputs(2),
                f"mismatch-error-{kind}",
                gen,
            )
        text = str(failure.value)
        for line in lines + [
            "lcg: the kernels were generated for mismatch-error-",
            "lcg: regenerate them for this model, or with --on-mismatch fallback",
            "error allocate",
        ]:
            assert line in text, text


@pytest.mark.parametrize(("target", "kernels"), _build_params())
def test_mismatch_fallback_runs_stock(work: Path, target: str, kernels: str) -> None:
    """Re-quantized and int16-input operators run TFLM's own kernel: outputs equal stock."""
    _require(target)
    extra = tflm_models.Branch((4, 144), 1.0, 16, scale=0.001, zero=0, in_bits=16)
    gen = generate(
        work,
        tflm_models.build(tflm_models.BRANCHES + (extra,)),
        f"mismatch-fallback-{target}-{kernels}",
        "--on-mismatch",
        "fallback",
    )
    other = tflm_models.build(_mismatched() + (extra,))
    x = tflm_models.inputs(6)
    stock = run(work, target, kernels, other, x, "fallback-stock")
    ours = run(work, target, kernels, other, x, "fallback-ours", gen)
    assert ours.outputs == stock.outputs
