"""The method records: for each method, the functions and files that make it.

A method is a module here providing ``design(spec)``, ``reference(design, x)``,
``describe(design)`` and ``template_context(design)`` (the numbers its template prints), a
template ``templates/softmax/<method>.c.j2``, and one ``Method`` record below. Its options are
the ``registry.OPTIONS`` entries that name it; ``registry.METHODS`` lists its name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..registry import METHODS, Option, options_of
from ..spec import Spec
from . import lut, lut2d, rexp, tflite


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

    @property
    def template(self) -> str:
        """The method's template, included by ``softmax/source.c.j2``."""
        return f"softmax/{self.name}.c.j2"

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


def method(name: str) -> Method:
    """The record of method ``name``."""
    return METHOD_RECORDS[name]


def design_for(spec: Spec) -> Design:
    """The tables and constants the C and the reference model share.

    The paper methods check ``max_table_bytes`` before building (their tables grow with the
    options); the others have tables of at most a few KiB and are checked once built."""
    dsg: Design = METHOD_RECORDS[spec.method].design(spec)
    from .paper import check_table_bytes

    check_table_bytes(spec, dsg.table_bytes)
    return dsg


def check_rows(dsg: Design, x: object) -> np.ndarray:
    """``x`` if it is what the C kernel accepts: an int8 numpy array whose last axis is a row
    of 1..max_row elements. Anything else raises one error, the same for every method, instead
    of a silent answer: a uint8 200 is -56 to the C, a float is not an input at all, and an
    int64 array may hold values no int8 buffer can.

    Raises ``TypeError`` for anything but an int8 ``numpy.ndarray`` (lists, bool, uint8, int16,
    int64, floats), and ``ValueError`` for a scalar or a row length outside 1..max_row.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(
            f"reference() takes an int8 numpy array of rows, got {type(x).__name__}; "
            "convert with np.asarray(x, dtype=np.int8) once the values are known to fit"
        )
    if x.dtype != np.int8:
        raise TypeError(
            f"reference() takes an int8 numpy array of rows (what the C kernel reads), got "
            f"dtype {x.dtype}"
        )
    if x.ndim < 1:
        raise ValueError("reference() takes rows: an array with at least one axis, got a scalar")
    max_row = dsg.spec.max_row
    if not 1 <= x.shape[-1] <= max_row:
        raise ValueError(f"row length {x.shape[-1]} outside 1..{max_row}")
    return x


def reference(dsg: Design, x: np.ndarray) -> np.ndarray:
    """Bit-exact numpy model of the generated C for ``dsg``: int8 rows (..., L) in, int64
    outputs of the same shape out. ``x`` is checked by ``check_rows``."""
    return METHOD_RECORDS[dsg.spec.method].reference(dsg, check_rows(dsg, x))


def describe(dsg: Design) -> list[str]:
    """Facts about a design: table sizes, widths, the proven error bound."""
    return METHOD_RECORDS[dsg.spec.method].describe(dsg)


def template_context(dsg: Design) -> dict[str, object]:
    """Method-specific values for the method's template, merged into the generic context."""
    return METHOD_RECORDS[dsg.spec.method].template_context(dsg)
