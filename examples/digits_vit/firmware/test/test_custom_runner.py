"""PlatformIO test runner of the model firmware: run it in QEMU, compare every logit on the host.

Why custom: the firmware is the demo's program, not a unit-test program; it prints one line per
image (``image 3 class 7 insns 0 logits ...``). This runner builds it (``__test``: ``main.c``,
the model and ``test_logits``' compile-time checks), runs it once in the board's QEMU machine
with semihosting, and reports one test case per image: passed when the image's logits and
class equal the host reference model's (``expected_logits.txt`` of the model folder, which
``scripts/model_build.py`` writes with the model it generates). Nothing is downloaded, so
``pio test`` works offline.
"""

import inspect
import os
import shlex
import subprocess
import sys
from pathlib import Path

import click
from platformio.test.result import TestCase, TestStatus
from platformio.test.runners.base import TestRunnerBase

_here = Path(inspect.getframeinfo(inspect.currentframe()).filename).resolve().parent
_root = _here.parents[3]
if (_root / "lutcodegen" / "__init__.py").is_file() and str(_root) not in sys.path:
    sys.path.insert(0, str(_root))

from lutcodegen.firmware.boards import SEMIHOSTING_STDIO  # noqa: E402
from lutcodegen.model import firmware as model_firmware  # noqa: E402

#: Seconds the firmware may run in QEMU (all 360 images take about one).
QEMU_TIMEOUT = 300


class CustomTestRunner(TestRunnerBase):
    """Builds without uploading (``upload`` would run the firmware once more for nothing)."""

    def stage_building(self):
        if self.options.without_building:
            return None
        click.secho("Building...", bold=True)
        return self.run_project_targets(["__test", "checkprogsize"])

    def stage_uploading(self):
        return None

    def _model_dir(self, env_name):
        config = self.project_config
        given = os.environ.get("LUTCODEGEN_MODEL_DIR") or config.get(
            "env:" + env_name, "custom_lutcodegen_model_dir", ""
        )
        if given.strip():
            return Path(given.strip()).resolve()
        return Path(config.get("platformio", "build_dir"), env_name, "model")

    def stage_testing(self):
        if self.options.without_testing:
            return None
        click.secho("Testing...", bold=True)
        env_name = self.test_suite.env_name
        config = self.project_config
        expected_path = self._model_dir(env_name) / "expected_logits.txt"
        if not expected_path.is_file():
            raise RuntimeError(
                f"{expected_path} not found: the model folder holds no reference logits "
                "(write it with lutcodegen.model.firmware.write_folder(..., expected=...), or "
                "let the build generate the model)"
            )
        expected = [
            [int(v) for v in line.split()] for line in expected_path.read_text().splitlines()
        ]
        board = self.platform.board_config(config.get("env:" + env_name, "board"))
        elf = os.path.join(config.get("platformio", "build_dir"), env_name, "firmware.elf")
        command = (
            ["timeout", str(QEMU_TIMEOUT)]
            + shlex.split(board.get("build.qemu"))
            + list(SEMIHOSTING_STDIO)
            + ["-kernel", elf]
        )
        proc = subprocess.run(command, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({proc.returncode}):\n{proc.stderr}")
        try:
            result = model_firmware.parse_output(proc.stdout, len(expected))
        except model_firmware.FirmwareError as exc:
            raise RuntimeError(str(exc)) from None
        for i, (logits, cls, want) in enumerate(zip(result.logits, result.classes, expected)):
            got = [int(v) for v in logits]
            want_class = max(range(len(want)), key=lambda k: (want[k], -k))
            ok = got == want and int(cls) == want_class
            message = (
                None
                if ok
                else f"logits {got} class {int(cls)}, reference {want} class {want_class}"
            )
            case = TestCase(
                name=f"image {i}",
                status=TestStatus.PASSED if ok else TestStatus.FAILED,
                message=message,
                stdout=message,  # what the summary prints for a failed case
            )
            if not ok or self.options.verbose:
                click.echo(case.humanize())
            self.test_suite.add_case(case)
        return None
