"""CMSIS-NN from its pinned source: ``arm_softmax_s16`` beside a generated kernel, so the bench
can count both, and the matrix product the generated attention model calls when built with
``DVIT_CMSIS_NN=1`` (``model_sources``).

The bench compares ``--method tflite --input-bits 16`` with the incumbent it replaces, CMSIS-NN's
int16 softmax, on the same boards and data. CMSIS-NN is never copied into the repository: its
pinned source (the commit TFLite Micro pins) comes from the TFLM build helper's cache outside the
checkout (``lutcodegen.tflm.build``: ``src/CMSIS-NN-<commit12>/``, unpacked by
``python -m lutcodegen.tflm.build fetch`` or from ``$LUTCODEGEN_THIRD_PARTY``, never fetched
from the network here).

The wrapper gives ``arm_softmax_s16`` the generated kernel's name and signature and passes it
TFLite's two tables and parameters, exactly what TFLite Micro's CMSIS-NN kernel passes it.
"""

from __future__ import annotations

from pathlib import Path

from ..methods.tflite_s16 import TfliteS16Design
from ..render import render_template
from ..tflm import build as tflm_build

#: The one source file the int16 softmax needs, relative to the tree.
SOFTMAX_S16 = Path("Source") / "SoftmaxFunctions" / "arm_softmax_s16.c"

#: The one source file the attention model's CMSIS-NN build needs: ``arm_nn_mat_mult_nt_t_s8``.
MAT_MULT_S8 = Path("Source") / "NNSupportFunctions" / "arm_nn_mat_mult_nt_t_s8.c"


class CmsisNnError(RuntimeError):
    """The CMSIS-NN tree is missing and cannot be unpacked; the message says how to fix it."""


def ensure_source() -> Path:
    """The unpacked CMSIS-NN tree (TFLM's pin), unpacked into the cache if it is missing."""
    tree = tflm_build.source_dir("CMSIS-NN")
    if not (tree / SOFTMAX_S16).is_file():
        try:
            tflm_build.ensure_sources()
        except tflm_build.TflmBuildError as exc:
            raise CmsisNnError(str(exc)) from None
    return tree


def model_sources() -> tuple[list[Path], Path]:
    """The CMSIS-NN sources and include folder a model built with ``<PREFIX>_CMSIS_NN=1``
    needs, from the unpacked pinned tree."""
    tree = ensure_source()
    return [tree / MAT_MULT_S8], tree / "Include"


def wrapper_source(dsg: TfliteS16Design) -> str:
    """C source defining ``<prefix>_softmax_s16`` as a call of CMSIS-NN's ``arm_softmax_s16``."""
    return render_template(
        "firmware/cmsis_nn_s16.c.j2",
        spec=dsg.spec,
        exp_table=dsg.exp_table,
        recip_table=dsg.recip_table,
        multiplier=dsg.input_multiplier,
        shift=dsg.input_left_shift,
    )
