"""TFLite Micro as an oracle: one-op SOFTMAX models run by the ``tflite-micro`` interpreter.

The model is built from TFLite's flatbuffer schema (shipped inside ``tflite-micro``) with the
``flatbuffers`` package: one int8 input [rows, L] with the given scale, one SOFTMAX with the given
beta, one int8 (scale 1/256, zero point -128) or int16 (1/65536, -32768) output.

TFLite Micro aborts the whole process on some rows (its sum of exps reaching 2^28 for int8
output), so the interpreter only ever runs in a child process: ``run_jobs`` pickles the jobs to
a file, runs this module as a script on it, and reads the outputs back; a crash surfaces as the
child's return code, not as a dead test session.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Job:
    """Rows x ([rows, L]) to run through a SOFTMAX with this scale, beta and output width.

    ``input_bits`` 16 makes an int16 model (TFLite's 16x8 mode): int16 input, zero point 0, and
    int16 output with scale 1/32768 and zero point 0 (``bits`` must then be 16).
    """

    input_scale: float
    beta: float
    bits: int
    x: np.ndarray
    input_bits: int = 8


def _schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    return schema


def build_model(
    shape: tuple[int, ...], input_scale: float, beta: float, bits: int, input_bits: int = 8
) -> bytes:
    """Flatbuffer bytes of a one-op SOFTMAX model with the given input shape and parameters."""
    import flatbuffers

    fb = _schema()
    if input_bits == 16:
        in_type, out_type = fb.TensorType.INT16, fb.TensorType.INT16
        out_scale, out_zero = 1.0 / 32768, 0
    else:
        in_type = fb.TensorType.INT8
        out_type, out_scale, out_zero = (
            (fb.TensorType.INT8, 1.0 / 256, -128)
            if bits == 8
            else (fb.TensorType.INT16, 1.0 / 65536, -32768)
        )

    def tensor(name: str, ttype: int, buffer: int, scale: float, zero: int) -> object:
        t = fb.TensorT()
        t.shape = list(shape)
        t.type = ttype
        t.buffer = buffer
        t.name = name
        q = fb.QuantizationParametersT()
        q.scale = [scale]
        q.zeroPoint = [zero]
        t.quantization = q
        return t

    subgraph = fb.SubGraphT()
    subgraph.tensors = [
        tensor("input", in_type, 1, input_scale, 0),
        tensor("output", out_type, 2, out_scale, out_zero),
    ]
    subgraph.inputs = [0]
    subgraph.outputs = [1]
    op = fb.OperatorT()
    op.opcodeIndex = 0
    op.inputs = [0]
    op.outputs = [1]
    op.builtinOptionsType = fb.BuiltinOptions.SoftmaxOptions
    options = fb.SoftmaxOptionsT()
    options.beta = beta
    op.builtinOptions = options
    subgraph.operators = [op]

    code = fb.OperatorCodeT()
    code.builtinCode = fb.BuiltinOperator.SOFTMAX
    code.deprecatedBuiltinCode = fb.BuiltinOperator.SOFTMAX
    code.version = 1

    model = fb.ModelT()
    model.version = 3
    model.operatorCodes = [code]
    model.subgraphs = [subgraph]
    model.buffers = [fb.BufferT(), fb.BufferT(), fb.BufferT()]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def run_in_process(jobs: list[Job]) -> list[np.ndarray]:
    """Run jobs with the interpreter in this process (the child side of ``run_jobs``)."""
    from tflite_micro import runtime

    outputs = []
    for job in jobs:
        x = np.ascontiguousarray(job.x, dtype=np.int8 if job.input_bits == 8 else np.int16)
        model = build_model(x.shape, job.input_scale, job.beta, job.bits, job.input_bits)
        arena = 3 * x.size * (1 + job.bits // 8) + x.size * job.input_bits // 8 + 32768
        interpreter = runtime.Interpreter.from_bytes(model, arena_size=arena)
        interpreter.set_input(x, 0)
        interpreter.invoke()
        outputs.append(np.array(interpreter.get_output(0), dtype=np.int64))
    return outputs


@dataclass(frozen=True)
class OracleResult:
    """What the child process did: its return code, stderr, and outputs if it finished."""

    returncode: int
    stderr: str
    outputs: list[np.ndarray] | None


def run_jobs(jobs: list[Job], timeout: float = 600.0) -> OracleResult:
    """Run jobs in a child Python process; a TFLite abort shows as a non-zero return code."""
    with tempfile.TemporaryDirectory(prefix="tflm-oracle-") as tmp:
        job_file = Path(tmp) / "jobs.pkl"
        out_file = Path(tmp) / "outputs.pkl"
        job_file.write_bytes(pickle.dumps(jobs))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(Path(__file__).resolve().parent), env.get("PYTHONPATH", "")]
        )
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), str(job_file), str(out_file)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
        outputs = pickle.loads(out_file.read_bytes()) if proc.returncode == 0 else None
        return OracleResult(proc.returncode, proc.stderr, outputs)


def _main(argv: list[str]) -> int:
    jobs = pickle.loads(Path(argv[0]).read_bytes())
    Path(argv[1]).write_bytes(pickle.dumps(run_in_process(jobs)))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
