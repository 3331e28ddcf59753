"""CMSIS-NN's ``arm_softmax_s16``, built beside a generated kernel so the bench can count both.

The bench compares ``--method tflite --input-bits 16`` with the incumbent it replaces, CMSIS-NN's
int16 softmax, on the same boards and data. CMSIS-NN is never copied into the repository: its
pinned source (the commit TFLite Micro pins) is unpacked into a cache outside the checkout,
``$LUTCODEGEN_CACHE``, else ``$XDG_CACHE_HOME/lutcodegen``, else ``~/.cache/lutcodegen``, under
``src/CMSIS-NN-<commit12>/`` (the layout the TFLM build helper uses too). A missing tree is
unpacked from the pinned archive in ``$LUTCODEGEN_THIRD_PARTY`` after its SHA-256 is checked.

The wrapper gives ``arm_softmax_s16`` the generated kernel's name and signature and passes it
TFLite's two tables and parameters, exactly what TFLite Micro's CMSIS-NN kernel passes it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
from pathlib import Path

from .methods.tflite_s16 import TfliteS16Design
from .render import table_rows

#: The pinned CMSIS-NN: TFLite Micro's pin, as a ``git archive`` snapshot.
COMMIT = "4ab83cc3cc98fb85ed6dafb55e8ca02f1628dcae"
ARCHIVE = f"CMSIS-NN-{COMMIT[:12]}.tar.xz"
SHA256 = "5cdc853986e208eb98fb67a4128525eb6c2f3929dac814557858910a391992be"
#: The one source file the int16 softmax needs, relative to the tree.
SOFTMAX_S16 = Path("Source") / "SoftmaxFunctions" / "arm_softmax_s16.c"


class CmsisNnError(RuntimeError):
    """The CMSIS-NN tree is missing and cannot be unpacked; the message says how to fix it."""


def cache_dir() -> Path:
    explicit = os.environ.get("LUTCODEGEN_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "lutcodegen"


def source_dir() -> Path:
    return cache_dir() / "src" / f"CMSIS-NN-{COMMIT[:12]}"


def ensure_source() -> Path:
    """The unpacked CMSIS-NN tree, unpacked from ``$LUTCODEGEN_THIRD_PARTY`` if missing."""
    tree = source_dir()
    if (tree / SOFTMAX_S16).is_file():
        return tree
    folder = os.environ.get("LUTCODEGEN_THIRD_PARTY")
    if not folder:
        raise CmsisNnError(
            f"CMSIS-NN is not in {tree}; set LUTCODEGEN_THIRD_PARTY to the folder holding "
            f"{ARCHIVE} (commit {COMMIT}) to unpack it there"
        )
    archive = Path(folder).expanduser() / ARCHIVE
    if not archive.is_file():
        raise CmsisNnError(f"{archive} is missing")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    if digest != SHA256:
        raise CmsisNnError(f"{archive}: sha256 {digest}, expected {SHA256}")
    staging = tree.parent / (tree.name + ".unpack")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with tarfile.open(archive, "r:xz") as tar:
        if hasattr(tarfile, "data_filter"):  # refuse links and paths outside the folder
            tar.extractall(staging, filter="data")
        else:  # the hash above vouches for the content
            tar.extractall(staging)  # noqa: S202
    entries = list(staging.iterdir())
    top = entries[0] if len(entries) == 1 and entries[0].is_dir() else staging
    top.rename(tree)  # complete trees only: an interrupted unpack leaves just the staging folder
    shutil.rmtree(staging, ignore_errors=True)
    return tree


def wrapper_source(dsg: TfliteS16Design) -> str:
    """C source defining ``<prefix>_softmax_s16`` as a call of CMSIS-NN's ``arm_softmax_s16``."""
    spec = dsg.spec
    p = spec.prefix

    def table(name: str, values: object) -> list[str]:
        return [f"static const int16_t {p}_{name}[513] = {{",
                *[f"    {row}" for row in table_rows(values)], "};", ""]

    return "\n".join([
        "/*",
        f" * {spec.function_name}() as CMSIS-NN's arm_softmax_s16 (commit {COMMIT[:12]}), for",
        " * lutcodegen bench: TFLite's exp and 1/(1+x) tables and SoftmaxParams, as TFLite Micro's",
        f" * CMSIS-NN kernel passes them. {spec.command_line()}",
        " */",
        f'#include "{p}_softmax.h"',
        '#include "arm_nnfunctions.h"',
        "",
        *table("exp_lut", dsg.exp_table),
        *table("one_by_one_lut", dsg.recip_table),
        f"int32_t {spec.function_name}(const int16_t *input, int32_t num_rows, int32_t row_size,",
        f"{' ' * (len(spec.function_name) + 9)}int16_t *output)",
        "{",
        f"    const cmsis_nn_softmax_lut_s16 luts = {{{p}_exp_lut, {p}_one_by_one_lut}};",
        "",
        f"    return arm_softmax_s16(input, num_rows, row_size, {dsg.input_multiplier}, "
        f"{dsg.input_left_shift}, &luts,",
        "                           output) == ARM_CMSIS_NN_SUCCESS ? 0 : -1;",
        "}",
        "",
    ])
