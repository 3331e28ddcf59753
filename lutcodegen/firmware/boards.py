"""The board registry: every emulated board, read once from its PlatformIO board JSON.

The JSONs in ``firmware/platforms/emu/boards`` are the one description of each board: its CPU,
compiler flags, memory map and QEMU command. PlatformIO builds from them; the bench, the model's
firmware and the host cross-compile tests read them through this module, so a flag changed there
changes everywhere. A wheel carries the same files as ``lutcodegen/boards``.
"""

from __future__ import annotations

import functools
import json
import shlex
from dataclasses import dataclass
from pathlib import Path

#: Cross-compiler prefix by board ``build.arch``.
TOOL_PREFIXES = {"arm": "arm-none-eabi-", "riscv": "riscv64-unknown-elf-"}

#: QEMU options after the board's own: no display, monitor or serial port, and semihosting on
#: stdio (the guest's stdout and stderr arrive on stdout; ``main``'s return value becomes
#: QEMU's exit status). The model firmware and the TFLite Micro runner both run this way.
SEMIHOSTING_STDIO = (
    "-display",
    "none",
    "-monitor",
    "none",
    "-serial",
    "null",
    "-chardev",
    "stdio,id=sh0",
    "-semihosting-config",
    "enable=on,target=native,chardev=sh0",
)


@dataclass(frozen=True)
class Board:
    """One emulated board, as its JSON describes it."""

    name: str  #: the JSON file's stem, PlatformIO's board id
    title: str  #: JSON ``name``
    cpu: str  #: JSON ``build.cpu``
    cpu_name: str  #: how tables name the core (JSON ``lutcodegen.cpu_name``)
    arch: str  #: "arm" or "riscv"
    cflags: tuple[str, ...]  #: CPU flags of the firmware build
    flash: tuple[int, int]  #: origin and size
    ram: tuple[int, int]  #: origin and size
    qemu: tuple[str, ...]  #: QEMU command without the common options and the kernel
    env: str = ""  #: the ``platformio.ini`` environment building it ("" where none is known)

    @property
    def tool_prefix(self) -> str:
        return TOOL_PREFIXES[self.arch]

    @property
    def cc(self) -> str:
        return self.tool_prefix + "gcc"

    @property
    def is_riscv(self) -> bool:
        return self.arch == "riscv"


def boards_dir() -> Path:
    """``lutcodegen/boards`` in an installed wheel, else the checkout's board JSONs."""
    package = Path(__file__).resolve().parent.parent
    checkout = package.parent / "firmware" / "platforms" / "emu" / "boards"
    for candidate in (package / "boards", checkout):
        if candidate.is_dir() and any(candidate.glob("*.json")):
            return candidate
    raise FileNotFoundError(f"board JSONs not found next to {package}; the installation is broken")


def load_board(path: Path) -> Board:
    """The board a JSON file describes."""
    data = json.loads(path.read_text(encoding="utf-8"))
    build = data["build"]
    return Board(
        name=path.stem,
        title=data["name"],
        cpu=build["cpu"],
        cpu_name=data.get("lutcodegen", {}).get("cpu_name", build["cpu"]),
        arch=build["arch"],
        cflags=tuple(shlex.split(build["cflags"])),
        flash=(int(build["flash"], 0), int(build["flash_size"], 0)),
        ram=(int(build["ram"], 0), int(build["ram_size"], 0)),
        qemu=tuple(shlex.split(build["qemu"])),
    )


@functools.lru_cache(maxsize=1)
def boards() -> dict[str, Board]:
    """Every board, by PlatformIO board id, in file name order."""
    return {b.name: b for b in map(load_board, sorted(boards_dir().glob("*.json")))}
