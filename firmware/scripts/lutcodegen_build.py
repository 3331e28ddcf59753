"""PlatformIO extra script: generate the softmax kernel into the build folder and compile it.

Used two ways, with the same options:
- by this firmware project (``extra_scripts = pre:scripts/lutcodegen_build.py``);
- by any project that uses lutcodegen as a library (``library.json`` ``build.extraScript``).

Options, in ``platformio.ini`` (each may be overridden by an environment variable
``LUTCODEGEN_<NAME>``): ``custom_lutcodegen_<name>`` for every generator option of
``lutcodegen.registry.OPTIONS`` (``_method``, ``_bits``, ``_input_scale``, ``_beta``,
``_max_row``, ``_prefix``, ``_table_layout``, ``_unroll`` and each method's own options).
Unset options take the generator's defaults.

The generated ``<prefix>_softmax.c/.h`` and ``lutcodegen_config.h`` live in
``$BUILD_DIR/lutcodegen`` and are never committed; sources include ``lutcodegen_config.h``.
"""

import inspect
import os
import sys
from pathlib import Path

Import("env")  # noqa: F821 (provided by SCons)

# Use the generator of the checkout that holds this script (the library's own version), so the
# C always matches this library.json; fall back to one installed in PlatformIO's Python.
_here = os.path.dirname(os.path.abspath(inspect.getframeinfo(inspect.currentframe()).filename))
_root = os.path.dirname(os.path.dirname(_here))
if os.path.isfile(os.path.join(_root, "lutcodegen", "__init__.py")) and _root not in sys.path:
    sys.path.insert(0, _root)
try:
    import lutcodegen.firmware.build as lcg_firmware
except ImportError as exc:
    sys.stderr.write(
        f"lutcodegen: cannot import the generator ({exc}). PlatformIO's Python needs numpy and"
        " jinja2 (pip install 'lutcodegen[firmware]' and run pio from that environment).\n"
    )
    env.Exit(1)
from lutcodegen import describe  # noqa: E402
from lutcodegen.spec import SpecError  # noqa: E402


def _option(field):
    return env.GetProjectOption("custom_lutcodegen_" + field, None)


out_dir = os.path.join(env.subst("$BUILD_DIR"), "lutcodegen")
try:
    spec = lcg_firmware.spec_from_options(_option)
    design = lcg_firmware.generate_kernel(spec, Path(out_dir))
except SpecError as exc:
    sys.stderr.write(f"lutcodegen: bad custom_lutcodegen_* option: {exc}\n")
    env.Exit(1)

print(f"lutcodegen: {spec.command_line()} -> {out_dir}")
for line in describe(design):
    print("lutcodegen:   " + line)

# lutcodegen bench only: the incumbent CMSIS-NN arm_softmax_s16 behind the kernel's name.
_cmsis = os.environ.get("LUTCODEGEN_BENCH_CMSIS_NN")
if _cmsis:
    from lutcodegen.firmware import cmsis_nn  # noqa: E402

    lcg_firmware.write_if_changed(
        Path(out_dir, f"{spec.prefix}_softmax.c"), cmsis_nn.wrapper_source(design)
    )
    env.Append(CPPPATH=[os.path.join(_cmsis, "Include")])
    env.BuildSources(
        os.path.join("$BUILD_DIR", "cmsis_nn_obj"),
        os.path.join(_cmsis, "Source", "SoftmaxFunctions"),
        src_filter="+<arm_softmax_s16.c>",
    )
    print(f"lutcodegen: bench variant: CMSIS-NN arm_softmax_s16 from {_cmsis}")

# Every file of the project and of its libraries can include the generated headers.
env.Append(CPPPATH=[out_dir])
env.BuildSources(
    os.path.join("$BUILD_DIR", "lutcodegen_obj"), out_dir, src_filter=f"+<{spec.prefix}_softmax.c>"
)
