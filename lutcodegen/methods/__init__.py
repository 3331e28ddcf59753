"""The method records: for each method, the functions and files that make it.

A method is a module here providing ``design(spec)``, ``reference(design, x)``,
``describe(design)`` and ``template_context(design)`` (the numbers its template prints), a
template ``templates/softmax/<method>.c.j2``, and one ``Method`` record below. Its options are
the ``registry.OPTIONS`` entries that name it; ``registry.METHODS`` lists its name.

A method that also takes int16 input (``--input-bits 16``) has a second record in
``METHOD_RECORDS_S16``, with its own module and template ``<method>_s16.c.j2``: the int16 kernels
share the method's name, options and guarantees, not its tables or arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..registry import INT16_INPUT_METHODS, METHODS, Option, options_of
from ..spec import Spec
from . import lut, lut2d, lut_s16, rexp, tflite, tflite_s16


class Design(Protocol):
    """What every method's design offers the generic code: its spec and its table bytes."""

    @property
    def spec(self) -> Spec: ...

    @property
    def table_bytes(self) -> int: ...


@dataclass(frozen=True)
class Method:
    """One softmax method: how to design, model, describe and render it.

    The callables take the method's own design type (``design_type``); the generic functions
    below dispatch on ``design.spec.method``, so callers never name a method module.
    """

    name: str
    summary: str
    design: Callable[[Spec], Any]
    reference: Callable[[Any, np.ndarray], np.ndarray]
    describe: Callable[[Any], list[str]]
    template_context: Callable[[Any], dict[str, object]]
    design_type: type
    #: Rules that span several options (``Spec`` checks each option's own domain first).
    check: Callable[[Spec], None] | None = None
    #: Width of the input elements this record's kernels take (8, or 16 for ``*_s16``).
    input_bits: int = 8

    @property
    def template(self) -> str:
        """The method's template, included by ``softmax/source.c.j2``."""
        suffix = "_s16" if self.input_bits == 16 else ""
        return f"softmax/{self.name}{suffix}.c.j2"

    @property
    def options(self) -> tuple[Option, ...]:
        """The registry options only this method (and maybe others) takes."""
        return options_of(self.name)


#: Every method, by name, in ``registry.METHODS`` order.
METHOD_RECORDS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            "lut",
            "exp table, exact integer sum, divider-free reciprocal (default)",
            lut.design,
            lut.reference,
            lut.describe,
            lut.template_context,
            lut.LutDesign,
        ),
        Method(
            "rexp",
            "paper method: reciprocal-exponential numerator and a sum-bucket coefficient",
            rexp.design,
            rexp.reference,
            rexp.describe,
            rexp.template_context,
            rexp.RexpDesign,
        ),
        Method(
            "lut2d",
            "paper method: numerator and sum bucket index a 2D table of outputs",
            lut2d.design,
            lut2d.reference,
            lut2d.describe,
            lut2d.template_context,
            lut2d.Lut2dDesign,
        ),
        Method(
            "tflite",
            "TFLite Micro's int8 softmax, bit for bit",
            tflite.design,
            tflite.reference,
            tflite.describe,
            tflite.template_context,
            tflite.TfliteDesign,
            check=tflite.check_spec,
        ),
    )
}
assert tuple(METHOD_RECORDS) == METHODS, "registry.METHODS and the method records disagree"

#: The methods that take int16 input, by name, in ``registry.INT16_INPUT_METHODS`` order.
METHOD_RECORDS_S16: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            "lut",
            "int16 input: two-level exp table, exact sum, divider-free reciprocal, 1 LSB proven",
            lut_s16.design,
            lut_s16.reference,
            lut_s16.describe,
            lut_s16.template_context,
            lut_s16.LutS16Design,
            input_bits=16,
        ),
        Method(
            "tflite",
            "TFLite Micro's int16 softmax, bit for bit, its tables const",
            tflite_s16.design,
            tflite_s16.reference,
            tflite_s16.describe,
            tflite_s16.template_context,
            tflite_s16.TfliteS16Design,
            check=tflite_s16.check_spec,
            input_bits=16,
        ),
    )
}
assert tuple(METHOD_RECORDS_S16) == INT16_INPUT_METHODS, "INT16_INPUT_METHODS disagrees"


def method(name: str) -> Method:
    """The record of method ``name`` (int8 input)."""
    return METHOD_RECORDS[name]


def method_record(spec: Spec) -> Method:
    """The record that makes ``spec``'s kernel: by method name and input width."""
    records = METHOD_RECORDS_S16 if spec.input_bits == 16 else METHOD_RECORDS
    return records[spec.method]


def design_for(spec: Spec) -> Design:
    """The tables and constants the C and the reference model share.

    The paper methods check ``max_table_bytes`` before building (their tables grow with the
    options); the others have tables of at most a few KiB and are checked once built."""
    dsg: Design = method_record(spec).design(spec)
    from .paper import check_table_bytes

    check_table_bytes(spec, dsg.table_bytes)
    return dsg


def check_rows(dsg: Design, x: object) -> np.ndarray:
    """``x`` if it is what the C kernel accepts: an int8 numpy array (int16 for 16-bit input)
    whose last axis is a row of 1..max_row elements. Anything else raises one error, the same
    for every method, instead of a silent answer: a uint8 200 is -56 to the C, a float is not
    an input at all, and an int64 array may hold values no int8 buffer can.

    Raises ``TypeError`` for anything but a ``numpy.ndarray`` of the kernel's input type (lists,
    bool, uint8, other integer widths, floats), and ``ValueError`` for a scalar or a row length
    outside 1..max_row.
    """
    want = np.dtype(np.int16 if dsg.spec.input_bits == 16 else np.int8)
    if not isinstance(x, np.ndarray):
        raise TypeError(
            f"reference() takes an {want} numpy array of rows, got {type(x).__name__}; "
            f"convert with np.asarray(x, dtype=np.{want}) once the values are known to fit"
        )
    if x.dtype != want:
        raise TypeError(
            f"reference() takes an {want} numpy array of rows (what the C kernel reads), got "
            f"dtype {x.dtype}"
        )
    if x.ndim < 1:
        raise ValueError("reference() takes rows: an array with at least one axis, got a scalar")
    max_row = dsg.spec.max_row
    if not 1 <= x.shape[-1] <= max_row:
        raise ValueError(f"row length {x.shape[-1]} outside 1..{max_row}")
    return x


def reference(dsg: Design, x: np.ndarray) -> np.ndarray:
    """Bit-exact numpy model of the generated C for ``dsg``: int8 rows (..., L) in (int16 for
    16-bit input), int64 outputs of the same shape out. ``x`` is checked by ``check_rows``."""
    return method_record(dsg.spec).reference(dsg, check_rows(dsg, x))


def describe(dsg: Design) -> list[str]:
    """Facts about a design: table sizes, widths, the proven error bound."""
    return method_record(dsg.spec).describe(dsg)


def template_context(dsg: Design) -> dict[str, object]:
    """Method-specific values for the method's template, merged into the generic context."""
    return method_record(dsg.spec).template_context(dsg)
