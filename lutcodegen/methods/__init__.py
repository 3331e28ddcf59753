"""Dispatch from a spec's ``method`` to that method's design, reference model and description.

A method module provides ``design(spec)``, ``reference(design, x)``, ``describe(design)`` and
``template_context(design)`` (the numbers its template prints); adding a method means adding a
module, a template ``<method>.c.j2`` and a line below.
"""

from __future__ import annotations

from typing import Union

import numpy as np

from ..spec import Spec
from . import lut, lut2d, lut_s16, rexp, tflite, tflite_s16

Design = Union[
    lut.LutDesign, rexp.RexpDesign, lut2d.Lut2dDesign, tflite.TfliteDesign,
    lut_s16.LutS16Design, tflite_s16.TfliteS16Design,
]

_MODULES = {"lut": lut, "rexp": rexp, "lut2d": lut2d, "tflite": tflite}

#: Modules of the methods that take int16 input (``Spec.input_bits == 16``).
_MODULES_S16 = {"lut": lut_s16, "tflite": tflite_s16}


def _module(spec: Spec):  # noqa: ANN202 - one of the method modules
    return (_MODULES_S16 if spec.input_bits == 16 else _MODULES)[spec.method]


def design_for(spec: Spec) -> Design:
    """The tables and constants the C and the reference model share."""
    return _module(spec).design(spec)


def reference(dsg: Design, x: np.ndarray) -> np.ndarray:
    """Bit-exact numpy model of the generated C for ``dsg`` (rows in, int outputs out)."""
    return _module(dsg.spec).reference(dsg, x)


def describe(dsg: Design) -> list[str]:
    """Facts about a design: table sizes, widths, the proven error bound."""
    return _module(dsg.spec).describe(dsg)


def template_context(dsg: Design) -> dict[str, object]:
    """Method-specific values for the method's template, merged into the generic context.

    A method whose template needs nothing beyond the generic context may omit the function.
    """
    provider = getattr(_module(dsg.spec), "template_context", None)
    return provider(dsg) if provider is not None else {}
