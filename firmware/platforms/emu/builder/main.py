"""SCons builder of the ``emu`` dev-platform: bare-metal firmware for boards emulated by QEMU.

Why a project-local platform: the official ``ststm32``/``sifive`` platforms download their
toolchains from PlatformIO's registry. This one uses the Debian cross compilers on PATH and
picolibc's semihosting crt0, so ``pio run`` and ``pio test`` work offline. Memory layout comes
from the board JSON (picolibc's linker script reads ``__flash``/``__ram``); printf and the exit
status of ``main`` reach the host through semihosting.

Targets: ``exec`` (run in QEMU; fails when main returns non-zero), ``bench`` (run with the
instruction-counting plugin between ``bench_start`` and ``bench_stop``), ``size``.
"""

import os
import shlex
import subprocess

from SCons.Script import AlwaysBuild, Default, DefaultEnvironment  # noqa: F401

env = DefaultEnvironment()
board = env.BoardConfig()

PREFIX = {"arm": "arm-none-eabi-", "riscv": "riscv64-unknown-elf-"}[board.get("build.arch")]
CPU_FLAGS = shlex.split(board.get("build.cflags"))
MEMORY = [
    f"-Wl,--defsym=__{key}={board.get('build.' + key)}"
    for key in ("flash", "flash_size", "ram", "ram_size")
]
# Semihosting output goes to QEMU's stderr; every run is bounded so a hung firmware cannot hang CI.
QEMU_RUN = (
    "timeout 120 "
    + board.get("build.qemu")
    + " -display none -monitor none -serial null"
    + " -semihosting-config enable=on,target=native -kernel $SOURCE"
)

env.Replace(
    CC=PREFIX + "gcc",
    AS=PREFIX + "gcc",
    CXX=PREFIX + "g++",
    AR=PREFIX + "gcc-ar",
    RANLIB=PREFIX + "gcc-ranlib",
    OBJCOPY=PREFIX + "objcopy",
    NM=PREFIX + "nm",
    SIZETOOL=PREFIX + "size",
    PROGNAME="firmware",
    PROGSUFFIX=".elf",
    SIZEPROGREGEXP=r"^(?:\.text|\.init|\.rodata|\.data|\.ARM\.exidx)\s+(\d+).*",
    SIZEDATAREGEXP=r"^(?:\.data|\.bss|\.tbss|\.tdata|\.noinit)\s+(\d+).*",
    SIZECHECKCMD="$SIZETOOL -A -d $SOURCES",
    SIZEPRINTCMD="$SIZETOOL -B -d $SOURCES",
    QEMURUN=QEMU_RUN,
)
env.Append(
    ASFLAGS=CPU_FLAGS + ["--specs=picolibc.specs"],
    CCFLAGS=CPU_FLAGS
    + [
        "--specs=picolibc.specs",
        "-O2",
        "-g",
        "-ffunction-sections",
        "-fdata-sections",
        "-Wall",
        "-Wextra",
    ],
    CFLAGS=["-std=c99", "-pedantic"],
    LINKFLAGS=CPU_FLAGS
    + [
        "--specs=picolibc.specs",
        "--oslib=semihost",
        "--crt0=semihost",
        "-Wl,--gc-sections",
    ]
    + MEMORY,
)

elf = env.BuildProgram()

run = env.VerboseAction("$QEMURUN", "Running $SOURCE in QEMU")
AlwaysBuild(env.Alias("upload", elf, run))
env.AddPlatformTarget("exec", elf, run, "Run in QEMU")


def _marker_address(elf_path, name):
    """Entry address of function ``name`` (Thumb bit cleared), read with the toolchain's nm."""
    out = subprocess.run([env.subst("$NM"), elf_path], check=True, capture_output=True, text=True)
    for line in out.stdout.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[2] == name:
            return int(fields[0], 16) & ~1
    raise RuntimeError(f"{elf_path} has no symbol {name}")


def _bench(target, source, env):
    """Run the firmware with the insncount plugin; counts appear after the firmware's lines."""
    plugin_dir = os.path.join(env.subst("$PROJECT_DIR"), "tools", "qemu-plugin")
    plugin = os.path.join(env.subst("$BUILD_DIR"), "libinsncount.so")
    include = os.path.join(plugin_dir, "include")
    if not os.path.isfile(os.path.join(include, "qemu-plugin.h")):
        print(f"qemu-plugin.h not found in {include}: run scripts/setup.sh")
        return 1
    subprocess.run(
        [
            "cc",
            "-shared",
            "-fPIC",
            "-O2",
            "-I" + include,
            "-o",
            plugin,
            os.path.join(plugin_dir, "insncount.c"),
        ],
        check=True,
    )
    elf_path = str(source[0])
    start = _marker_address(elf_path, "bench_start")
    stop = _marker_address(elf_path, "bench_stop")
    log = os.path.join(env.subst("$BUILD_DIR"), "insncount.log")
    command = shlex.split(env.subst("$QEMURUN", source=source)) + [
        "-plugin",
        f"{plugin},start={start:#x},stop={stop:#x}",
        "-d",
        "plugin",
        "-D",
        log,
    ]
    status = subprocess.run(command).returncode
    with open(log) as f:
        print(f.read(), end="")
    print("(executed instructions, not cycles)")
    return status


env.AddPlatformTarget("bench", elf, _bench, "Count executed instructions in QEMU")
AlwaysBuild(env.Alias("nobuild", elf))
size = env.AddPlatformTarget(
    "size", elf, env.VerboseAction("$SIZEPRINTCMD", "Calculating size $SOURCE"), "Program Size"
)
Default([env.Alias("buildprog", elf, elf), size])
