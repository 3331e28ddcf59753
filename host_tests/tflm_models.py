"""Multi-softmax TFLite models for the TFLite Micro registration tests, built from TFLite's schema.

One int8 input feeds several branches; each branch may re-quantize (QUANTIZE int8 -> int8, which
gives the softmax input another scale and zero point), reshape (another row length) and then
runs a SOFTMAX with its own beta and int8 or int16 output. So one model holds softmax operators
of different scales, zero points, betas, shapes and output types, as a converter would emit
them, and a model with a changed scale is a "re-quantized" model for the mismatch tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Branch:
    """One softmax branch: the input is re-quantized to (scale, zero) if given, then reshaped."""

    shape: tuple[int, ...]
    beta: float
    out_bits: int  # 8: int8 output (1/256, -128); 16: int16 output (1/65536, -32768)
    scale: float | None = None  # None: the softmax reads the model input's quantization
    zero: int = 0
    in_bits: int = 8  # 16: re-quantized to int16 (zero point 0), int16 output (1/32768, 0)


#: The model input: 576 int8 values.
INPUT_SHAPE = (1, 576)
INPUT_SCALE = 0.05
INPUT_ZERO = 3

#: Five operators: four distinct parameter sets (the last repeats the first's with another row
#: length, so both share one kernel), int8 and int16 outputs, rows of 12 to 576.
BRANCHES = (
    Branch((2, 2, 12, 12), 1.0, 8),
    Branch((3, 192), 0.5, 16, scale=0.11, zero=-5),
    Branch((1, 576), 2.0, 8),
    Branch((36, 16), 1.0, 8, scale=0.02, zero=7),
    Branch((8, 72), 1.0, 8),
)

#: int16-in, int16-out branches (as in a 16x8 model): three parameter sets, one repeated with
#: another row length, input scales from 0.0004 to 0.003 and betas 0.5 to 2, rows of 12 to 576.
INT16_BRANCHES = (
    Branch((4, 144), 1.0, 16, scale=0.001, in_bits=16),
    Branch((2, 288), 0.5, 16, scale=0.0004, in_bits=16),
    Branch((48, 12), 2.0, 16, scale=0.003, in_bits=16),
    Branch((1, 576), 1.0, 16, scale=0.001, in_bits=16),
)


def _schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    return schema


def build(
    branches: tuple[Branch, ...] = BRANCHES,
    input_scale: float = INPUT_SCALE,
    input_zero: int = INPUT_ZERO,
) -> bytes:
    """Flatbuffer bytes of the model: input -> [QUANTIZE] -> RESHAPE -> SOFTMAX per branch."""
    import flatbuffers

    fb = _schema()
    tensors: list[object] = []
    buffers = [fb.BufferT()]  # buffer 0 is the empty buffer by convention
    operators: list[object] = []
    codes = {}

    def code(op: int) -> int:
        if op not in codes:
            codes[op] = len(codes)
        return codes[op]

    def tensor(
        shape: tuple[int, ...],
        ttype: int,
        scale: float | None,
        zero: int,
        data: bytes | None = None,
    ) -> int:
        t = fb.TensorT()
        t.shape = list(shape)
        t.type = ttype
        t.name = f"t{len(tensors)}"
        buf = fb.BufferT()
        if data is not None:
            buf.data = list(data)
        t.buffer = len(buffers)
        buffers.append(buf)
        if scale is not None:
            q = fb.QuantizationParametersT()
            q.scale = [scale]
            q.zeroPoint = [zero]
            t.quantization = q
        tensors.append(t)
        return len(tensors) - 1

    def operator(
        op: int,
        inputs: list[int],
        outputs: list[int],
        options: object = None,
        options_type: int = 0,
    ) -> None:
        o = fb.OperatorT()
        o.opcodeIndex = code(op)
        o.inputs = inputs
        o.outputs = outputs
        if options is not None:
            o.builtinOptionsType = options_type
            o.builtinOptions = options
        operators.append(o)

    model_input = tensor(INPUT_SHAPE, fb.TensorType.INT8, input_scale, input_zero)
    outputs = []
    for b in branches:
        assert math.prod(b.shape) == math.prod(INPUT_SHAPE)
        src, scale, zero = model_input, input_scale, input_zero
        in_type = fb.TensorType.INT8 if b.in_bits == 8 else fb.TensorType.INT16
        if b.scale is not None:
            requantized = tensor(INPUT_SHAPE, in_type, b.scale, b.zero)
            operator(fb.BuiltinOperator.QUANTIZE, [src], [requantized])
            src, scale, zero = requantized, b.scale, b.zero
        new_shape = tensor(
            (len(b.shape),), fb.TensorType.INT32, None, 0, np.array(b.shape, dtype="<i4").tobytes()
        )
        reshaped = tensor(b.shape, in_type, scale, zero)
        options = fb.ReshapeOptionsT()
        options.newShape = list(b.shape)
        operator(
            fb.BuiltinOperator.RESHAPE,
            [src, new_shape],
            [reshaped],
            options,
            fb.BuiltinOptions.ReshapeOptions,
        )
        out_type, out_scale, out_zero = (
            (fb.TensorType.INT8, 1.0 / 256, -128)
            if b.out_bits == 8
            else (fb.TensorType.INT16, 1.0 / 65536, -32768)
            if b.in_bits == 8
            else (fb.TensorType.INT16, 1.0 / 32768, 0)
        )
        out = tensor(b.shape, out_type, out_scale, out_zero)
        softmax = fb.SoftmaxOptionsT()
        softmax.beta = b.beta
        operator(
            fb.BuiltinOperator.SOFTMAX, [reshaped], [out], softmax, fb.BuiltinOptions.SoftmaxOptions
        )
        outputs.append(out)

    subgraph = fb.SubGraphT()
    subgraph.tensors = tensors
    subgraph.inputs = [model_input]
    subgraph.outputs = outputs
    subgraph.operators = operators
    model = fb.ModelT()
    model.version = 3
    model.operatorCodes = []
    for op in sorted(codes, key=codes.__getitem__):
        c = fb.OperatorCodeT()
        c.builtinCode = op
        c.deprecatedBuiltinCode = min(op, 127)
        c.version = 1
        model.operatorCodes.append(c)
    model.subgraphs = [subgraph]
    model.buffers = buffers
    builder = flatbuffers.Builder(4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def inputs(count: int, seed: int = 0) -> np.ndarray:
    """``count`` int8 samples of the model input: a ramp, one-hot-like, peaked, then uniform.

    No sample holds 512 or more equal maxima in one row: stock TFLM aborts on such int8 rows
    (its sum of exps reaches 2^28; see docs/tflite.md), and the tests compare against stock.
    """
    rng = np.random.default_rng(seed)
    samples = [rng.integers(-128, 128, size=INPUT_SHAPE, dtype=np.int8) for _ in range(count)]
    samples[0] = (np.arange(576) % 256 - 128).astype(np.int8).reshape(INPUT_SHAPE)
    if count > 1:
        onehot = np.full(INPUT_SHAPE, -128, dtype=np.int8)
        onehot[0, ::12] = 127
        samples[1] = onehot
    if count > 2:
        peaked = rng.normal(-60, 20, size=INPUT_SHAPE).clip(-128, 127).astype(np.int8)
        peaked[0, ::37] = 127
        samples[2] = peaked
    return np.stack(samples)


def single(
    shape: tuple[int, ...],
    in_type: str = "int8",
    out_type: str = "int8",
    scale: float | None = 0.05,
    zero: int = 0,
    beta: float = 1.0,
    out_scale: float | None = None,
    out_zero: int | None = None,
    op: str = "SOFTMAX",
) -> bytes:
    """A one-operator model (default SOFTMAX) with the given tensor types and quantization."""
    import flatbuffers

    fb = _schema()
    types = {
        "int8": fb.TensorType.INT8,
        "int16": fb.TensorType.INT16,
        "uint8": fb.TensorType.UINT8,
        "float32": fb.TensorType.FLOAT32,
    }
    defaults = {
        "int8": (1.0 / 256, -128),
        "int16": (1.0 / 65536, -32768),
        "uint8": (1.0 / 256, 0),
        "float32": (None, 0),
    }
    d_scale, d_zero = defaults[out_type]
    out_scale = d_scale if out_scale is None else out_scale
    out_zero = d_zero if out_zero is None else out_zero

    def tensor(name: str, ttype: str, buffer: int, s: float | None, z: int) -> object:
        t = fb.TensorT()
        t.shape = list(shape)
        t.type = types[ttype]
        t.buffer = buffer
        t.name = name
        if s is not None:
            q = fb.QuantizationParametersT()
            q.scale = [s]
            q.zeroPoint = [z]
            t.quantization = q
        return t

    subgraph = fb.SubGraphT()
    subgraph.tensors = [
        tensor("input", in_type, 1, scale, zero),
        tensor("output", out_type, 2, out_scale, out_zero),
    ]
    subgraph.inputs = [0]
    subgraph.outputs = [1]
    o = fb.OperatorT()
    o.opcodeIndex = 0
    o.inputs = [0]
    o.outputs = [1]
    if op == "SOFTMAX":
        o.builtinOptionsType = fb.BuiltinOptions.SoftmaxOptions
        options = fb.SoftmaxOptionsT()
        options.beta = beta
        o.builtinOptions = options
    subgraph.operators = [o]
    c = fb.OperatorCodeT()
    c.builtinCode = getattr(fb.BuiltinOperator, op)
    c.deprecatedBuiltinCode = min(c.builtinCode, 127)
    c.version = 1
    model = fb.ModelT()
    model.version = 3
    model.operatorCodes = [c]
    model.subgraphs = [subgraph]
    model.buffers = [fb.BufferT(), fb.BufferT(), fb.BufferT()]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def single_s16(shape: tuple[int, ...], scale: float = 0.001, zero: int = 0) -> bytes:
    """A one-SOFTMAX model in TFLite's 16x8 convention: int16 in and int16 out (1/32768, 0)."""
    return single(shape, "int16", "int16", scale, zero, out_scale=1.0 / 32768, out_zero=0)


def with_softmax_outputs(data: bytes) -> tuple[bytes, list[tuple[int, int]]]:
    """The same model with every SOFTMAX's input and output tensor appended to the subgraph's
    outputs (so TFLM keeps them and a runner prints them), and their (input, output) positions
    among the outputs, in operator order. The first outputs stay the model's own."""
    import flatbuffers

    fb = _schema()
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(data, 0))
    codes = [max(c.deprecatedBuiltinCode, c.builtinCode) for c in model.operatorCodes]
    sub = model.subgraphs[0]
    outputs = [int(i) for i in sub.outputs]
    pairs = []
    for op in sub.operators:
        if codes[op.opcodeIndex] == fb.BuiltinOperator.SOFTMAX:
            pair = []
            for tensor in (int(op.inputs[0]), int(op.outputs[0])):
                if tensor not in outputs:
                    outputs.append(tensor)
                pair.append(outputs.index(tensor))
            pairs.append((pair[0], pair[1]))
    sub.outputs = outputs
    builder = flatbuffers.Builder(len(data) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), pairs


def digits_inputs(model_json: dict) -> tuple[np.ndarray, np.ndarray]:
    """The 360 held-out digits quantized as the model's input, and their labels."""
    from lutcodegen.model import digits

    d = digits.load()
    x = d.test_images.astype(np.float64) / 16.0
    up = int(model_json.get("upscale", 1))
    if up > 1:
        x = np.kron(x, np.ones((1, up, up)))
    dtype = np.int8 if model_json["input_dtype"] == "int8" else np.int16
    info = np.iinfo(dtype)
    q = np.round(x / model_json["input_scale"]) + model_json["input_zero_point"]
    q = np.clip(q, info.min, info.max).astype(dtype)
    return q.reshape(len(q), *model_json["input_shape"][1:]), d.test_labels
