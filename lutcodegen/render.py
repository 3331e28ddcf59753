"""Turns a design into C text with the jinja2 templates. All numbers are computed here.

Templates live in the top-level ``templates/`` folder of the source tree and are installed as
the ``lutcodegen.templates`` package data, so the same files drive a checkout and a wheel.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import jinja2
import numpy as np

from . import __version__
from .methods import Design, describe, design_for, template_context
from .spec import Spec, check_header_name

#: At most this many values per line in emitted tables; fewer when wide values would push a
#: line (4 spaces indent, values, 2 spaces and a 9-column index comment) past 100 columns.
_PER_LINE = 8
_LINE_LIMIT = 100


def _template_dir() -> Path:
    """``lutcodegen/templates`` in an installed wheel, else the checkout's ``templates/``."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "templates", package.parent / "templates"):
        if (candidate / "source.c.j2").is_file():
            return candidate
    raise FileNotFoundError(f"templates not found next to {package}; the installation is broken")


def table_rows(values: np.ndarray) -> list[str]:
    """Aligned, comma-separated rows of a table, each ending in an index comment."""
    ints = [int(v) for v in values]
    width = max(len(str(v)) for v in ints)
    per_line = max(1, min(_PER_LINE, (_LINE_LIMIT - 4 - 11 + 1) // (width + 2)))
    rows = []
    for start in range(0, len(ints), per_line):
        chunk = ints[start : start + per_line]
        body = " ".join(f"{v:>{width}}," for v in chunk)
        rows.append(f"{body}  /* {start:3d} */")
    return rows


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
    return env


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
    dsg: Design, header_name: str | None, notes: Sequence[str] = ()
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
        "guard": f"{spec.prefix.upper()}_SOFTMAX_H",
        "spec": spec,
        "design": dsg,
        "spec_hash": spec_hash(dsg),
        "scale_text": repr(spec.scale),
        "zero_point_abs": 1 << (spec.bits - 1),
        "qmax": (1 << spec.bits) - 1,
        "method_template": f"{spec.method}{'_s16' if spec.input_bits == 16 else ''}.c.j2",
        "header_name": header_name,
        "accuracy_note": [
            "Bit-exact with lutcodegen's reference model for the same options. Every output is",
            "within 1 LSB of min(round(2^B p), 2^B - 1) - 2^(B-1), p the exact softmax.",
        ],
        "extra_declarations": [],
    }
    context.update(template_context(dsg))
    return context


def render(
    dsg: Design, header_name: str | None = None, notes: Sequence[str] = ()
) -> Generated:
    """C text for ``dsg``. With ``header_name``, a split pair whose source includes that name.

    ``notes`` are extra banner lines (e.g. what calibration chose and from how many rows).
    """
    if header_name is not None:
        check_header_name(header_name)
    env = _environment()
    context = {"g": _context(dsg, header_name, notes)}
    source = env.get_template("source.c.j2").render(context)
    header = env.get_template("header.h.j2").render(context) if header_name else None
    return Generated(source=source, header=header)


def generate(spec: Spec, header_name: str | None = None) -> Generated:
    """Spec in, C text out, in one call (the CLI keeps the design too, for ``-v``)."""
    return render(design_for(spec), header_name)
