"""Renders a ``QuantModel`` as one C99 file (optionally with a header): weights as ``const``
tables, the integer kernels, the generated softmax, and ``<prefix>_model_run()``.

All numbers (table contents, struct initializers, scratch offsets) are computed here; the
templates only format. The softmax is whatever method the model was quantized with, rendered
by the ordinary softmax generator and embedded verbatim.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import __version__
from ..methods import describe
from ..methods.lut import LutDesign, recip_divide
from ..render import _environment, render_body
from . import vit
from .quantize import (
    LN_RECIP_BITS,
    LN_UNIT_BITS,
    QAdd,
    QLayerNorm,
    QLinear,
    QuantModel,
    Requant,
)


@dataclass(frozen=True)
class ModelSource:
    """The model's C text: the source, and the header when one was asked for."""

    source: str
    header: str | None = None


@dataclass(frozen=True)
class Table:
    name: str
    ctype: str
    values: np.ndarray
    doc: list[str]


_CTYPES = {np.int8: "int8_t", np.uint8: "uint8_t", np.int32: "int32_t", np.int64: "int64_t"}


class _Tables:
    """Collects the const tables in emission order and hands back their C names."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.items: list[Table] = []

    def add(self, name: str, values: np.ndarray, doc: list[str]) -> str:
        full = f"{self.prefix}_{name}"
        arr = np.asarray(values)
        ctype = _CTYPES[arr.dtype.type]
        self.items.append(Table(full, ctype, arr.reshape(-1), doc))
        return full

    def linear(self, name: str, q: QLinear, what: str, s_in: float, s_out: str) -> dict[str, Any]:
        out_dim, in_dim = q.weight.shape
        rows = q.bias.shape[0]
        return {
            "weight": self.add(
                f"{name}_weight",
                q.weight,
                [
                    f"{what}: weights, {out_dim} x {in_dim} (output channel x input), row-major.",
                    "Format: int8, one scale per output channel (max |w| / 127).",
                ],
            ),
            "bias": self.add(
                f"{name}_bias",
                q.bias,
                [
                    f"{what}: biases, {rows} x {out_dim}, int32 at the accumulator scale "
                    f"{s_in:.6g} * weight scale.",
                ],
            ),
            "mult": self.add(
                f"{name}_mult",
                q.rq.mult,
                [
                    f"{what}: requantization multipliers per output channel (TFLite's "
                    f"QuantizeMultiplier); output = acc * mult * 2^(shift - 31) at {s_out}.",
                ],
            ),
            "shift": self.add(
                f"{name}_shift",
                q.rq.shift,
                [
                    f"{what}: requantization exponents per output channel (-31..30).",
                ],
            ),
            "in_dim": in_dim,
            "out_dim": out_dim,
            "bias_rows": rows,
        }

    def rescale(self, key: str, name: str, q: Requant, columns: int, what: str) -> dict[str, str]:
        """One multiplier and exponent repeated per output column, as CMSIS-NN's matrix product
        takes them (the portable kernels read the first), as the ``<key>_mult`` and
        ``<key>_shift`` fields of the parameters."""
        mult = self.add(
            f"{name}_mult",
            np.repeat(q.mult, columns),
            [f"{what}: TFLite requantization multiplier, the same for each of {columns} columns."],
        )
        shift = self.add(
            f"{name}_shift",
            np.repeat(q.shift, columns),
            [f"{what}: its exponent (factor mult * 2^(shift - 31)), per column."],
        )
        return {f"{key}_mult": mult, f"{key}_shift": shift}

    def layer_norm(self, name: str, q: QLayerNorm, what: str) -> dict[str, Any]:
        return {
            "gain": self.add(
                f"{name}_gain",
                q.gain,
                [
                    f"{what}: sqrt(dim) * gamma / output scale, Q{q.shift - LN_UNIT_BITS}.",
                ],
            ),
            "bias": self.add(
                f"{name}_bias",
                q.bias,
                [
                    f"{what}: beta / output scale, Q{q.shift}.",
                ],
            ),
            "eps": q.eps,
            "dim": len(q.gain),
            "shift": q.shift,
        }


def _add(q: QAdd) -> dict[str, int]:
    return {"mult_a": q.mult_a, "mult_b": q.mult_b, "shift": q.shift}


def softmax_body(qm: QuantModel) -> str:
    """The model's softmax kernel. Attention calls it with rows of exactly ``tokens`` elements,
    so lut's loop for rows a multiple of 16 long is left out where ``tokens`` is not one."""
    tokens = qm.config.tokens
    off = f"the model's rows are {tokens} tokens long" if tokens % 16 else ""
    return render_body(qm.softmax, whole_rows_off=off)


def model_hash(qm: QuantModel, prefix: str) -> str:
    """8 hex digits over the version, the prefix and every integer the model computes with."""
    digest = hashlib.sha256(f"lutcodegen {__version__} {prefix}".encode())
    digest.update(softmax_body(qm).encode())
    for value in _integers(qm):
        digest.update(np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()[:8]


def _integers(qm: QuantModel) -> list[np.ndarray]:
    out: list[np.ndarray] = [qm.cls_row]

    def lin(q: QLinear) -> None:
        out.extend([q.weight, q.bias, q.rq.mult, q.rq.shift])

    def norm(q: QLayerNorm) -> None:
        out.extend([q.gain, q.bias, np.array([q.eps, q.shift])])

    lin(qm.patch)
    for layer in qm.layers:
        norm(layer.ln1)
        lin(layer.qkv)
        out.extend([layer.score.mult, layer.score.shift, layer.context.mult, layer.context.shift])
        lin(layer.out)
        out.append(np.array([layer.add1.mult_a, layer.add1.mult_b, layer.add1.shift]))
        norm(layer.ln2)
        lin(layer.fc1)
        out.append(layer.gelu)
        lin(layer.fc2)
        out.append(np.array([layer.add2.mult_a, layer.add2.mult_b, layer.add2.shift]))
    norm(qm.lnf)
    lin(qm.head)
    return out


def scratch_sizes(c: vit.ViTConfig) -> dict[str, int]:
    """Bytes of each scratch region of ``<prefix>_model_run()``, in layout order (see the
    template); their sum is ``<PREFIX>_SCRATCH_BYTES``, and ``SCRATCH_FORMULA`` says the same.

    The attention scores and their probabilities share ``scores``: the generated softmax may
    write its int8 output over its input, and a head's probabilities are used up by ``P V``
    before the next head's scores overwrite them, so a second T x T region would be dead
    weight (it was 36 % of the scratch at 257 tokens and width 32).
    """
    return {
        "x": c.tokens * c.dim,
        # t first receives the gathered patches (every pixel once), then T x D rows; a model
        # with few tokens and a narrow width can have more pixels than T x D. During attention
        # the matrix product's dense copies of one head's K and V are there (2 T D / H bytes:
        # more than T D only with one head).
        "t": max(c.tokens * c.dim, c.image_size * c.image_size, 2 * c.tokens * c.head_dim),
        "wide": c.tokens * max(3 * c.dim, c.mlp_dim),
        "scores": c.tokens * c.tokens,
        "ctx": c.tokens * c.dim,
    }


#: ``scratch_sizes`` as one formula, for the generated header and the documentation: T
#: tokens, width D, H heads, MLP width F, S x S image pixels.
SCRATCH_FORMULA = "2*T*D + max(T*D, S*S, 2*T*D/H) + T*max(3*D, F) + T*T"


def command_line(prefix: str, method: str) -> str:
    return f"lutcodegen model --prefix {prefix} --softmax {method}"


def _context(qm: QuantModel, prefix: str, header_name: str | None, command: str) -> dict[str, Any]:
    c, s = qm.config, qm.scales
    tables = _Tables(prefix)
    cls_row = tables.add(
        "cls_row",
        qm.cls_row,
        [
            f"Class token plus its position embedding: {c.dim} x int8 at the embedding scale "
            f"{s['embed']:.6g}.",
        ],
    )
    patch = tables.linear(
        "patch_embed",
        qm.patch,
        "Patch embedding (position embedding folded into one bias row per patch)",
        s["image"],
        "the embedding scale",
    )
    layers = []
    for i, layer in enumerate(qm.layers):
        n = f"l{i}."
        layers.append(
            {
                "ln1": tables.layer_norm(f"l{i}_ln1", layer.ln1, f"Layer {i} attention LayerNorm"),
                "qkv": tables.linear(
                    f"l{i}_qkv",
                    layer.qkv,
                    f"Layer {i} Q|K|V projection",
                    s[n + "ln1"],
                    "the Q, K and V scales",
                ),
                **tables.rescale("score", f"l{i}_score", layer.score, c.tokens, f"Layer {i} q.k"),
                **tables.rescale(
                    "context", f"l{i}_context", layer.context, c.head_dim, f"Layer {i} context"
                ),
                "out": tables.linear(
                    f"l{i}_out",
                    layer.out,
                    f"Layer {i} attention output projection",
                    s[n + "ctx"],
                    f"{s[n + 'attn_out']:.6g}",
                ),
                "add1": _add(layer.add1),
                "ln2": tables.layer_norm(f"l{i}_ln2", layer.ln2, f"Layer {i} MLP LayerNorm"),
                "fc1": tables.linear(
                    f"l{i}_fc1",
                    layer.fc1,
                    f"Layer {i} MLP up-projection",
                    s[n + "ln2"],
                    f"{s[n + 'fc1']:.6g}",
                ),
                "gelu": tables.add(
                    f"l{i}_gelu",
                    layer.gelu,
                    [
                        f"Layer {i} GELU: table[x + 128] = round(gelu(x * {s[n + 'fc1']:.6g}) / "
                        f"{s[n + 'gelu']:.6g}), x = -128..127.",
                        "Format: int8.",
                    ],
                ),
                "fc2": tables.linear(
                    f"l{i}_fc2",
                    layer.fc2,
                    f"Layer {i} MLP down-projection",
                    s[n + "gelu"],
                    f"{s[n + 'fc2']:.6g}",
                ),
                "add2": _add(layer.add2),
            }
        )
    lnf = tables.layer_norm("final_norm", qm.lnf, "Final LayerNorm")
    head = tables.linear(
        "classifier", qm.head, "Classifier", s["lnf"], f"the logit scale {s['logits']:.6g}"
    )
    softmax_spec = qm.softmax.spec
    weights = sum(int(t.values.size) for t in tables.items if t.name.endswith("_weight"))
    table_bytes = sum(int(t.values.nbytes) for t in tables.items)
    sizes = scratch_sizes(qm.config)
    facts = [
        f"Vision Transformer: {c.image_size}x{c.image_size} image, {c.patch}x{c.patch} patches, "
        f"{c.tokens} tokens, width {c.dim}, {c.heads} heads, {c.layers} layers, MLP {c.mlp_dim}, "
        f"{c.classes} classes.",
        f"{weights} int8 weights; {table_bytes} bytes of const tables in all.",
        f"Softmax: method {softmax_spec.method}, input scale {softmax_spec.input_scale!r}, "
        f"rows of {softmax_spec.max_row}.",
        f"Scratch: {sum(sizes.values())} bytes, passed in by the caller. Integer-only.",
    ]
    return {
        "version": __version__,
        "command": command,
        "facts": facts,
        "title": f"{prefix}_model_run(): integer-only Vision Transformer, int8 image to logits.",
        "prefix": prefix,
        "PREFIX": prefix.upper(),
        "header_name": header_name,
        "model_hash": model_hash(qm, prefix),
        "config": c,
        "input_size": c.image_size * c.image_size,
        "logit_scale": f"{s['logits']:.6g}",
        "scratch_bytes": sum(sizes.values()),
        "scratch_formula": SCRATCH_FORMULA,
        "sizes": sizes,
        "ln_recip_bits": LN_RECIP_BITS,
        "ln_unit_bits": LN_UNIT_BITS,
        "softmax_source": softmax_body(qm).rstrip("\n"),
        # the softmax's macro prefix where its reciprocal has a divide-instruction form
        "softmax_divide_macro": (
            f"{softmax_spec.prefix.upper()}_RECIP_DIV"
            if isinstance(qm.softmax, LutDesign) and recip_divide(qm.softmax) is not None
            else None
        ),
        "softmax_command": softmax_spec.command_line(),
        "softmax_function": softmax_spec.function_name,
        "softmax_facts": describe(qm.softmax),
        "tables": tables.items,
        "cls_row": cls_row,
        "patch": patch,
        "layers": layers,
        "lnf": lnf,
        "head": head,
    }


def render_model(
    qm: QuantModel, prefix: str = "dvit", header_name: str | None = None, command: str | None = None
) -> ModelSource:
    """C text of the whole model; with ``header_name``, also a header the source includes."""
    if not qm.softmax.spec.prefix.startswith(prefix):
        raise ValueError("the model was quantized for another prefix")
    env = _environment()
    ctx = {
        "g": _context(
            qm, prefix, header_name, command or command_line(prefix, qm.softmax.spec.method)
        )
    }
    source = env.get_template("model/model.c.j2").render(ctx)
    header = env.get_template("model/model.h.j2").render(ctx) if header_name else None
    return ModelSource(source, header)
