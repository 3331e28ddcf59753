"""Turns a design into C text with the jinja2 templates. All numbers are computed here.

Templates live in the top-level ``templates/`` folder of the source tree and are installed as
the ``lutcodegen.templates`` package data, so the same files drive a checkout and a wheel.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import jinja2
import numpy as np

from . import __version__
from .methods import Design, describe, design_for, method_record, template_context
from .spec import Spec, check_header_name

#: At most this many values per line in emitted tables; fewer when wide values would push a
#: line (4 spaces indent, values, 2 spaces and a 9-column index comment) past 100 columns.
_PER_LINE = 8
_LINE_LIMIT = 100


def _template_dir() -> Path:
    """``lutcodegen/templates`` in an installed wheel, else the checkout's ``templates/``."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "templates", package.parent / "templates"):
        if (candidate / "softmax" / "source.c.j2").is_file():
            return candidate
    raise FileNotFoundError(f"templates not found next to {package}; the installation is broken")


def c_array_rows(
    values: Iterable[int] | np.ndarray, per_line: int = _PER_LINE, index: bool = False
) -> list[str]:
    """The one C array formatter: right-aligned ``v,`` items, ``per_line`` to a line.

    With ``index``, each line ends in a ``/* i */`` comment giving its first item's index, and
    wide values get fewer items per line so a line stays within 100 columns.
    """
    ints = [int(v) for v in values]
    width = max(len(str(v)) for v in ints)
    if index:
        per_line = max(1, min(per_line, (_LINE_LIMIT - 4 - 11 + 1) // (width + 2)))
    rows = []
    for start in range(0, len(ints), per_line):
        body = " ".join(f"{v:>{width}}," for v in ints[start : start + per_line])
        rows.append(f"{body}  /* {start:3d} */" if index else body)
    return rows


def hang(opening: str) -> str:
    """Spaces as wide as ``opening``: a continuation line of a C declaration starts under the
    first parameter, whatever the prefix's length, without counting characters by hand."""
    return " " * len(opening)


def table_rows(values: np.ndarray) -> list[str]:
    """Rows of a generated table: at most 8 values a line, each line with its index comment."""
    return c_array_rows(values, _PER_LINE, index=True)


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    """One environment per process, so each template is parsed and compiled once."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_template_dir())),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["table_rows"] = table_rows
    env.filters["c_array_rows"] = c_array_rows
    env.filters["hang"] = hang
    return env


def render_template(name: str, **context: object) -> str:
    """Render one template of the templates folder with ``context`` (no generic values)."""
    return _environment().get_template(name).render(**context)


@dataclass(frozen=True)
class Generated:
    """The C text of one spec: a single file, or a header/source pair."""

    source: str
    header: str | None = None


def spec_hash(dsg: Design) -> str:
    """8 hex digits of SHA-256 over the version and the full command line."""
    text = f"lutcodegen {__version__}: {dsg.spec.command_line()}"
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _context(
    dsg: Design, header_name: str | None, notes: Sequence[str] = (), whole_rows_off: str = ""
) -> dict[str, object]:
    """Generic values every template may use, plus the method's own ``template_context``."""
    spec = dsg.spec
    context: dict[str, object] = {
        "version": __version__,
        "command": spec.command_line(),
        "facts": describe(dsg) + list(notes),
        "title": (
            f"{spec.function_name}(): {spec.method} softmax, int16 in, int16 out."
            if spec.input_bits == 16
            else f"{spec.function_name}(): {spec.method} softmax, int8 in, {spec.bits}-bit out."
        ),
        "function": spec.function_name,
        "PREFIX": spec.prefix.upper(),
        # The guard names the design, not only the upper-cased prefix: headers of prefixes that
        # differ only in case ("lcg", "LCG") would otherwise share it, and the second would be
        # silently skipped. Their macros still share names, which declarations.j2 refuses.
        "guard": f"{spec.prefix.upper()}_SOFTMAX_H_{spec_hash(dsg).upper()}",
        "spec": spec,
        "design": dsg,
        "spec_hash": spec_hash(dsg),
        "scale_text": repr(spec.scale),
        "zero_point_abs": 1 << (spec.bits - 1),
        "qmax": (1 << spec.bits) - 1,
        "method_template": method_record(spec).template,
        "header_name": header_name,
        "accuracy_note": [
            "Bit-exact with lutcodegen's reference model for the same options. Every output is",
            "within 1 LSB of min(round(2^B p), 2^B - 1) - 2^(B-1), p the exact softmax.",
        ],
        "extra_declarations": [],
        # a caller-supplied scratch row (method lut's --scratch-row on sets it)
        "scratch": False,
        # why lut's loop for rows a multiple of 16 long is off by default ("": on)
        "whole_rows_off": whole_rows_off,
        "linkage": "",
    }
    context.update(template_context(dsg))
    return context


def render(
    dsg: Design,
    header_name: str | None = None,
    notes: Sequence[str] = (),
    whole_rows_off: str = "",
) -> Generated:
    """C text for ``dsg``. With ``header_name``, a split pair whose source includes that name.

    ``notes`` are extra banner lines (e.g. what calibration chose and from how many rows).
    ``whole_rows_off``, where a caller knows every row length the kernel will see and none is a
    multiple of 16, says so; ``lut``'s loop for such rows is then off by default (its macro
    ``<PREFIX>_USE_WHOLE_ROWS`` still turns it on), which saves its code.
    """
    if header_name is not None:
        check_header_name(header_name)
    env = _environment()
    context = {"g": _context(dsg, header_name, notes, whole_rows_off)}
    source = env.get_template("softmax/source.c.j2").render(context)
    header = env.get_template("softmax/header.h.j2").render(context) if header_name else None
    return Generated(source=source, header=header)


def render_body(dsg: Design, whole_rows_off: str = "") -> str:
    """The kernel for ``dsg`` without banner or declarations, its entry point ``static``: for
    embedding in another generated file, which then has one banner and exports only what its
    own header declares. ``whole_rows_off`` as for ``render``."""
    context = _context(dsg, None, whole_rows_off=whole_rows_off)
    context["linkage"] = "static "
    return _environment().get_template("softmax/body.c.j2").render({"g": context})


def generate(spec: Spec, header_name: str | None = None) -> Generated:
    """Spec in, C text out, in one call (the CLI keeps the design too, for ``-v``)."""
    return render(design_for(spec), header_name)
