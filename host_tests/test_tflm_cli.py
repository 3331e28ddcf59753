"""``lutcodegen tflm``: the model reader, the kernel plan and the command's contract on bad input.

The reader is compared with the generated reader of TFLite's own schema (``tflite-micro``);
hostile files (not a model, truncated, mutated, without a softmax, unsupported types, rows too
long) and unwritable folders must give exit 2, a message on stderr, no traceback and no file.
The builds against real TFLite Micro are in ``test_tflm.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import tflm_models
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lutcodegen.methods import gemmlowp, tflite_s16
from lutcodegen.spec import SpecError
from lutcodegen.tflm import cli
from lutcodegen.tflm.codegen import PlanError, plan, render_files
from lutcodegen.tflm.reader import ModelError, read_model

MODELS_DIR = Path(__file__).resolve().parents[1] / "examples" / "tflite_micro" / "models"


@pytest.fixture(scope="module")
def multi() -> bytes:
    return tflm_models.build()


def _schema_softmax(data: bytes) -> list[tuple]:
    """The same facts as read by the schema's generated reader."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(data, 0))
    codes = [max(c.deprecatedBuiltinCode, c.builtinCode) for c in model.operatorCodes]
    found = []
    for s, sub in enumerate(model.subgraphs):
        for i, op in enumerate(sub.operators):
            if codes[op.opcodeIndex] != fb.BuiltinOperator.SOFTMAX:
                continue
            t_in, t_out = sub.tensors[op.inputs[0]], sub.tensors[op.outputs[0]]
            found.append(
                (
                    s,
                    i,
                    float(op.builtinOptions.beta),
                    tuple(int(d) for d in t_in.shape),
                    int(t_in.type),
                    float(t_in.quantization.scale[0]),
                    int(t_in.quantization.zeroPoint[0]),
                    int(t_out.type),
                    float(t_out.quantization.scale[0]),
                    int(t_out.quantization.zeroPoint[0]),
                )
            )
    return found


def _ours(data: bytes) -> list[tuple]:
    return [
        (
            op.subgraph,
            op.index,
            op.beta,
            op.input.shape,
            op.input.type,
            op.input.quantization.scale,
            op.input.quantization.zero_point,
            op.output.type,
            op.output.quantization.scale,
            op.output.quantization.zero_point,
        )
        for op in read_model(data).softmax
    ]


def test_reader_agrees_with_the_schema_reader(multi: bytes) -> None:
    models = [multi] + [p.read_bytes() for p in sorted(MODELS_DIR.glob("*.tflite"))]
    for data in models:
        assert _ours(data) == _schema_softmax(data)
        assert _ours(data), "every test model has softmax operators"


def test_plan_deduplicates_on_tflm_parameters(multi: bytes) -> None:
    p = plan(read_model(multi), "multi.tflite", multi)
    assert [len(k.ops) for k in p.kernels] == [2, 1, 1, 1]
    first = p.kernels[0]
    assert first.spec.max_row == 72  # rows of 12 and 72 share one kernel
    assert (
        first.input_multiplier,
        first.input_left_shift,
        first.diff_min,
    ) == gemmlowp.softmax_params(tflm_models.INPUT_SCALE, 1.0)
    assert [k.output_type for k in p.kernels] == ["int8", "int16", "int8", "int8"]
    assert [k.spec.max_row for k in p.kernels] == [72, 192, 576, 16]
    # lut kernels are made for exact scales: the same four groups here
    assert len(plan(read_model(multi), "m", multi, method="lut").kernels) == 4


def test_lut_kernels_leave_out_the_loop_no_operator_takes(multi: bytes) -> None:
    """The registration calls a kernel with its operators' row sizes only, so lut's loop for rows
    a multiple of 16 long is off by default (its macro 0) in a kernel none of whose operators has
    such rows, and on where one has: rows of 12 and 72 against 576 and 16 here."""
    p = plan(read_model(multi), "m", multi, method="lut")
    files = dict(render_files(p))
    seen = set()
    for k in p.kernels:
        source = files[f"{k.name}.c"]
        if k.output_type != "int8":  # 16-bit output: the design has no such loop
            assert "USE_WHOLE_ROWS" not in source
            continue
        on = int(any(op.row_size % 16 == 0 for op in k.ops))
        assert f"#define {k.name.upper()}_USE_WHOLE_ROWS {on}\n" in source, k.name
        seen.add(on)
    assert seen == {0, 1}


def test_files_and_prefix(multi: bytes, tmp_path: Path) -> None:
    out = tmp_path / "gen"
    assert cli.main([str(_write(tmp_path, multi)), "-o", str(out), "--prefix", "attn"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        [f"attn_k{i}.{e}" for i in range(4) for e in "ch"] + ["attn_tflm.cc", "attn_tflm.h"]
    )
    header = (out / "attn_tflm.h").read_text()
    assert "namespace attn {" in header and "TFLMRegistration Register_SOFTMAX();" in header
    source = (out / "attn_tflm.cc").read_text()
    assert "lcg" not in source.replace("lutcodegen", "")  # no hard-coded prefix
    assert '#include "attn_k3.h"' in source


def _write(folder: Path, data: bytes, name: str = "model.tflite") -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def _refused(args: list[str], capsys: pytest.CaptureFixture[str], out: Path, expect: str) -> None:
    before = sorted(out.rglob("*")) if out.exists() else None
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert "lutcodegen tflm: error:" in err and "Traceback" not in err
    assert expect in err, err
    after = sorted(out.rglob("*")) if out.exists() else None
    assert after == before, "nothing may be written"


def test_bad_models(tmp_path: Path, multi: bytes, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"

    def refused(data: bytes, expect: str, *extra: str) -> None:
        _refused([str(_write(tmp_path, data)), "-o", str(out), *extra], capsys, out, expect)

    refused(b"", "too short")
    refused(b"#include <stdio.h>\nint main(void) { return 0; }\n", "not a TFLite model")
    refused(multi[: len(multi) // 2], "byte offset")
    refused(tflm_models.single((4, 4), op="RESHAPE"), "has no SOFTMAX operator")
    refused(
        tflm_models.single((4, 4), "float32", "float32", scale=None),
        "float32 in with float32 out is not supported",
    )
    refused(tflm_models.single((4, 4), "uint8", "uint8"), "uint8 in with uint8 out")
    # int16 in: TFLM's conventions (zero points 0, output scale 1/32768) and each kernel's limits
    s16 = tflm_models.single_s16
    refused(s16((4, 4), zero=3), "int16 input must have zero point 0")
    refused(
        tflm_models.single((4, 4), "int16", "int16"),
        "int16 output after int16 input must have scale 3.0517578125e-05 and zero point 0",
    )
    refused(tflm_models.single((4, 4), "int16", "int8"), "int16 in with int8 out is not supported")
    refused(s16((1, 70_000)), "(at most 65536)")
    refused(s16((1, 30_000), 0.0003), "--input-bits 16 supports max_row up to", "--method", "lut")
    refused(s16((4, 4), 10.0), "overflows")
    refused(tflm_models.single((1, 9000)), "(at most 8191)")
    refused(tflm_models.single((1, 2_000_000)), "at most 1048576", "--method", "lut")
    refused(tflm_models.single((4, 4), out_scale=1 / 128), "must have scale 0.00390625")
    refused(tflm_models.single((4, 4), beta=0.0), "beta is 0.0")
    refused(tflm_models.single((4, 4), scale=1e-12), "TFLM cannot prepare it")
    refused(tflm_models.single((4, 0)), "dimension below 1")
    refused(tflm_models.single((4, 4), scale=None), "no positive per-tensor scale")
    refused(multi, "prefix", "--prefix", "class")
    refused(multi, "prefix", "--prefix", "9x")
    # With fallback, unsupported operators are left to TFLM, but one must remain to generate.
    refused(
        tflm_models.single((4, 4), "float32", "float32", scale=None),
        "none of its",
        "--on-mismatch",
        "fallback",
    )


def test_int16_operators_get_kernels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """int16-in, int16-out operators (16x8 models) are bound, not refused: one ``_s16`` kernel
    per TFLM parameter set (QuantizeMultiplier(scale * beta / (10 / 65535))), rows from the
    shapes, no diff_min; lut kernels per exact scale and beta."""
    data = tflm_models.build(tflm_models.BRANCHES + tflm_models.INT16_BRANCHES)
    p = plan(read_model(data), "m", data)
    wide = [k for k in p.kernels if k.input_type == "int16"]
    assert [len(k.ops) for k in wide] == [2, 1, 1] and not p.unbound
    assert [k.spec.max_row for k in wide] == [576, 288, 12]
    for k, branch in zip(wide, tflm_models.INT16_BRANCHES):
        assert (k.input_multiplier, k.input_left_shift, k.diff_min) == (
            *tflite_s16.softmax_params(branch.scale or 0.0, branch.beta),
            0,
        )
        assert (k.output_type, k.function, k.spec.input_bits, k.spec.bits) == (
            "int16",
            f"{k.name}_softmax_s16",
            16,
            16,
        )
    lut = plan(read_model(data), "m", data, method="lut")
    assert [k.spec.method for k in lut.kernels if k.input_type == "int16"] == ["lut"] * 3
    assert cli.main([str(_write(tmp_path, data)), "-o", str(tmp_path / "g"), "-v"]) == 0
    err = capsys.readouterr().err
    assert "9 SOFTMAX operators, 7 kernels" in err and "TFLM's own kernel" not in err
    assert "(int16 in, int16 out, rows of 576)" in err
    source = (tmp_path / "g" / "lcg_tflm.cc").read_text()
    assert source.count("kTfLiteInt16, kTfLiteInt16,") == 3
    assert "CalculateSoftmaxParams(context" in source and "QuantizeMultiplier(" in source
    # the 16x8 ViT's two operators: two kernels, nothing refused
    vit = (MODELS_DIR / "vit17_16x8.tflite").read_bytes()
    assert [k.function for k in plan(read_model(vit), "v", vit).kernels] == [
        "lcg_k0_softmax_s16",
        "lcg_k1_softmax_s16",
    ]


#: The multi-softmax model plus an int16-in, int8-out operator, which TFLM does not support.
WITH_UNSUPPORTED = tflm_models.BRANCHES + (
    tflm_models.Branch((4, 144), 1.0, 8, scale=0.001, zero=0, in_bits=16),
)


def test_fallback_leaves_unsupported_operators_to_tflm(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tflm_models.build(WITH_UNSUPPORTED)
    with pytest.raises(PlanError, match="int16 in with int8 out is not supported"):
        plan(read_model(data), "m", data)
    p = plan(read_model(data), "m", data, on_mismatch="fallback")
    assert len(p.kernels) == 4 and [op.index for op, _ in p.unbound] == [14]
    assert (
        cli.main(
            [str(_write(tmp_path, data)), "-o", str(tmp_path / "g"), "--on-mismatch", "fallback"]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "subgraph 0 operator 14 (SOFTMAX) runs TFLM's own kernel" in err
    assert "#define LCG_TFLM_FALLBACK 1" in (tmp_path / "g" / "lcg_tflm.cc").read_text()


def test_bad_paths(tmp_path: Path, multi: bytes, capsys: pytest.CaptureFixture[str]) -> None:
    model = _write(tmp_path, multi)
    out = tmp_path / "out"
    _refused([str(tmp_path / "missing.tflite"), "-o", str(out)], capsys, out, "no such file")
    _refused([str(tmp_path), "-o", str(out)], capsys, out, "is a directory")
    _refused(["/dev/zero", "-o", str(out)], capsys, out, "not a regular file")
    afile = _write(tmp_path, b"x", "afile")
    _refused([str(model), "-o", str(afile)], capsys, out, "is not a folder")
    _refused([str(model), "-o", str(afile / "sub")], capsys, out, "cannot create the folder")
    _refused([str(model)], capsys, out, "-o/--output")
    _refused([str(model), "-o", str(out), "--method", "rexp"], capsys, out, "invalid choice")
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        _refused([str(model), "-o", str(locked)], capsys, out, "not writable")


def test_full_disk_writes_nothing(
    tmp_path: Path, multi: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error while writing the fourth file leaves no file at all, and no new folder."""
    import lutcodegen.cli as base

    real = base._Staged.__init__
    calls = []

    def failing(self: object, path: Path, text: str) -> None:
        calls.append(path)
        if len(calls) == 4:
            raise OSError(28, "No space left on device")
        real(self, path, text)  # type: ignore[arg-type]

    monkeypatch.setattr(base._Staged, "__init__", failing)
    out = tmp_path / "new"
    assert cli.main([str(_write(tmp_path, multi)), "-o", str(out)]) == 1
    assert not out.exists()


def test_command_line_entry(tmp_path: Path, multi: bytes) -> None:
    model = _write(tmp_path, multi)
    run = subprocess.run(
        [sys.executable, "-m", "lutcodegen", "tflm", str(model), "-o", str(tmp_path / "g")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert "5 SOFTMAX operators, 4 kernels" in run.stderr and run.stdout == ""
    bad = subprocess.run(
        [sys.executable, "-m", "lutcodegen", "tflm", str(tmp_path / "g")],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    top = subprocess.run(
        [sys.executable, "-m", "lutcodegen", "--help"], capture_output=True, text=True
    )
    assert "lutcodegen tflm MODEL.tflite -o DIR" in top.stdout


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_flatbuffers_never_raise_anything_else(data: st.DataObject) -> None:
    """Byte flips, truncations and splices of a real model: a result or a clear refusal."""
    base = bytearray(_MUTATION_BASE)
    kind = data.draw(st.sampled_from(["flip", "truncate", "splice", "word"]))
    if kind == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(base) - 1))
            base[i] = data.draw(st.integers(0, 255))
    elif kind == "truncate":
        base = base[: data.draw(st.integers(0, len(base) - 1))]
    elif kind == "splice":
        i = data.draw(st.integers(0, len(base)))
        base[i:i] = data.draw(st.binary(max_size=64))
    else:  # overwrite an aligned 32-bit word, where offsets and lengths live
        i = data.draw(st.integers(0, len(base) // 4 - 1)) * 4
        base[i : i + 4] = data.draw(st.integers(0, 2**32 - 1)).to_bytes(4, "little")
    blob = bytes(base)
    try:
        p = plan(read_model(blob), "m.tflite", blob)
    except (ModelError, PlanError, SpecError):
        return
    assert render_files(p)


_MUTATION_BASE = tflm_models.build(tflm_models.BRANCHES + tflm_models.INT16_BRANCHES[:2])


def test_bench_inputs_are_the_first_held_out_digits() -> None:
    """The bench's shipped input files are the first 8 test images, quantized as the models'
    inputs (so the README's bench table uses real data and can be re-made)."""
    import json

    import numpy as np

    facts = {m["file"]: m for m in json.loads((MODELS_DIR / "models.json").read_text())["models"]}
    for path in sorted(MODELS_DIR.glob("*_digits8.npy")):
        x, _ = tflm_models.digits_inputs(facts[path.name.replace("_digits8.npy", ".tflite")])
        shipped = np.load(path)
        assert shipped.dtype == x.dtype and np.array_equal(shipped, x[:8])


def test_reader_reports_the_model_input(multi: bytes) -> None:
    info = read_model(multi)
    assert [(t.type_name, t.shape) for t in info.inputs] == [("int8", tflm_models.INPUT_SHAPE)]
    assert info.inputs[0].quantization.zero_point == tflm_models.INPUT_ZERO


def test_bench_kernels_option() -> None:
    """``bench --tflm --kernels reference`` is for models TFLM+CMSIS-NN cannot prepare (the 16x8
    ViT); the table's note says which kernels stock ran."""
    from lutcodegen.tflm import bench

    parser = bench.build_parser()
    assert parser.parse_args(["--tflm", "m.tflite"]).kernels == "cmsis_nn"
    assert parser.parse_args(["--tflm", "m", "--kernels", "reference"]).kernels == "reference"
    assert bench.main(["--tflm", "m", "--kernels", "optimized"]) == 2
    assert "reference softmax" in bench.note("reference")
    assert "arm_softmax_s8" in bench.note("cmsis_nn")
