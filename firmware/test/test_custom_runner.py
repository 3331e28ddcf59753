"""PlatformIO test runner for the emulated boards: build once, run in QEMU, parse Unity lines.

Why custom: PlatformIO's ``unity`` runner downloads the Unity library from its registry, which
is unreachable offline. The firmware prints Unity's line format itself, so this runner reuses
the Unity parser and only replaces how the program is run: under QEMU with semihosting, bounded
by ``timeout``. A non-zero exit status of the firmware (or of QEMU) marks the suite as errored.
"""

import os
import shlex

import click
from platformio.test.runners.readers.native import NativeTestOutputReader
from platformio.test.runners.unity import UnityTestRunner

#: Seconds one test firmware may run before QEMU is killed (it needs well under one).
QEMU_TIMEOUT = 60


class QemuOutputReader(NativeTestOutputReader):
    """Runs the test ELF in the board's QEMU machine; semihosting output arrives on stderr."""

    def get_testing_command(self):
        runner = self.test_runner
        env_name = runner.test_suite.env_name
        config = runner.project_config
        if config.get("env:" + env_name, "test_testing_command"):
            return super().get_testing_command()
        board = runner.platform.board_config(config.get("env:" + env_name, "board"))
        elf = os.path.join(config.get("platformio", "build_dir"), env_name, "firmware.elf")
        return (
            ["timeout", str(QEMU_TIMEOUT)]
            + shlex.split(board.get("build.qemu"))
            + [
                "-display",
                "none",
                "-monitor",
                "none",
                "-serial",
                "null",
                "-semihosting-config",
                "enable=on,target=native",
                "-kernel",
                elf,
            ]
        )


class CustomTestRunner(UnityTestRunner):
    EXTRA_LIB_DEPS = None  # nothing to download: the firmware prints Unity's format itself

    def configure_build_env(self, env):
        return env  # no generated unity_config.*

    def stage_testing(self):
        if self.options.without_testing:
            return None
        click.secho("Testing...", bold=True)
        return QemuOutputReader(self).begin()
