"""PlatformIO extra script of this firmware project: data the benchmark and the tests need.

- ``bench_config.h``: the row lengths the benchmark measures (``custom_lutcodegen_bench_lengths``,
  or ``LUTCODEGEN_BENCH_LENGTHS``); lengths above the kernel's max_row are left out.
- Test builds only: the extra kernels of ``custom_lutcodegen_test_specs`` (one spec per line,
  e.g. ``bits=4 input_scale=0.25``) and ``golden_vectors.c``, the host reference model's outputs
  for every kernel (the main one first) on the rows the target tests run.

``LUTCODEGEN_GOLDEN_FLIP=kernel:length:position`` corrupts one expected value by one LSB; the
test suite uses it to prove that a wrong output makes ``pio test`` fail.

Runs after ``lutcodegen_build.py`` (list it second in ``extra_scripts``).
"""

import os
import sys
from pathlib import Path

from SCons.Script import COMMAND_LINE_TARGETS

import lutcodegen.firmware.build as lcg_firmware
from lutcodegen.spec import SpecError

Import("env")  # noqa: F821 (provided by SCons)

out_dir = Path(env.subst("$BUILD_DIR"), "lutcodegen")
try:
    main_spec = lcg_firmware.spec_from_options(
        lambda field: env.GetProjectOption("custom_lutcodegen_" + field, None)
    )
    lengths_text = os.environ.get("LUTCODEGEN_BENCH_LENGTHS") or env.GetProjectOption(
        "custom_lutcodegen_bench_lengths", "16 64 256"
    )
    lengths = [int(word) for word in lengths_text.replace(",", " ").split()]
    lcg_firmware.write_if_changed(
        out_dir / "bench_config.h", lcg_firmware.bench_header(lengths, main_spec.max_row)
    )
    if "__test" in COMMAND_LINE_TARGETS:
        lines = env.GetProjectOption("custom_lutcodegen_test_specs", "").splitlines()
        flip = lcg_firmware.parse_flip(os.environ.get("LUTCODEGEN_GOLDEN_FLIP"))
        designs = lcg_firmware.generate_golden(main_spec, lines, out_dir, flip)
        print(f"lutcodegen: golden vectors for {len(designs)} kernels")
        env.Append(CPPPATH=["$PROJECT_INCLUDE_DIR"])  # golden.h declares the vector types
        env.BuildSources(
            os.path.join("$BUILD_DIR", "lutcodegen_test_obj"),
            str(out_dir),
            src_filter=["+<golden*.c>"],
        )
except (SpecError, ValueError) as exc:
    sys.stderr.write(f"lutcodegen: bad firmware option: {exc}\n")
    env.Exit(1)
