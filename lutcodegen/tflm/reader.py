"""Reads the SOFTMAX operators of a ``.tflite`` model: a small verifying flatbuffer reader.

Why not the generated Python of TFLite's schema (shipped in the ``tflite-micro`` wheel)? The
``flatbuffers`` Python runtime has no verifier: an offset or a length in a corrupted file is
followed as it is, so a damaged model raises whatever exception the bad read happens to hit
(``IndexError``, ``struct.error``, a huge allocation) or, worse, is read as plausible garbage.
This reader checks every offset, length and vtable against the file before it reads, and says at
which byte offset the file is broken. It reads only the fields the softmax operators need (the
slot numbers below are those of ``tensorflow/compiler/mlir/lite/schema/schema.fbs``), and needs
nothing outside the standard library, so ``lutcodegen tflm`` works from a plain install. The
tests compare it with the schema's generated reader on real models.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

#: ``BuiltinOperator.SOFTMAX`` and ``BuiltinOptions.SoftmaxOptions`` in TFLite's schema.
SOFTMAX = 25
SOFTMAX_OPTIONS = 9

#: ``TensorType`` values and their names, as TFLite prints them.
TENSOR_TYPES = {
    0: "float32",
    1: "float16",
    2: "int32",
    3: "uint8",
    4: "int64",
    5: "string",
    6: "bool",
    7: "int16",
    8: "complex64",
    9: "int8",
    10: "float64",
    11: "complex128",
    12: "uint64",
    13: "resource",
    14: "variant",
    15: "uint32",
    16: "uint16",
    17: "int4",
    18: "bfloat16",
    19: "int2",
    20: "uint4",
    21: "float8_e4m3fn",
}

#: A TFLite file starts with the root offset and this file identifier.
FILE_IDENTIFIER = b"TFL3"

#: Tensors of more dimensions than this are refused (TFLM itself supports at most 6 or so).
MAX_DIMENSIONS = 16


class ModelError(ValueError):
    """The file is not a readable TFLite model; the message says where and why."""


@dataclass(frozen=True)
class Quantization:
    """The per-tensor quantization of one tensor (TFLite: real = scale * (q - zero_point))."""

    scale: float | None  #: None when the tensor has no (or per-channel) scale
    zero_point: int | None


@dataclass(frozen=True)
class TensorInfo:
    """What the softmax binding needs of one tensor."""

    index: int
    name: str
    type: int  #: TFLite TensorType
    shape: tuple[int, ...]
    quantization: Quantization

    @property
    def type_name(self) -> str:
        return TENSOR_TYPES.get(self.type, f"type {self.type}")


@dataclass(frozen=True)
class SoftmaxOp:
    """One SOFTMAX operator: where it is, its beta and its input and output tensors."""

    subgraph: int
    index: int  #: operator index within its subgraph
    beta: float
    input: TensorInfo
    output: TensorInfo

    @property
    def where(self) -> str:
        return f"subgraph {self.subgraph} operator {self.index} (SOFTMAX)"

    @property
    def row_size(self) -> int:
        """TFLM's depth: the last dimension."""
        return self.input.shape[-1]

    @property
    def num_rows(self) -> int:
        """TFLM's outer size: the product of all other dimensions."""
        return math.prod(self.input.shape[:-1])


@dataclass(frozen=True)
class ModelInfo:
    """The parts of a model ``lutcodegen tflm`` reads."""

    size: int  #: bytes in the file
    subgraphs: int
    operators: int  #: over all subgraphs
    softmax: tuple[SoftmaxOp, ...]
    inputs: tuple[TensorInfo, ...] = ()  #: the main (first) subgraph's input tensors


class _Buffer:
    """Bounds-checked little-endian reads of flatbuffer primitives from one byte string."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)

    def fail(self, offset: int, what: str) -> ModelError:
        return ModelError(f"byte offset {offset}: {what} (the file has {self.size} bytes)")

    def read(self, fmt: str, offset: int, what: str) -> int | float:
        width = struct.calcsize(fmt)
        if offset < 0 or offset + width > self.size:
            raise self.fail(offset, f"{what} lies outside the file")
        value: int | float = struct.unpack_from("<" + fmt, self.data, offset)[0]
        return value

    def uoffset(self, offset: int, what: str) -> int:
        """Follow the unsigned 32-bit offset stored at ``offset``; it must land inside the file."""
        target = offset + int(self.read("I", offset, what))
        if target >= self.size:
            raise self.fail(offset, f"{what} points to {target}, past the end")
        return target

    def table(self, offset: int, what: str) -> _Table:
        vtable = offset - int(self.read("i", offset, f"{what} (table)"))
        vsize = int(self.read("H", vtable, f"{what} vtable"))
        tsize = int(self.read("H", vtable + 2, f"{what} vtable"))
        if vsize < 4 or vsize % 2 or vtable + vsize > self.size:
            raise self.fail(vtable, f"{what} has a malformed vtable (size {vsize})")
        if offset + tsize > self.size:
            raise self.fail(offset, f"{what} runs past the end of the file")
        return _Table(self, offset, vtable, (vsize - 4) // 2, tsize, what)

    def vector(self, offset: int, element_size: int, what: str) -> tuple[int, int]:
        """(position of the first element, element count) of the vector at ``offset``."""
        count = int(self.read("I", offset, f"{what} (length)"))
        start = offset + 4
        if start + count * element_size > self.size:
            raise self.fail(offset, f"{what} claims {count} elements, more than the file holds")
        return start, count


class _Table:
    """One flatbuffer table: its fields by slot number, every read checked."""

    def __init__(
        self, buf: _Buffer, offset: int, vtable: int, slots: int, size: int, what: str
    ) -> None:
        self.buf, self.offset, self.vtable = buf, offset, vtable
        self.slots, self.size, self.what = slots, size, what

    def _field(self, slot: int, width: int) -> int | None:
        if slot >= self.slots:
            return None
        rel = int(self.buf.read("H", self.vtable + 4 + 2 * slot, f"{self.what} vtable"))
        if rel == 0:
            return None
        if rel + width > self.size:
            raise self.buf.fail(self.offset, f"{self.what} field {slot} lies outside its table")
        return self.offset + rel

    def scalar(self, slot: int, fmt: str, default: int | float) -> int | float:
        pos = self._field(slot, struct.calcsize(fmt))
        return default if pos is None else self.buf.read(fmt, pos, f"{self.what} field {slot}")

    def child(self, slot: int, what: str) -> _Table | None:
        pos = self._field(slot, 4)
        if pos is None:
            return None
        return self.buf.table(self.buf.uoffset(pos, what), what)

    def _vector(self, slot: int, size: int, what: str) -> tuple[int, int] | None:
        pos = self._field(slot, 4)
        if pos is None:
            return None
        return self.buf.vector(self.buf.uoffset(pos, what), size, what)

    def scalars(self, slot: int, fmt: str, what: str) -> list[int | float]:
        found = self._vector(slot, struct.calcsize(fmt), what)
        if found is None:
            return []
        start, count = found
        width = struct.calcsize(fmt)
        return [
            v
            for (v,) in struct.iter_unpack("<" + fmt, self.buf.data[start : start + count * width])
        ]

    def tables(self, slot: int, what: str) -> list[_Table]:
        found = self._vector(slot, 4, what)
        if found is None:
            return []
        start, count = found
        return [
            self.buf.table(self.buf.uoffset(start + 4 * i, f"{what}[{i}]"), f"{what}[{i}]")
            for i in range(count)
        ]

    def string(self, slot: int, what: str) -> str:
        found = self._vector(slot, 1, what)
        if found is None:
            return ""
        start, count = found
        return self.buf.data[start : start + count].decode("utf-8", errors="replace")


def _opcode(table: _Table) -> int:
    """The builtin code: the larger of the deprecated byte field and the int32 field."""
    deprecated = int(table.scalar(0, "b", 0))
    return max(deprecated, int(table.scalar(3, "i", 0)))


def _tensor(tensors: list[_Table], index: int, where: str, role: str) -> TensorInfo:
    if not 0 <= index < len(tensors):
        raise ModelError(f"{where}: {role} tensor index {index} is outside 0..{len(tensors) - 1}")
    t = tensors[index]
    shape = tuple(int(d) for d in t.scalars(0, "i", f"tensor {index} shape"))
    if len(shape) > MAX_DIMENSIONS:
        raise ModelError(f"{where}: {role} tensor {index} has {len(shape)} dimensions")
    q = t.child(4, f"tensor {index} quantization")
    scale: float | None = None
    zero: int | None = None
    if q is not None:
        scales = q.scalars(2, "f", f"tensor {index} scales")
        zeros = q.scalars(3, "q", f"tensor {index} zero points")
        if len(scales) == 1:
            scale = float(scales[0])
        if len(zeros) == 1:
            zero = int(zeros[0])
    return TensorInfo(
        index,
        t.string(3, f"tensor {index} name"),
        int(t.scalar(1, "b", 0)),
        shape,
        Quantization(scale, zero),
    )


def read_model(data: bytes) -> ModelInfo:
    """Every SOFTMAX operator of every subgraph of the model in ``data``, checked as it is read.

    Raises :class:`ModelError` (a ``ValueError``) for anything that is not a well-formed TFLite
    flatbuffer; the message names the byte offset, or the operator, that is wrong.
    """
    buf = _Buffer(bytes(data))
    if buf.size < 8:
        raise ModelError(f"{buf.size} bytes is too short for a TFLite model")
    if data[4:8] != FILE_IDENTIFIER:
        raise ModelError(
            f"not a TFLite model: bytes 4..7 are {bytes(data[4:8])!r}, not {FILE_IDENTIFIER!r}"
        )
    model = buf.table(buf.uoffset(0, "root offset"), "model")
    codes = [_opcode(c) for c in model.tables(1, "operator_codes")]
    subgraphs = model.tables(2, "subgraphs")
    ops_seen = 0
    found: list[SoftmaxOp] = []
    model_inputs: list[TensorInfo] = []
    for s, sub in enumerate(subgraphs):
        tensors = sub.tables(0, f"subgraph {s} tensors")
        if s == 0:
            model_inputs = [
                _tensor(tensors, int(t), "subgraph 0", "input")
                for t in sub.scalars(1, "i", "subgraph 0 inputs")
            ]
        for i, op in enumerate(sub.tables(3, f"subgraph {s} operators")):
            ops_seen += 1
            where = f"subgraph {s} operator {i}"
            code_index = int(op.scalar(0, "I", 0))
            if code_index >= len(codes):
                raise ModelError(
                    f"{where}: opcode index {code_index} is outside the {len(codes)} operator codes"
                )
            if codes[code_index] != SOFTMAX:
                continue
            inputs = [int(v) for v in op.scalars(1, "i", f"{where} inputs")]
            outputs = [int(v) for v in op.scalars(2, "i", f"{where} outputs")]
            if len(inputs) != 1 or len(outputs) != 1:
                raise ModelError(
                    f"{where} (SOFTMAX): has {len(inputs)} inputs and "
                    f"{len(outputs)} outputs, TFLite's SOFTMAX has one of each"
                )
            beta = 0.0  # TFLM's parser leaves beta 0 when the options are missing
            if int(op.scalar(3, "B", 0)) == SOFTMAX_OPTIONS:
                options = op.child(4, f"{where} SoftmaxOptions")
                if options is not None:
                    beta = float(options.scalar(0, "f", 0.0))
            found.append(
                SoftmaxOp(
                    s,
                    i,
                    beta,
                    _tensor(tensors, inputs[0], f"{where} (SOFTMAX)", "input"),
                    _tensor(tensors, outputs[0], f"{where} (SOFTMAX)", "output"),
                )
            )
    return ModelInfo(buf.size, len(subgraphs), ops_seen, tuple(found), tuple(model_inputs))
