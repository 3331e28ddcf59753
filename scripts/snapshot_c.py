"""Render every generated C text a refactoring must not change, into one folder.

Run it on two commits and compare the folders (``diff -r``): the configurations of
``host_tests/configs.py`` (single file and header/source pair), the golden examples' commands,
the attention model for every softmax method, and the firmware build's generated files. Only the
command-line entry points and the firmware hooks are used, so the script runs unchanged on a
commit before and after a reorganisation of the package.

    python scripts/snapshot_c.py OUT_DIR
"""

from __future__ import annotations

import contextlib
import importlib
import io
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "host_tests"))


def _run(argv: list[str]) -> None:
    from lutcodegen.cli import main

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        status = main(argv)
    if status != 0:
        raise SystemExit(f"lutcodegen {' '.join(argv)} exited {status}")


def _firmware() -> object:
    for name in ("lutcodegen.firmware.build", "lutcodegen.firmware"):
        with contextlib.suppress(ImportError):
            return importlib.import_module(name)
    raise SystemExit("no firmware module")


def main(out: Path) -> None:
    from configs import all_specs

    out.mkdir(parents=True, exist_ok=True)
    for index, spec in enumerate(all_specs()):
        args = shlex.split(spec.command_line())[1:]
        _run([*args, "-o", str(out / f"cfg{index:02d}.c")])
        _run(
            [
                *args,
                "-o",
                str(out / f"cfg{index:02d}_pair.c"),
                "--header",
                str(out / f"cfg{index:02d}_pair.h"),
            ]
        )
    _run(["-o", str(out / "example_softmax_lut.c")])
    (out / "split").mkdir(exist_ok=True)
    _run(
        [
            "-o",
            str(out / "split" / "softmax_lut.c"),
            "--header",
            str(out / "split" / "softmax_lut.h"),
        ]
    )
    for method in ("lut", "rexp", "lut2d", "tflite"):
        from lutcodegen.cli import main as cli_main

        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            cli_main(
                [
                    "model",
                    "--softmax",
                    method,
                    "-o",
                    str(out / f"model_{method}.c"),
                    "--header",
                    str(out / f"model_{method}.h"),
                ]
            )
    firmware = _firmware()
    from lutcodegen import Spec

    for index, spec in enumerate([Spec(), Spec(bits=16, method="rexp"), Spec(method="tflite")]):
        folder = out / f"firmware{index}"
        firmware.generate_kernel(spec, folder)  # type: ignore[attr-defined]
        firmware.generate_golden(  # type: ignore[attr-defined]
            spec, ["bits=16 input_scale=0.25", "bits=8 max_row=64"], folder
        )
        (folder / "bench_config.h").write_text(
            firmware.bench_header([1, 16, 256, 4096], spec.max_row)  # type: ignore[attr-defined]
        )
    import lutcodegen

    (out / "package").write_text(str(Path(lutcodegen.__file__).parent.parent) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
