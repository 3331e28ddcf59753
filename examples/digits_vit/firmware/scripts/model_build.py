"""PlatformIO extra script of the model firmware: the generated model and images, compiled.

Where the model comes from, first found:

- ``LUTCODEGEN_MODEL_DIR`` (environment) or ``custom_lutcodegen_model_dir`` (platformio.ini): a
  folder holding ``model.c``, ``model.h`` and ``images.h``, as ``lutcodegen.model.firmware``
  writes it (``lutcodegen demo`` and the tests pass theirs this way). Its optional
  ``firmware.json`` adds sources, include folders and defines to the build;
- otherwise the shipped digits model, generated here into ``$BUILD_DIR/model`` for softmax
  ``custom_lutcodegen_model_softmax`` with the held-out images (needs scikit-learn), so that a
  plain ``pio run`` or ``pio test`` builds something meaningful.

The script compiles ``main.c`` too (``build_src_filter`` excludes it from PlatformIO's own
pass) so that it links first. Flags: those of the emulated platform (``-O2 -g -std=c99
-pedantic -Wall -Wextra``, sections and ``--gc-sections``) plus ``-Werror`` on ``main.c`` and
the model, not on the extra sources (third-party code such as CMSIS-NN is not ours to keep
warning-free; their include folders are given as ``-isystem``). ``model.c`` and the extra
sources are also compiled with ``-fcallgraph-info=su``: the host reads the stack use of each
function from the ``.ci`` files it writes.
"""

import inspect
import os
import sys
from pathlib import Path

Import("env")  # noqa: F821 (provided by SCons)

# The generator of the checkout that holds this project, else one installed in PlatformIO's Python.
_here = Path(inspect.getframeinfo(inspect.currentframe()).filename).resolve().parent
_root = _here.parents[3]
if (_root / "lutcodegen" / "__init__.py").is_file() and str(_root) not in sys.path:
    sys.path.insert(0, str(_root))
try:
    from lutcodegen.model import firmware as model_firmware
except ImportError as exc:
    sys.stderr.write(
        f"lutcodegen: cannot import the generator ({exc}). PlatformIO's Python needs numpy and"
        " jinja2 (run pio from the environment lutcodegen is installed in).\n"
    )
    env.Exit(1)

folder_text = os.environ.get("LUTCODEGEN_MODEL_DIR") or env.GetProjectOption(
    "custom_lutcodegen_model_dir", ""
)
try:
    if folder_text.strip():
        folder = Path(folder_text.strip()).resolve()
    else:
        folder = Path(env.subst("$BUILD_DIR"), "model")
        method = env.GetProjectOption("custom_lutcodegen_model_softmax", "lut")
        model_firmware.generate_example(folder, method)
        print(f"lutcodegen: digits model, softmax {method} -> {folder}")
    extras = model_firmware.read_folder(folder)
except model_firmware.FirmwareError as exc:
    sys.stderr.write(f"lutcodegen: {exc}\n")
    env.Exit(1)

# $LCG_WERROR is -Werror except on the extra sources; it is a variable, not a flag, because the
# platform's own flags are appended after this script and every object must get them.
env.Replace(LCG_WERROR=["-Werror"], LCG_CALLGRAPH=[])
# The extra include folders are system folders: a library's headers are not held to our
# warnings either.
env.Append(
    CCFLAGS=["$LCG_WERROR", "$LCG_CALLGRAPH"]
    + [flag for p in extras.include_dirs for flag in ("-isystem", str(p))],
    CPPPATH=[str(folder)],
    CPPDEFINES=[tuple(d.split("=", 1)) if "=" in d else d for d in extras.defines],
)
# main.c links first, then the model, then the extra sources: the order of the former direct
# compiler route, so the ELF is the same byte for byte (and addr2line, which reads the debug
# information in link order, attributes main's addresses to main.c).
objects = [
    env.Object(os.path.join("$BUILD_DIR", "main.o"), os.path.join("$PROJECT_DIR", "main.c")),
    env.Object(
        os.path.join("$BUILD_DIR", "model_obj", "model.o"),
        str(folder / "model.c"),
        LCG_CALLGRAPH=["-fcallgraph-info=su"],
    ),
]
for index, source in enumerate(extras.sources):
    target = os.path.join("$BUILD_DIR", "model_extra", f"{index}_{source.stem}.o")
    objects.append(
        env.Object(target, str(source), LCG_WERROR=[], LCG_CALLGRAPH=["-fcallgraph-info=su"])
    )
env.Append(PIOBUILDFILES=objects)
