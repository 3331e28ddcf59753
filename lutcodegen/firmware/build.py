"""Build-time support for firmware: generated kernels, golden vectors, and the emulated boards.

PlatformIO extra scripts call into this module so that a firmware build never carries a stale
copy of generated C: every build regenerates the kernel from the options in ``platformio.ini``
(``custom_lutcodegen_*``), into the build folder. Files are rewritten only when their text
changes, so an unchanged configuration does not recompile.

The golden vectors are the host reference model's outputs for rows the on-target tests feed to
the compiled kernels; the target compares its own outputs with them bit for bit.
"""

from __future__ import annotations

import configparser
import dataclasses
import os
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .. import __version__
from ..methods import Design, design_for, reference
from ..registry import OPTION_BY_NAME, OPTIONS
from ..render import render, render_template
from ..spec import Spec, SpecError
from .boards import Board, boards

#: Spec fields that ``custom_lutcodegen_<field>`` options (and ``LUTCODEGEN_<FIELD>``) can set:
#: every option of the registry.
SPEC_OPTIONS = tuple(option.name for option in OPTIONS)

#: Name of the generated header that tells handwritten firmware which kernel was generated.
CONFIG_HEADER = "lutcodegen_config.h"

#: Row lengths always tested on target (plus the kernel's max_row), as the issue asks for:
#: the shortest rows, odd lengths, SIMD-friendly lengths (16: the SIMD32 maximum's one whole
#: step) and the last one-byte length.
GOLDEN_LENGTHS = (1, 2, 3, 6, 16, 17, 64, 255)


def convert_option(field: str, text: str) -> object:
    """Text of option ``field`` as the Spec field's type (``ValueError`` if it does not parse)."""
    try:
        return OPTION_BY_NAME[field].parse(text)
    except SpecError as exc:
        raise ValueError(str(exc)) from None


def spec_from_options(get: Callable[[str], str | None], defaults: Spec | None = None) -> Spec:
    """A Spec from option lookups; ``get(field)`` returns the text of one option or None.

    Environment variables ``LUTCODEGEN_<FIELD>`` win over the lookups, so a tool (the bench) can
    build one project in several configurations without editing ``platformio.ini``.
    """
    base = defaults or Spec()
    values: dict[str, object] = {}
    for field in SPEC_OPTIONS:
        text = os.environ.get(f"LUTCODEGEN_{field.upper()}") or get(field)
        if text is None or str(text).strip() == "":
            if getattr(base, field) is not None:
                values[field] = getattr(base, field)
            continue
        try:
            values[field] = convert_option(field, str(text).strip())
        except ValueError:
            raise SpecError(f"option {field} = {text!r} is not a valid value") from None
    return Spec(**values)  # type: ignore[arg-type]


def parse_spec_line(line: str, prefix: str, method: str = "lut") -> Spec:
    """``"bits=4 input_scale=0.25"`` -> Spec with that prefix (used for the test kernels).

    The method defaults to the main kernel's, so switching ``custom_lutcodegen_method`` tests
    the new method at every configured width without editing the test specs.
    """
    values: dict[str, object] = {"prefix": prefix, "method": method}
    for word in shlex.split(line):
        key, sep, value = word.partition("=")
        if not sep or key not in SPEC_OPTIONS or key == "prefix":
            raise SpecError(
                f"test spec item {word!r}: want field=value, field in "
                f"{', '.join(f for f in SPEC_OPTIONS if f != 'prefix')}"
            )
        values[key] = convert_option(key, value)
    return Spec(**values)  # type: ignore[arg-type]


def write_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` unless the file already holds it; keeps SCons from rebuilding needlessly."""
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8", newline="\n")
    os.replace(tmp, path)
    return True


def kernel_files(dsg: Design) -> dict[str, str]:
    """File name -> text of one generated kernel: ``<prefix>_softmax.c`` and ``.h``."""
    base = f"{dsg.spec.prefix}_softmax"
    generated = render(dsg, header_name=f"{base}.h")
    assert generated.header is not None
    return {f"{base}.c": generated.source, f"{base}.h": generated.header}


def config_header(dsg: Design) -> str:
    """``lutcodegen_config.h``: the generated kernel's name and types under fixed names.

    Handwritten firmware includes this instead of naming ``lcg_softmax_s8`` directly, so a
    change of prefix, method or output width in ``platformio.ini`` needs no source edit.
    """
    return render_template("firmware/lutcodegen_config.h.j2", version=__version__, spec=dsg.spec)


def generate_kernel(spec: Spec, out_dir: Path) -> Design:
    """Write the kernel for ``spec`` and ``lutcodegen_config.h`` into ``out_dir``."""
    dsg = design_for(spec)
    for name, text in kernel_files(dsg).items():
        write_if_changed(out_dir / name, text)
    write_if_changed(out_dir / CONFIG_HEADER, config_header(dsg))
    return dsg


# --- golden vectors ---------------------------------------------------------------------------

#: What each row of a golden case holds, in order (the failure messages index into this).
GOLDEN_ROWS = (
    "all 0",
    "all 127",
    "all -128",
    "127 first, rest -128",
    "127 last, rest -128",
    "-127 first, rest -128",
    "uniform random",
    "uniform random",
    "narrow gaussian around a random centre",
)


def golden_rows(length: int) -> np.ndarray:
    """The rows fed to every kernel at one row length; seeded by the length, so reproducible."""
    rng = np.random.default_rng(20240 + length)
    rows = np.full((len(GOLDEN_ROWS), length), -128, dtype=np.int64)
    rows[0] = 0
    rows[1] = 127
    rows[3, 0] = 127
    rows[4, -1] = 127
    rows[5, 0] = -127
    rows[6] = rng.integers(-128, 128, size=length)
    rows[7] = rng.integers(-128, 128, size=length)
    centre = rng.integers(-100, 100)
    rows[8] = np.clip(np.rint(centre + 6.0 * rng.standard_normal(length)), -128, 127)
    return rows.astype(np.int8)


def golden_rows16(length: int) -> np.ndarray:
    """The int16 counterpart of ``golden_rows``: the same kinds of rows at the int16 extremes."""
    rng = np.random.default_rng(40960 + length)
    rows = np.full((len(GOLDEN_ROWS), length), -32768, dtype=np.int64)
    rows[0] = 0
    rows[1] = 32767
    rows[3, 0] = 32767
    rows[4, -1] = 32767
    rows[5, 0] = -32767
    rows[6] = rng.integers(-32768, 32768, size=length)
    rows[7] = rng.integers(-32768, 32768, size=length)
    centre = rng.integers(-25000, 25000)
    rows[8] = np.clip(np.rint(centre + 1500.0 * rng.standard_normal(length)), -32768, 32767)
    return rows.astype(np.int16)


def golden_lengths(max_row: int) -> list[int]:
    return sorted({n for n in GOLDEN_LENGTHS if n <= max_row} | {max_row})


def parse_flip(text: str | None) -> tuple[int, int, int] | None:
    """``"kernel:length:position"`` -> the expected value to corrupt (see ``golden_source``)."""
    if not text:
        return None
    try:
        kernel, length, position = (int(v) for v in text.split(":"))
    except ValueError:
        raise SpecError(f"LUTCODEGEN_GOLDEN_FLIP={text!r}: want kernel:length:position") from None
    return kernel, length, position


def golden_source(designs: Sequence[Design], flip: tuple[int, int, int] | None = None) -> str:
    """C source defining ``golden_kernels`` and ``golden_cases`` (types in ``golden.h``).

    ``flip = (kernel, length, position)`` changes that one expected value by one LSB. It exists
    to prove the harness can fail: with it, ``pio test`` must report exactly that mismatch.
    """
    lengths = sorted(
        {n for d in designs for n in golden_lengths(d.spec.max_row) if d.spec.input_bits == 8}
    )
    lengths16 = sorted(
        {n for d in designs for n in golden_lengths(d.spec.max_row) if d.spec.input_bits == 16}
    )
    inputs = {(8, n): golden_rows(n) for n in lengths}
    inputs.update({(16, n): golden_rows16(n) for n in lengths16})
    cases = []
    for k, dsg in enumerate(designs):
        width = dsg.spec.input_bits
        for n in golden_lengths(dsg.spec.max_row):
            expected = reference(dsg, inputs[width, n]).ravel()
            if flip is not None and flip[:2] == (k, n):
                top = (1 << (dsg.spec.bits - 1)) - 1
                expected[flip[2]] += 1 if expected[flip[2]] < top else -1
            cases.append(
                {
                    "kernel": k,
                    "length": n,
                    "ctype": dsg.spec.output_ctype,
                    "expected": expected,
                    "input8": f"input8_{n}" if width == 8 else "NULL",
                    "input16": f"input16_{n}" if width == 16 else "NULL",
                }
            )
    kernels = []
    for dsg in designs:
        spec = dsg.spec
        wide = spec.input_bits == 16
        scratch = spec.scratch_row == "on"
        # a kernel with a scratch row is called through a wrapper with the common signature
        called = f"{spec.prefix}_with_scratch" if scratch else spec.function_name
        kernels.append(
            {
                "prefix": spec.prefix,
                "PREFIX": spec.prefix.upper(),
                "name": f"{spec.method} bits={spec.bits} input_scale={spec.input_scale!r} "
                f"beta={spec.beta!r} max_row={spec.max_row}"
                + (" input_bits=16" if wide else "")
                + (" scratch_row=on" if scratch else ""),
                "s8": called if spec.bits <= 8 else "NULL",
                "s16": called if spec.bits > 8 and not wide else "NULL",
                "in16": called if wide else "NULL",
                "scratch": scratch,
                "function": spec.function_name,
                "out_ctype": spec.output_ctype,
            }
        )
    return render_template(
        "firmware/golden_vectors.c.j2",
        version=__version__,
        row_kinds=GOLDEN_ROWS,
        kernels=kernels,
        inputs=[
            (f"int{w}_t", f"input{w}_{n}", rows.ravel()) for (w, n), rows in sorted(inputs.items())
        ],
        cases=cases,
    )


def generate_golden(
    main: Spec, extra_lines: Sequence[str], out_dir: Path, flip: tuple[int, int, int] | None = None
) -> list[Design]:
    """Write the test kernels and ``golden_vectors.c``; the main kernel is case group 0.

    Test kernels get prefixes ``golden1``, ``golden2``, ... so they link beside the main one.
    """
    designs = [design_for(main)]
    for i, line in enumerate((ln for ln in extra_lines if ln.strip()), start=1):
        spec = parse_spec_line(line, prefix=f"golden{i}", method=main.method)
        dsg = design_for(spec)
        for name, text in kernel_files(dsg).items():
            write_if_changed(out_dir / name, text)
        designs.append(dsg)
    write_if_changed(out_dir / "golden_vectors.c", golden_source(designs, flip))
    return designs


def bench_header(lengths: Sequence[int], max_row: int) -> str:
    """``bench_config.h``: the row lengths the benchmark firmware measures (those <= max_row)."""
    kept = [n for n in lengths if 1 <= n <= max_row]
    if not kept:
        raise SpecError(f"no bench length in {list(lengths)} fits max_row={max_row}")
    return render_template("firmware/bench_config.h.j2", lengths=kept)


# --- the firmware project and its emulated boards ----------------------------------------------


def find_firmware_dir(explicit: str | None = None) -> Path | None:
    """The ``firmware/`` project: ``explicit``, else next to this package in a checkout."""
    candidates = (
        [Path(explicit)]
        if explicit
        else [
            Path(__file__).resolve().parent.parent / "firmware",
            Path.cwd() / "firmware",
            Path.cwd(),
        ]
    )
    for path in candidates:
        if (path / "platformio.ini").is_file() and (path / "platforms" / "emu").is_dir():
            return path.resolve()
    return None


def emulated_boards(firmware_dir: Path) -> list[Board]:
    """Environments of ``platformio.ini`` whose board is in the board registry, in file order."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(firmware_dir / "platformio.ini", encoding="utf-8")
    known = boards()
    found = []
    for section in parser.sections():
        board = parser.get(section, "board", fallback="")
        if section.startswith("env:") and board in known:
            found.append(dataclasses.replace(known[board], env=section[4:]))
    return found


def pio_environment(firmware_dir: Path) -> dict[str, str]:
    """Environment for running ``pio`` offline and quietly, with a project-local core folder."""
    env = dict(os.environ)
    env["PLATFORMIO_CORE_DIR"] = str(firmware_dir / ".pio-core")
    env["PLATFORMIO_SETTING_ENABLE_TELEMETRY"] = "No"
    env["PLATFORMIO_SETTING_CHECK_PLATFORMIO_INTERVAL"] = "36500"
    return env
