"""``lutcodegen bench``: build the benchmark firmware, run it in QEMU and count instructions.

For every emulated board, method and row length it reports executed instructions per element and
per row, code and table bytes read from the ELF's symbols, and the RAM the call used (stack peak,
measured on target, plus any static data of the kernel). Counts come from the ``insncount`` QEMU
plugin (``firmware/tools/qemu-plugin``), which counts guest instructions between two marker
functions: exact and identical on every run. They are instructions, not cycles: QEMU has no
timing model.

Row lengths above the default ``max_row`` are measured with a kernel generated for exactly that
length (``max_row = L``), because ``max_row`` decides the table layout; the report says which
design (``max_row`` and table bytes) each row used.

Exit status: 0 on success, 1 if a build or run failed, 2 on bad usage, a missing firmware
folder, toolchain, emulator or plugin header.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import __version__
from ..cli import UsageError, check_c_outputs, run_command, write_all_or_nothing
from ..methods import design_for
from ..methods.lut import LutDesign, scratch_bytes
from ..registry import MAX_ROW_LIMIT, OPTION_BY_NAME
from ..spec import INT16_INPUT_METHODS, METHODS, Spec
from .boards import SEMIHOSTING_STDIO, Board
from .build import emulated_boards, find_firmware_dir, pio_environment

#: Bench-only comparison with --input-bits 16: CMSIS-NN's arm_softmax_s16 (TFLite's tables).
CMSIS_NN = "cmsis-nn"

USAGE_ERROR = 2
DEFAULT_LENGTHS = (16, 64, 256, 1024)
DEFAULT_MAX_ROW = 256
#: Seconds allowed for one QEMU run of the benchmark firmware (it needs well under one).
QEMU_TIMEOUT = 60
#: Seconds allowed for one PlatformIO build.
BUILD_TIMEOUT = 600

UNIT_NOTE = (
    "Counts are executed instructions, not cycles (QEMU TCG plugin, exact and repeatable); "
    "the call's argument set-up is included, the empty marker region is subtracted."
)


class BenchError(Exception):
    """A problem that stops the benchmark; ``status`` is the exit code to return."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Result:
    """One measured call: a board, a method, a row length."""

    board: str
    cpu: str
    method: str
    bits: int
    input_scale: float
    max_row: int  #: the design's max_row (decides the table layout)
    length: int
    rows: int
    instructions: int  #: inside the call, marker overhead subtracted
    marker_overhead: int
    instructions_per_element: float
    instructions_per_row: float
    code_bytes: int  #: kernel functions plus the library helpers they call
    code_functions: dict[str, int] = field(default_factory=dict)
    table_bytes: int = 0  #: read-only data objects of the kernel, from the ELF
    design_table_bytes: int = 0  #: what the generator says the tables take
    static_ram_bytes: int = 0  #: .data/.bss objects of the kernel
    stack_bytes: int = 0  #: stack peak of the call, measured on target
    input_bits: int = 8  #: int8 or int16 logits
    scratch_row: str = "off"  #: lut's --scratch-row
    scratch_bytes: int = 0  #: the caller's scratch row (--scratch-row on), counted as RAM

    @property
    def ram_bytes(self) -> int:
        return self.static_ram_bytes + self.stack_bytes + self.scratch_bytes

    @property
    def variant(self) -> str:
        """The method as the tables name it: ``lut+scratch`` for lut with a scratch row."""
        return self.method + ("+scratch" if self.scratch_row == "on" else "")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lutcodegen bench",
        description="Build the benchmark firmware for emulated boards, run it in QEMU and count "
        "executed instructions (not cycles) per element and per row.",
    )
    parser.add_argument(
        "--board",
        action="append",
        metavar="NAME",
        help="emulated board (PlatformIO environment), repeatable, or 'all' (default all)",
    )
    parser.add_argument(
        "--method",
        action="append",
        metavar="M",
        help=f"method to measure, repeatable, or 'all' ({', '.join(METHODS)}; default all)",
    )
    parser.add_argument(
        "--lengths",
        default=",".join(str(n) for n in DEFAULT_LENGTHS),
        help="comma-separated row lengths (default 16,64,256,1024)",
    )
    parser.add_argument(
        "--max-row",
        type=int,
        default=DEFAULT_MAX_ROW,
        metavar="N",
        help="max_row of the design for lengths up to N; longer rows get a "
        "design with max_row = length (default 256)",
    )
    parser.add_argument(
        "--bits", type=int, default=None, help="output bits (default 8; 16 with --input-bits 16)"
    )
    parser.add_argument(
        "--input-bits",
        type=int,
        choices=(8, 16),
        default=8,
        help="16: int16-input kernels (methods lut, tflite, and cmsis-nn: CMSIS-NN's "
        "arm_softmax_s16 built from its pinned source for comparison)",
    )
    parser.add_argument(
        "--input-scale",
        type=float,
        default=0.0625,
        metavar="S",
        help="input scale (default 0.0625)",
    )
    parser.add_argument(
        "--optimize",
        choices=("speed", "size"),
        help="lut's --optimize (default: the generator's, speed)",
    )
    parser.add_argument(
        "--scratch-row",
        choices=("off", "on", "both"),
        default="off",
        help="lut's --scratch-row; both: measure lut with and without it, side by side "
        "(default off)",
    )
    parser.add_argument(
        "--firmware-dir",
        help="the firmware/ PlatformIO project "
        "(default: next to this package in a checkout, or ./firmware)",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write results as JSON")
    parser.add_argument(
        "--markdown", type=Path, metavar="FILE", help="also write the tables as Markdown"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show build output")
    parser.add_argument(
        "--tflm",
        metavar="MODEL",
        help="instead: run a .tflite model in TFLite Micro + CMSIS-NN on "
        "Cortex-M4, stock and with the lutcodegen tflm registration (see "
        "lutcodegen bench --tflm MODEL --help)",
    )
    return parser


def _lengths(text: str) -> list[int]:
    try:
        values = [int(word) for word in text.replace(",", " ").split()]
    except ValueError:
        raise BenchError(
            f"--lengths {text!r}: want comma-separated integers", USAGE_ERROR
        ) from None
    if not values or any(not 1 <= n <= MAX_ROW_LIMIT for n in values):
        raise BenchError(
            f"--lengths {text!r}: want integers from 1 to {MAX_ROW_LIMIT}", USAGE_ERROR
        )
    return sorted(set(values))


def _select(requested: list[str] | None, available: Sequence[str], what: str) -> list[str]:
    if not requested or "all" in requested:
        return list(available)
    unknown = [r for r in requested if r not in available]
    if unknown:
        raise BenchError(
            f"unknown {what} {', '.join(unknown)}; choose from {', '.join(available)} or all",
            USAGE_ERROR,
        )
    return list(dict.fromkeys(requested))


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise BenchError(f"{tool} not found on PATH; run scripts/setup.sh", USAGE_ERROR)
    return path


def _check_tools(boards: Sequence[Board]) -> None:
    for board in boards:
        for tool in ("gcc", "readelf", "objdump"):
            _require(board.tool_prefix + tool)
        _require(board.qemu[0])
    _require("cc")
    try:
        import platformio  # noqa: F401
    except ImportError:
        raise BenchError(
            "PlatformIO is not installed in this Python; install the firmware "
            "extra: pip install -e '.[firmware]'",
            USAGE_ERROR,
        ) from None


def build_plugin(firmware_dir: Path) -> Path:
    """Compile the insncount plugin against the QEMU header fetched by scripts/setup.sh."""
    source = firmware_dir / "tools" / "qemu-plugin" / "insncount.c"
    include = firmware_dir / "tools" / "qemu-plugin" / "include"
    if not (include / "qemu-plugin.h").is_file():
        raise BenchError(
            f"{include / 'qemu-plugin.h'} is missing: scripts/setup.sh fetches it "
            "from the qemu source package",
            USAGE_ERROR,
        )
    out_dir = firmware_dir / ".pio" / "insncount"
    out_dir.mkdir(parents=True, exist_ok=True)
    plugin = out_dir / "libinsncount.so"
    if not plugin.is_file() or plugin.stat().st_mtime < source.stat().st_mtime:
        subprocess.run(
            [
                "cc",
                "-shared",
                "-fPIC",
                "-O2",
                "-Wall",
                "-Wextra",
                f"-I{include}",
                "-o",
                str(plugin),
                str(source),
            ],
            check=True,
        )
    return plugin


def build_firmware(
    firmware_dir: Path,
    board: Board,
    spec: Spec,
    lengths: Sequence[int],
    verbose: bool,
    cmsis_nn_dir: Path | None = None,
) -> Path:
    """``pio run`` for one board and design; each design keeps its own build folder.

    With ``cmsis_nn_dir`` the kernel's source is replaced by CMSIS-NN's ``arm_softmax_s16``
    behind the same name (``spec`` must be an int16 ``tflite`` spec: its tables and parameters).
    """
    variant = CMSIS_NN if cmsis_nn_dir is not None else spec.method
    build_dir = (
        firmware_dir
        / ".pio"
        / "bench"
        / (
            f"{variant}-i{spec.input_bits}-b{spec.bits}-s{spec.input_scale!r}-n{spec.max_row}"
            + (f"-{spec.optimize}" if spec.optimize else "")
            + ("-scratch" if spec.scratch_row == "on" else "")
        )
    )
    env = pio_environment(firmware_dir)
    env.update(
        {
            "PLATFORMIO_BUILD_DIR": str(build_dir),
            "LUTCODEGEN_METHOD": spec.method,
            "LUTCODEGEN_BITS": str(spec.bits),
            "LUTCODEGEN_INPUT_SCALE": repr(spec.input_scale),
            "LUTCODEGEN_BETA": repr(spec.beta),
            "LUTCODEGEN_MAX_ROW": str(spec.max_row),
            "LUTCODEGEN_PREFIX": spec.prefix,
            "LUTCODEGEN_INPUT_BITS": str(spec.input_bits),
            "LUTCODEGEN_BENCH_CMSIS_NN": str(cmsis_nn_dir) if cmsis_nn_dir is not None else "",
            "LUTCODEGEN_OPTIMIZE": spec.optimize or "",
            "LUTCODEGEN_SCRATCH_ROW": spec.scratch_row,
            "LUTCODEGEN_BENCH_LENGTHS": " ".join(str(n) for n in lengths),
        }
    )
    command = [sys.executable, "-m", "platformio", "run", "-d", str(firmware_dir), "-e", board.env]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    if verbose or done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
    if done.returncode != 0:
        raise BenchError(f"build failed for {board.env} ({spec.command_line()})")
    return build_dir / board.env / "firmware.elf"


@dataclass(frozen=True)
class Symbol:
    address: int
    size: int
    function: bool  #: FUNC, else OBJECT
    in_ram: bool  #: lives in a writable section (.data, .bss)


def read_symbols(elf: Path, board: Board) -> dict[str, Symbol]:
    """Sized functions and objects of the ELF, from ``readelf`` (its symbol types and sections).

    ``nm`` letters are not enough: picolibc's linker script puts .rodata inside .text, so a
    table shows up as ``t`` like code.
    """
    readelf = board.tool_prefix + "readelf"
    sections = subprocess.run(
        [readelf, "-SW", str(elf)], check=True, capture_output=True, text=True
    ).stdout
    writable = set()
    for m in re.finditer(
        r"^\s*\[\s*(\d+)\]\s+(\S+)\s+\S+\s+[0-9a-f]+\s+[0-9a-f]+\s+"
        r"[0-9a-f]+\s+[0-9a-f]+\s+(\S*)",
        sections,
        re.MULTILINE,
    ):
        if "W" in m.group(3) and "A" in m.group(3):
            writable.add(m.group(1))
    table = subprocess.run(
        [readelf, "-sW", str(elf)], check=True, capture_output=True, text=True
    ).stdout
    symbols = {}
    for line in table.splitlines():
        fields = line.split()
        if len(fields) != 8 or fields[3] not in ("FUNC", "OBJECT") or fields[6] == "UND":
            continue
        size = int(fields[2], 0)
        if size == 0 or fields[7] in symbols:
            continue
        symbols[fields[7]] = Symbol(
            int(fields[1], 16), size, fields[3] == "FUNC", fields[6] in writable
        )
    return symbols


def code_footprint(
    elf: Path, board: Board, prefix: str, symbols: dict[str, Symbol]
) -> dict[str, int]:
    """Function -> bytes for the kernel's functions and everything they call or jump to.

    Library helpers count (e.g. a 64-bit shift on a core without one), because the kernel
    cannot run without them; the disassembly names every direct call target.
    """
    disasm = subprocess.run(
        [board.tool_prefix + "objdump", "-d", "--no-show-raw-insn", str(elf)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    bodies: dict[str, list[str]] = {}
    current = None
    for line in disasm.splitlines():
        header = re.match(r"^[0-9a-f]+ <([^>]+)>:$", line)
        if header:
            current = header.group(1)
            bodies[current] = []
        elif current is not None:
            bodies[current].append(line)
    todo = [name for name, sym in symbols.items() if name.startswith(prefix + "_") and sym.function]
    found: dict[str, int] = {}
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found[name] = symbols[name].size
        for line in bodies.get(name, []):
            # Only the instruction names a target: objdump's comment (after "@" on Arm, "#" on
            # RISC-V) may name a symbol that merely shares an address with a constant.
            code = re.split(r"[#@]", line, maxsplit=1)[0]
            for target in re.findall(r"<([^>+]+)>", code):
                sym = symbols.get(target)
                if sym is not None and sym.function and target not in found:
                    todo.append(target)
    return found


_BENCH_LINE = re.compile(
    r"bench: length (\d+) rows (\d+) status (-?\d+) stack (\d+) checksum (\d+)"
)
_REGION_LINE = re.compile(r"insncount: region (\d+): (\d+) instructions")


@dataclass(frozen=True)
class Call:
    """What one measured call of the benchmark firmware reported."""

    length: int
    rows: int
    instructions: int  #: marker overhead already subtracted
    stack: int


def run_firmware(
    elf: Path, board: Board, plugin: Path, symbols: dict[str, Symbol]
) -> tuple[list[Call], int]:
    """Run in QEMU with the plugin; returns the calls in order and the marker overhead.

    The firmware prints one line per call and the plugin one count per marked region; the
    first region is empty (markers only), region i + 1 belongs to call i.
    """
    if "bench_start" not in symbols or "bench_stop" not in symbols:
        raise BenchError(f"{elf} has no bench_start/bench_stop markers")
    start = symbols["bench_start"].address & ~1  # clear the Thumb bit
    stop = symbols["bench_stop"].address & ~1
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "insncount.log"
        command = [
            *board.qemu,
            *SEMIHOSTING_STDIO,
            "-plugin",
            f"{plugin},start={start:#x},stop={stop:#x}",
            "-d",
            "plugin",
            "-D",
            str(log),
            "-kernel",
            str(elf),
        ]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=QEMU_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise BenchError(f"{board.env}: QEMU did not finish in {QEMU_TIMEOUT} s") from None
        counts = log.read_text() if log.is_file() else ""
    output = done.stdout + done.stderr
    lines = [tuple(int(g) for g in m.groups()) for m in _BENCH_LINE.finditer(output)]
    regions = [int(m.group(2)) for m in _REGION_LINE.finditer(counts)]
    if done.returncode != 0 or "bench: done" not in output:
        raise BenchError(f"{board.env}: firmware failed (exit {done.returncode}):\n{output}")
    if len(regions) != len(lines) + 1:
        raise BenchError(f"{board.env}: {len(regions)} counted regions for {len(lines)} calls")
    for length, _rows, status, _stack, _checksum in lines:
        if status != 0:
            raise BenchError(f"{board.env}: softmax returned status {status} at length {length}")
    overhead = regions[0]
    calls = [
        Call(length, rows, regions[i + 1] - overhead, stack)
        for i, (length, rows, _status, stack, _checksum) in enumerate(lines)
    ]
    return calls, overhead


def measure(
    firmware_dir: Path,
    board: Board,
    spec: Spec,
    lengths: Sequence[int],
    plugin: Path,
    verbose: bool,
    cmsis_nn_dir: Path | None = None,
) -> list[Result]:
    """Build once for ``spec`` and measure every length in one QEMU run."""
    elf = build_firmware(firmware_dir, board, spec, lengths, verbose, cmsis_nn_dir)
    symbols = read_symbols(elf, board)
    calls, overhead = run_firmware(elf, board, plugin, symbols)
    functions = code_footprint(elf, board, spec.prefix, symbols)
    objects = [s for n, s in symbols.items() if n.startswith(spec.prefix + "_") and not s.function]
    tables = sum(s.size for s in objects if not s.in_ram)
    static_ram = sum(s.size for s in objects if s.in_ram)
    dsg = design_for(spec)
    # lut's const data also holds the reciprocal's seed table; other designs have table_bytes only
    design_tables = getattr(dsg, "const_bytes", dsg.table_bytes)
    return [
        Result(
            board=board.env,
            cpu=board.cpu,
            method=CMSIS_NN if cmsis_nn_dir is not None else spec.method,
            bits=spec.bits,
            input_scale=spec.input_scale,
            max_row=spec.max_row,
            length=call.length,
            rows=call.rows,
            instructions=call.instructions,
            marker_overhead=overhead,
            instructions_per_element=call.instructions / (call.rows * call.length),
            instructions_per_row=call.instructions / call.rows,
            code_bytes=sum(functions.values()),
            code_functions=dict(sorted(functions.items())),
            table_bytes=tables,
            design_table_bytes=design_tables,
            static_ram_bytes=static_ram,
            stack_bytes=call.stack,
            input_bits=spec.input_bits,
            scratch_row=spec.scratch_row,
            scratch_bytes=scratch_bytes(dsg)
            if isinstance(dsg, LutDesign) and spec.scratch_row == "on"
            else 0,
        )
        for call in calls
    ]


def designs_for(
    method: str,
    bits: int,
    input_scale: float,
    max_row: int,
    lengths: Sequence[int],
    input_bits: int = 8,
    optimize: str | None = None,
    scratch_row: str = "off",
) -> list[tuple[Spec, list[int]]]:
    """Group lengths by the design that measures them: max_row for short rows, else L itself.

    ``cmsis-nn`` measures with the int16 ``tflite`` spec, whose tables and parameters it takes.
    ``optimize`` and ``scratch_row`` apply to ``lut`` only (the other methods have no such
    options); ``scratch_row`` "both" measures each lut design without and with the row.
    """
    groups: dict[int, list[int]] = {}
    for n in lengths:
        groups.setdefault(max(max_row, n), []).append(n)
    method = "tflite" if method == CMSIS_NN else method
    chosen = optimize if method == "lut" else None
    if method != "lut" or scratch_row == "off":
        rows = ["off"]
    else:
        rows = ["off", "on"] if scratch_row == "both" else ["on"]
    return [
        (
            Spec(
                method=method,
                bits=bits,
                input_scale=input_scale,
                max_row=m,
                input_bits=input_bits,
                optimize=chosen,
                scratch_row=row,
            ),
            ns,
        )
        for row in rows
        for m, ns in sorted(groups.items())
    ]


# --- reports ------------------------------------------------------------------------------------


def _fmt(value: float) -> str:
    return f"{value:.1f}"


def _design_max_rows(results: Sequence[Result]) -> list[int]:
    return sorted({r.max_row for r in results})


def summary_rows(results: Sequence[Result], lengths: Sequence[int]) -> list[list[str]]:
    """One row per board and method: insn/elem per length; code, tables and RAM per design."""
    rows = []
    max_rows = _design_max_rows(results)
    keys = list(dict.fromkeys((r.board, r.variant) for r in results))
    for board, method in keys:
        mine = [r for r in results if (r.board, r.variant) == (board, method)]
        by_length = {r.length: r for r in mine}
        by_design = {m: [r for r in mine if r.max_row == m] for m in max_rows}

        def per_design(value: str, by_design: dict[int, list[Result]] = by_design) -> str:
            return " / ".join(
                str(max(getattr(r, value) for r in rs)) if rs else "-" for rs in by_design.values()
            )

        rows.append(
            [board, mine[0].cpu, method]
            + [
                _fmt(by_length[n].instructions_per_element) if n in by_length else "-"
                for n in lengths
            ]
            + [per_design("code_bytes"), per_design("table_bytes"), per_design("ram_bytes")]
        )
    return rows


def summary_header(results: Sequence[Result], lengths: Sequence[int]) -> list[str]:
    designs = " / ".join(str(m) for m in _design_max_rows(results))
    return (
        ["board", "cpu", "method"]
        + [f"insn/elem L={n}" for n in lengths]
        + [
            f"code B (max_row {designs})",
            f"table B (max_row {designs})",
            f"RAM B (max_row {designs})",
        ]
    )


def detail_header() -> list[str]:
    return [
        "board",
        "method",
        "L",
        "rows",
        "max_row",
        "insn/elem",
        "insn/row",
        "code B",
        "table B",
        "static RAM B",
        "stack B",
    ]


def detail_rows(results: Sequence[Result]) -> list[list[str]]:
    return [
        [
            r.board,
            r.variant,
            str(r.length),
            str(r.rows),
            str(r.max_row),
            _fmt(r.instructions_per_element),
            _fmt(r.instructions_per_row),
            str(r.code_bytes),
            str(r.table_bytes),
            str(r.static_ram_bytes),
            str(r.stack_bytes),
        ]
        for r in results
    ]


def text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(x) for x in col) for col in zip(header, *rows)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) for c, w in zip(cells, widths))

    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def describe_setup(results: Sequence[Result]) -> str:
    first = results[0]
    return (
        f"lutcodegen {__version__}, bits={first.bits}, input_scale={first.input_scale!r}, "
        f"uniform random int{first.input_bits} logits, one call of rows x L = 1024 elements "
        "(one row at L >= 1024), arm-none-eabi-gcc / riscv64-unknown-elf-gcc -O2, picolibc."
    )


def markdown_report(results: Sequence[Result], lengths: Sequence[int]) -> str:
    return (
        "\n\n".join(
            [
                f"Executed instructions per element ({describe_setup(results)})",
                UNIT_NOTE,
                markdown_table(summary_header(results, lengths), summary_rows(results, lengths)),
                "Code, table and RAM bytes are given per design: lengths up to the default max_row "
                "use that design, longer rows one generated with max_row = L. Code: the kernel's "
                "functions "
                "and the library helpers they call, from the ELF symbols. Tables: the kernel's "
                "read-only data objects in the ELF. RAM: the stack peak of the call, measured on "
                "target by stack painting, plus the kernel's static data (none), plus for "
                "lut+scratch (--scratch-row on) the caller's scratch row.",
                "Per call:",
                markdown_table(detail_header(), detail_rows(results)),
            ]
        )
        + "\n"
    )


def json_report(results: Sequence[Result]) -> str:
    return (
        json.dumps(
            {
                "tool": f"lutcodegen {__version__} bench",
                "unit": "executed instructions (not cycles)",
                "note": UNIT_NOTE,
                "results": [dict(asdict(r), ram_bytes=r.ram_bytes) for r in results],
            },
            indent=2,
        )
        + "\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lutcodegen bench``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a == "--tflm" or a.startswith("--tflm=") for a in argv):
        from ..tflm.bench import main as tflm_main

        return tflm_main(argv)
    args = build_parser().parse_args(argv)

    def body() -> int:
        try:
            return run(args)
        except BenchError as exc:
            if exc.status == USAGE_ERROR:
                raise UsageError(str(exc)) from None
            print(f"lutcodegen bench: error: {exc}", file=sys.stderr)
            return exc.status
        except subprocess.TimeoutExpired as exc:
            print(f"lutcodegen bench: error: timed out: {exc}", file=sys.stderr)
            return 1

    return run_command("lutcodegen bench", body)


def check_arguments(
    args: argparse.Namespace, methods: Sequence[str], lengths: Sequence[int]
) -> list[tuple[str, list[tuple[Spec, list[int]]]]]:
    """Every argument checked before any build or QEMU run, which take minutes: the numbers
    against the registry's domains, every design the run will measure (so a refused design
    fails now, not after the boards before it), and the --json and --markdown paths."""
    OPTION_BY_NAME["max_row"].validate(args.max_row)
    OPTION_BY_NAME["bits"].validate(args.bits)
    OPTION_BY_NAME["input_scale"].validate(args.input_scale)
    plans = []
    for method in methods:
        groups = designs_for(
            method,
            args.bits,
            args.input_scale,
            args.max_row,
            lengths,
            input_bits=args.input_bits,
            optimize=args.optimize,
            scratch_row=args.scratch_row,
        )
        for spec, _ in groups:
            design_for(spec)
        plans.append((method, groups))
    for path in (args.json, args.markdown):
        if path is not None:
            check_c_outputs(path, None)
    if args.json is not None and args.markdown is not None:
        if args.json.resolve() == args.markdown.resolve():
            raise UsageError("--json and --markdown must be different files")
    return plans


def run(args: argparse.Namespace) -> int:
    wide = args.input_bits == 16
    methods = _select(
        args.method, [*INT16_INPUT_METHODS, CMSIS_NN] if wide else list(METHODS), "method"
    )
    lengths = _lengths(args.lengths)
    if args.bits is None:
        args.bits = 16 if wide else 8
    plans = check_arguments(args, methods, lengths)
    firmware_dir = find_firmware_dir(args.firmware_dir)
    if firmware_dir is None:
        where = args.firmware_dir or "next to the package or in ./firmware"
        raise BenchError(
            f"firmware project not found ({where}); pass --firmware-dir DIR "
            "(the folder with platformio.ini)",
            USAGE_ERROR,
        )
    all_boards = emulated_boards(firmware_dir)
    names = _select(args.board, [b.env for b in all_boards], "board")
    boards = [b for b in all_boards if b.env in names]
    _check_tools(boards)
    plugin = build_plugin(firmware_dir)
    cmsis_dir = None
    if CMSIS_NN in methods:
        from . import cmsis_nn

        try:
            cmsis_dir = cmsis_nn.ensure_source()
        except cmsis_nn.CmsisNnError as exc:
            raise BenchError(str(exc), USAGE_ERROR) from None

    results: list[Result] = []
    for board in boards:
        for method, groups in plans:
            for spec, group in groups:
                label = "CMSIS-NN arm_softmax_s16 with " if method == CMSIS_NN else ""
                print(
                    f"bench: {board.env}: {label}{spec.command_line()}: L = "
                    f"{', '.join(str(n) for n in group)}",
                    file=sys.stderr,
                )
                cmsis = cmsis_dir if method == CMSIS_NN else None
                results += measure(firmware_dir, board, spec, group, plugin, args.verbose, cmsis)

    print(f"Executed instructions per element ({describe_setup(results)})")
    print(UNIT_NOTE)
    print()
    print(text_table(summary_header(results, lengths), summary_rows(results, lengths)))
    print()
    print(text_table(detail_header(), detail_rows(results)))
    files: list[tuple[Path, str | bytes]] = []
    if args.json is not None:
        files.append((args.json, json_report(results)))
    if args.markdown is not None:
        files.append((args.markdown, markdown_report(results, lengths)))
    write_all_or_nothing(files)
    return 0
