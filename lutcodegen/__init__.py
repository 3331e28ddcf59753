"""lutcodegen: divider-free lookup-table softmax for microcontrollers, as generated C99.

Python API (everything the command line does)::

    import lutcodegen
    spec = lutcodegen.Spec(bits=8, input_scale=1 / 16)
    design = lutcodegen.design_for(spec)          # tables and constants (numpy)
    c_text = lutcodegen.render(design).source     # the C file
    y = lutcodegen.reference(design, x)           # what that C computes, bit for bit
"""

__version__ = "0.1.0"

from .fixedpoint import ideal_output, softmax_float64  # noqa: E402
from .methods import describe, design_for, reference  # noqa: E402
from .render import Generated, generate, render  # noqa: E402
from .spec import METHODS, Spec, SpecError  # noqa: E402

__all__ = [
    "METHODS",
    "Generated",
    "Spec",
    "SpecError",
    "__version__",
    "describe",
    "design_for",
    "generate",
    "ideal_output",
    "reference",
    "render",
    "softmax_float64",
]
