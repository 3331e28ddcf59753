"""Turns a design into C text with the jinja2 templates. All numbers are computed here.

Templates live in the top-level ``templates/`` folder of the source tree and are installed as
the ``lutcodegen.templates`` package data, so the same files drive a checkout and a wheel.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import jinja2
import numpy as np

from . import __version__
from .methods import Design, describe, design_for
from .spec import Spec, check_header_name

#: Values per line in emitted tables; with widths up to 10 digits, lines stay under 100 columns.
_PER_LINE = 8


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
    rows = []
    for start in range(0, len(ints), _PER_LINE):
        chunk = ints[start : start + _PER_LINE]
        body = " ".join(f"{v:>{width}}," for v in chunk)
        rows.append(f"{body}  /* {start:3d} */")
    return rows


def _environment() -> jinja2.Environment:
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


def _context(dsg: Design, header_name: str | None) -> dict[str, object]:
    spec = dsg.spec
    sum_ctype = f"uint{dsg.sum_bits}_t"
    product_ctype = f"uint{dsg.product_bits}_t"
    suffix = "u" if dsg.sum_bits == 32 else "ull"
    n_max = (spec.max_row * dsg.top).bit_length()
    return {
        "version": __version__,
        "command": spec.command_line(),
        "facts": describe(dsg),
        "title": f"{spec.function_name}(): {spec.method} softmax, int8 in, {spec.bits}-bit out.",
        "function": spec.function_name,
        "PREFIX": spec.prefix.upper(),
        "guard": f"{spec.prefix.upper()}_SOFTMAX_H",
        "spec": spec,
        "design": dsg,
        "spec_hash": spec_hash(dsg),
        "scale_text": repr(spec.scale),
        "zero_point_abs": 1 << (spec.bits - 1),
        "qmax": (1 << spec.bits) - 1,
        "entry_ctype": f"uint{dsg.entry_bits}_t",
        "sum_ctype": sum_ctype,
        "product_ctype": product_ctype,
        "hex_sum": lambda v: f"0x{v:0{dsg.sum_bits // 4}x}{suffix}",
        "max_half_log2": n_max + dsg.precision - spec.bits - 1,
        "method_template": f"{spec.method}.c.j2",
        "header_name": header_name,
    }


def render(dsg: Design, header_name: str | None = None) -> Generated:
    """C text for ``dsg``. With ``header_name``, a split pair whose source includes that name."""
    if header_name is not None:
        check_header_name(header_name)
    env = _environment()
    context = {"g": _context(dsg, header_name)}
    source = env.get_template("source.c.j2").render(context)
    header = env.get_template("header.h.j2").render(context) if header_name else None
    return Generated(source=source, header=header)


def generate(spec: Spec, header_name: str | None = None) -> Generated:
    """Spec in, C text out: the one call behind the CLI."""
    return render(design_for(spec), header_name)
