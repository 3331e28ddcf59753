"""The generated TFLite Micro registration inside real TFLM, built from its pinned sources.

Every test runs a model twice in the same TFLM build: with TFLM's own SOFTMAX (stock: the
reference kernel, or CMSIS-NN's in a CMSIS-NN build) and with ``<prefix>::Register_SOFTMAX()``
from ``lutcodegen tflm``. Builds: the host with the reference kernels and with CMSIS-NN's
(portable C paths), and Cortex-M4 with CMSIS-NN's (DSP paths) in QEMU's ``mps2-an386``.

- ``--method tflite``: the outputs equal stock TFLM bit for bit, on multi-operator models (int8
  and int16 outputs, int8 and int16 inputs, several scales, zero points, betas and row lengths)
  and on real converted transformers (all 360 held-out digits), int8 and 16x8.
- ``--method lut``: every softmax output within 1 LSB of the correctly rounded softmax of that
  operator's own input (read back by listing the softmax tensors as model outputs), and the
  model's accuracy stated.
- An operator no kernel covers (another scale, a longer row): Prepare fails with the documented
  message, or, generated with ``--on-mismatch fallback``, runs stock TFLM.
- int16-input operators use no arena beyond their OpData: TFLM's own kernel fills two 513-entry
  tables there per operator; the tests check and state the saving.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tflm_models

from lutcodegen import design_for, ideal_output
from lutcodegen.methods import tflite_s16
from lutcodegen.tflm import build
from lutcodegen.tflm import cli as tflm_cli
from lutcodegen.tflm.codegen import plan
from lutcodegen.tflm.reader import read_model

pytestmark = pytest.mark.slow

MODELS = Path(__file__).resolve().parents[1] / "examples" / "tflite_micro" / "models"
MODELS_JSON = {m["file"]: m for m in json.loads((MODELS / "models.json").read_text())["models"]}

#: (target, kernels) builds of TFLM the registration must work in.
BUILDS = [("host", "reference"), ("host", "cmsis_nn"), ("cortex-m4", "cmsis_nn")]


#: The builds for the 16x8 ViT. Stock TFLM with CMSIS-NN's kernels cannot prepare it (CMSIS-NN's
#: FULLY_CONNECTED takes per-channel weights with int8 input only), so Cortex-M4 runs it with the
#: reference kernels; the int16 operators in CMSIS-NN builds are tested on the synthetic models.
BUILDS_16X8 = [("host", "reference"), ("cortex-m4", "reference")]


#: Marks per target: the Cortex-M4 builds run in QEMU.
MARKS = {"cortex-m4": [pytest.mark.firmware]}


def _build_params() -> list[object]:
    return [pytest.param(t, k, id=f"{t}-{k}", marks=MARKS.get(t, [])) for t, k in BUILDS]


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
    """The generated .cc and .c (int8 and int16 kernels) compile under TFLM's own flags plus
    -Werror."""
    _require(target)
    lib = build.library(target, kernels)
    model = tflm_models.build(tflm_models.BRANCHES + tflm_models.INT16_BRANCHES)
    gen = generate(work, model, f"strict-{target}-{kernels}", "--on-mismatch", "fallback")
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
        wide = op.input.type_name == "int16"
        in_dtype = np.int16 if wide else np.int8
        out_dtype = np.int8 if bits == 8 else np.int16
        scale = float(op.input.quantization.scale) * op.beta  # both float32 values, exact
        for sample in range(len(result.outputs)):
            x = result.array(sample, i_in, in_dtype).reshape(-1, op.row_size).astype(np.int64)
            y = result.array(sample, i_out, out_dtype).reshape(x.shape).astype(np.int64)
            # int16 in: TFLite's int16 convention, min(round(32768 p), 32767) with zero point 0
            ideal = ideal_output(x, scale, 15) + (1 << 14) if wide else ideal_output(x, scale, bits)
            err = np.abs(y - ideal)
            assert err.max() <= 1, (op.where, sample, int(err.max()))
            checked += y.size
    return checked


#: The multi-softmax model with int16-in, int16-out branches beside its int8-in ones.
MIXED = tflm_models.BRANCHES + tflm_models.INT16_BRANCHES

#: Persistent arena TFLM's own int16 kernel takes per operator beyond ours: at least its two
#: 513-entry int16 tables (the kernels' tables are const).
INT16_TABLE_BYTES = 2 * 513 * 2


@pytest.mark.parametrize(("target", "kernels"), _build_params())
def test_int16_operators_equal_stock(
    work: Path, target: str, kernels: str, hardening_report: list[str]
) -> None:
    """int16-in, int16-out operators (three kernels for four) beside the int8-in ones: tflite
    == stock TFLM bit for bit, without TFLM's arena tables."""
    _require(target)
    model = tflm_models.build(MIXED)
    x = tflm_models.inputs(12)
    gen = generate(work, model, f"mixed-{target}-{kernels}")
    assert len(list(gen.glob("*.c"))) == 7
    assert (gen / "lcg_tflm.cc").read_text().count("_softmax_s16},") == 3
    stock = run(work, target, kernels, model, x, "mixed-stock")
    ours = run(work, target, kernels, model, x, "mixed-tflite", gen)
    assert ours.outputs == stock.outputs
    int16 = len(tflm_models.INT16_BRANCHES)
    assert stock.arena_used - ours.arena_used >= int16 * INT16_TABLE_BYTES
    hardening_report.append(
        f"tflm {target}/{kernels} mixed model ({len(MIXED)} softmax, {int16} int16): arena "
        f"{stock.arena_used} B stock, {ours.arena_used} B with the registration"
    )
    # the int16 outputs are not trivially equal
    first = len(tflm_models.BRANCHES)
    assert len({int(v) for s in range(len(x)) for v in stock.array(s, first, np.int16)}) > 50


@pytest.mark.parametrize(("target", "kernels"), _build_params())
def test_multi_operator_lut_within_one_lsb(work: Path, target: str, kernels: str) -> None:
    """Method lut, int8 and int16 inputs: every softmax output within 1 LSB."""
    _require(target)
    model, pairs = tflm_models.with_softmax_outputs(tflm_models.build(MIXED))
    x = tflm_models.inputs(12)
    gen = generate(work, model, f"multi-lut-{target}-{kernels}", "--method", "lut")
    ours = run(work, target, kernels, model, x, "multi-lut", gen)
    checked = _softmax_checks(model, ours, pairs)
    assert checked == 12 * len(MIXED) * 576


def _vit(name: str, count: int | None = None) -> tuple[bytes, np.ndarray, np.ndarray, dict]:
    facts = MODELS_JSON[name]
    x, labels = tflm_models.digits_inputs(facts)
    if count is not None:
        x, labels = x[:count], labels[:count]
    return (MODELS / name).read_bytes(), x, labels, facts


def _accuracy(result: build.RunnerOutput, labels: np.ndarray, facts: dict) -> float:
    dtype = np.int16 if facts["output_dtype"] == "int16" else np.int8
    predicted = [int(np.argmax(result.array(s, 0, dtype))) for s in range(len(labels))]
    return float(np.mean(np.array(predicted) == labels))


#: The converted Keras ViTs: int8, and 16x8 (int16 activations, int16-in int16-out softmax).
VITS = ["vit17_int8.tflite", "vit65_int8.tflite", "vit17_16x8.tflite"]


def _vit_params() -> list[object]:
    """Each ViT on each build that can run it stock."""
    return [
        pytest.param(t, k, name, id=f"{t}-{k}-{name}", marks=MARKS.get(t, []))
        for name in VITS
        for t, k in (BUILDS_16X8 if "16x8" in name else BUILDS)
    ]


@pytest.mark.parametrize(("target", "kernels", "name"), _vit_params())
def test_real_transformer_tflite_equals_stock(
    work: Path, target: str, kernels: str, name: str, hardening_report: list[str]
) -> None:
    """A converted Keras ViT: identical logits on the held-out digits with the registration;
    for the 16x8 model, without TFLM's int16 tables in the arena."""
    _require(target)
    count = None if target == "host" else (360 if name.startswith("vit17") else 60)
    model, x, labels, facts = _vit(name, count)
    gen = generate(work, model, f"{name}-{target}-{kernels}")
    stock = run(work, target, kernels, model, x, f"{name}-stock")
    ours = run(work, target, kernels, model, x, f"{name}-tflite", gen)
    assert ours.outputs == stock.outputs
    assert ours.arena_used <= stock.arena_used
    if facts["mode"] == "16x8":
        softmax = len(facts["softmax"])
        assert stock.arena_used - ours.arena_used >= softmax * INT16_TABLE_BYTES
        hardening_report.append(
            f"tflm {target}/{kernels} {name} ({softmax} int16 softmax): arena "
            f"{stock.arena_used} B stock, {ours.arena_used} B with the registration"
        )
    if count is None:
        # stock TFLM here agrees with the accuracy measured by the TFLM Python interpreter
        accuracy = _accuracy(stock, labels, facts)
        assert accuracy == pytest.approx(facts["quantized_test_accuracy_tflm"])


@pytest.mark.parametrize("name", VITS)
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
    lut_acc, stock_acc = _accuracy(ours, labels, facts), facts["quantized_test_accuracy_tflm"]
    hardening_report.append(
        f"tflm {name}: lut registration accuracy {lut_acc:.2%} (stock "
        f"{stock_acc:.2%}), {checked} softmax outputs within 1 LSB, "
        f"{differing} bytes of them differ from stock TFLM's"
    )
    assert abs(lut_acc - stock_acc) <= 0.02


#: An int16-in, int16-out branch, and the same re-quantized to another scale.
INT16_EXTRA = tflm_models.Branch((4, 144), 1.0, 16, scale=0.001, in_bits=16)
INT16_RESCALED = tflm_models.Branch((4, 144), 1.0, 16, scale=0.0011, in_bits=16)


def _mismatched(kind: str = "both") -> tuple[tflm_models.Branch, ...]:
    """The multi model re-quantized (branch 3 at another scale) and/or with longer rows
    (branch 0), as a model changed after the kernels were generated; ``int16`` adds an
    int16-in operator that no kernel covers."""
    if kind == "int16":
        return tflm_models.BRANCHES + (INT16_RESCALED,)
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
    gen = generate(
        work, tflm_models.build(tflm_models.BRANCHES), f"mismatch-error-{target}-{kernels}"
    )
    multiplier, shift = tflite_s16.softmax_params(0.0011, 1.0)
    expected = {
        "scale": [
            "lcg: no generated kernel for SOFTMAX: INT8 in (scale 0.021, zero point 7, "
            "beta 1), INT8 out, 36 rows of 16; SoftmaxParams input_multiplier",
            "lcg: SoftmaxParams diff_min -",
            "Node SOFTMAX (number 9) failed to prepare",
        ],
        "int16": [
            "lcg: no generated kernel for SOFTMAX: INT16 in (scale 0.0011, zero point 0, "
            f"beta 1), INT16 out, 4 rows of 144; SoftmaxParams input_multiplier {multiplier}, "
            f"input_left_shift {shift}",
            "Node SOFTMAX (number 14) failed to prepare",
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
    """Re-quantized int8- and int16-input operators run TFLM's own kernel, the others the
    generated ones: outputs equal stock."""
    _require(target)
    gen = generate(
        work,
        tflm_models.build(tflm_models.BRANCHES + (INT16_EXTRA,)),
        f"mismatch-fallback-{target}-{kernels}",
        "--on-mismatch",
        "fallback",
    )
    other = tflm_models.build(_mismatched() + (INT16_EXTRA, INT16_RESCALED))
    x = tflm_models.inputs(6)
    stock = run(work, target, kernels, other, x, "fallback-stock")
    ours = run(work, target, kernels, other, x, "fallback-ours", gen)
    assert ours.outputs == stock.outputs


#: Nine int16 logits at input scale 0.0003: eight at the maximum and one 21,778 LSB below, whose
#: exps (TFLM's table) sum to 262,143 = 2^18 - 1. TFLM's reference kernel saturates the
#: reciprocal's table index there; CMSIS-NN's ``arm_softmax_s16`` computes it in int32 without
#: saturation, wraps to the table's first entry, and returns twice the probabilities.
SUM_WINDOW_ROW = np.array([32767] * 8 + [32767 - 21778], dtype=np.int16)


@pytest.mark.parametrize(
    "target", [pytest.param(t, marks=MARKS.get(t, [])) for t, k in BUILDS if k == "cmsis_nn"]
)
def test_int16_tflite_is_tflm_reference_where_cmsis_nn_overflows(
    work: Path, target: str, hardening_report: list[str]
) -> None:
    """In a CMSIS-NN build, ``tflite`` int16 gives TFLM's reference outputs, also on a row where
    CMSIS-NN's own int16 softmax overflows (so there it is not equal to stock, and correct)."""
    _require(target)
    model = tflm_models.single_s16((1, 9), scale=0.0003)
    rng = np.random.default_rng(3)
    x = np.stack([SUM_WINDOW_ROW, rng.integers(-32768, 32768, 9).astype(np.int16)])
    [k] = plan(read_model(model), "window.tflite", model).kernels
    dsg = design_for(k.spec)
    assert int(tflite_s16.exps(dsg, x[:1]).sum()) == (1 << 18) - 1
    reference = run(work, "host", "reference", model, x, "window-reference")
    gen = generate(work, model, "window")
    ours = run(work, target, "cmsis_nn", model, x, "window-tflite", gen)
    stock = run(work, target, "cmsis_nn", model, x, "window-cmsis")
    assert ours.outputs == reference.outputs
    # 32768 * 32762 / 262143 = 4095.4 and 32768 * 47 / 262143 = 5.9
    assert ours.array(0, 0, np.int16).tolist() == [4095] * 8 + [6]
    cmsis = stock.array(0, 0, np.int16).tolist()
    hardening_report.append(
        f"tflm {target}/cmsis_nn: int16 row whose exps sum to 2^18 - 1: stock (CMSIS-NN) gives "
        f"{cmsis}, TFLM's reference and the registration {ours.array(0, 0, np.int16).tolist()}"
    )
    # observed with the pinned CMSIS-NN (its int32 rounding add overflows, which C leaves
    # undefined): about twice the probabilities; the random row agrees
    assert cmsis != ours.array(0, 0, np.int16).tolist()
    assert stock.outputs[1] == reference.outputs[1]
