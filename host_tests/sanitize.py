"""Build and run the hostile-input harness (``harness/``) for one generated kernel under
AddressSanitizer and UndefinedBehaviorSanitizer, and check what it ran against the reference.

The harness itself checks memory safety, status codes, canaries, determinism, row independence
and in-place use (it aborts on any violation); it cannot know the exact outputs, so it dumps
every call and ``check_dump`` compares each accepted call with the numpy reference model.
"""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from cbuild import require_tool

from lutcodegen import Spec, design_for, reference, render
from lutcodegen.methods import Design

HARNESS = Path(__file__).resolve().parent / "harness"

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
MAX_ROWS_PER_UNIT = 64  # softmax_harness.c: MAX_ROWS_PER_UNIT
FLAG_INPUT_NULL, FLAG_OUTPUT_NULL, FLAG_IN_PLACE = 1, 2, 4

#: Sanitizer variants: name -> (compiler, flags). clang adds checks gcc lacks: silent
#: truncating conversions and left shifts of unsigned values that lose bits (both defined
#: behaviour, both bugs here). "msan" (MemorySanitizer) reports any use of memory the kernel
#: read before it was written, e.g. an output element it forgot to write.
VARIANTS = {
    "gcc": ("gcc", ["-fsanitize=address,undefined"]),
    "clang": ("clang", ["-fsanitize=address,undefined,implicit-conversion,unsigned-shift-base"]),
    "msan": ("clang", ["-fsanitize=memory", "-fsanitize-memory-track-origins=2"]),
}
COMMON = [
    "-fno-sanitize-recover=all",
    "-fno-omit-frame-pointer",
    "-g",
    "-O1",
    "-std=c99",
    "-pedantic",
    "-Wall",
    "-Wextra",
    "-Werror",
]
RUN_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:halt_on_error=1:strict_string_checks=1",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}


def encode_unit(flags: int, num_rows: int, row_size: int, logits: bytes = b"") -> bytes:
    """One harness unit (format in softmax_harness.c)."""
    return struct.pack("<Bii", flags, num_rows, row_size) + logits


def pack(units: Iterable[bytes]) -> bytes:
    """Units as replay_main.c reads them: uint32 length, then the bytes."""
    return b"".join(struct.pack("<I", len(u)) + u for u in units)


def expected_status(flags: int, num_rows: int, row_size: int, max_row: int) -> int:
    """The documented status for a call, in the documented order of checks."""
    if flags & (FLAG_INPUT_NULL | FLAG_OUTPUT_NULL):
        return -1
    if num_rows < 0:
        return -2
    if not 1 <= row_size <= max_row:
        return -3
    return 0


def harness_defines(dsg: Design) -> list[str]:
    spec = dsg.spec
    prefix = spec.prefix.upper()
    return [
        '-DKERNEL_HEADER="k.h"',
        f"-DK_FUNC={spec.function_name}",
        f"-DK_IN_T={spec.input_ctype}",
        f"-DK_OUT_T={spec.output_ctype}",
        f"-DK_MAX_ROW={prefix}_MAX_ROW",
        f"-DK_OUT_BITS={prefix}_OUTPUT_BITS",
    ] + ([f"-DK_SCRATCH_T={spec.prefix}_scratch_t"] if spec.scratch_row == "on" else [])


def build_harness(dsg: Design, variant: str, root: Path, fuzzer: bool = False) -> Path:
    """Compile kernel + harness (+ replay driver, or libFuzzer) with sanitizers; cached."""
    compiler, flags = VARIANTS[variant]
    cc = require_tool(compiler)
    generated = render(dsg, header_name="k.h")
    mode = "fuzzer" if fuzzer else "replay"
    key = hashlib.sha256((generated.source + variant + mode).encode()).hexdigest()[:16]
    folder = root / key
    binary = folder / f"harness-{mode}"
    if binary.exists():
        return binary
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "k.c").write_text(generated.source)
    (folder / "k.h").write_text(generated.header or "")
    sanitize = list(flags)
    sources = ["k.c", str(HARNESS / "softmax_harness.c")]
    if fuzzer:
        sanitize[0] = sanitize[0].replace("=", "=fuzzer,", 1)
    else:
        sources.append(str(HARNESS / "replay_main.c"))
    cmd = [cc, *sanitize, *COMMON, *harness_defines(dsg), "-I.", *sources, "-o", binary.name]
    result = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise AssertionError(f"harness build failed: {' '.join(cmd)}\n{result.stderr}")
    return binary


@dataclass(frozen=True)
class Record:
    """One call as the harness dumped it."""

    status: int
    num_rows: int
    row_size: int
    flags: int
    x: np.ndarray | None  #: (num_rows, row_size) logits, accepted calls only
    y: np.ndarray | None  #: the kernel's outputs, same shape


def read_dump(path: Path, out_dtype: type, in_dtype: type = np.int8) -> list[Record]:
    """Parse the LCG_HARNESS_DUMP file."""
    data = path.read_bytes() if path.exists() else b""
    size = np.dtype(out_dtype).itemsize
    in_size = np.dtype(in_dtype).itemsize
    records, at = [], 0
    while at < len(data):
        status, num_rows, row_size, flags = struct.unpack_from("<iiii", data, at)
        at += 16
        x = y = None
        if status == 0:
            count = num_rows * row_size
            x = np.frombuffer(data, in_dtype, count, at).reshape(num_rows, row_size)
            at += count * in_size
            y = np.frombuffer(data, out_dtype, count, at).reshape(num_rows, row_size)
            at += count * size
        records.append(Record(status, num_rows, row_size, flags, x, y))
    return records


@dataclass(frozen=True)
class ReplayResult:
    """What a replay ran and proved."""

    units: int
    accepted_calls: int
    rejected_calls: int
    rows: int
    outputs: int


def check_dump(dsg: Design, records: Sequence[Record]) -> ReplayResult:
    """Every status as documented; every accepted call's outputs equal to the reference."""
    max_row = dsg.spec.max_row
    by_length: dict[int, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    accepted = rejected = 0
    for rec in records:
        want = expected_status(rec.flags, rec.num_rows, rec.row_size, max_row)
        assert rec.status == want, f"{rec}: status {rec.status}, documented {want}"
        if rec.status != 0:
            rejected += 1
            continue
        accepted += 1
        if rec.num_rows > 0:
            by_length[rec.row_size].append((rec.x, rec.y))
    rows = outputs = 0
    for length, pairs in sorted(by_length.items()):
        x = np.concatenate([p[0] for p in pairs])
        y = np.concatenate([p[1] for p in pairs]).astype(np.int64)
        expected = reference(dsg, x)
        bad = np.argwhere(y != expected)
        if len(bad):
            lines = [
                f"row {tuple(int(v) for v in x[p[0]][:8])}..: pos {int(p[1])}: "
                f"act {y[tuple(p)]} ref {expected[tuple(p)]}"
                for p in bad[:5]
            ]
            raise AssertionError(
                f"length {length}: {len(bad)} mismatches of {y.size}\n" + "\n".join(lines)
            )
        rows += x.shape[0]
        outputs += y.size
    return ReplayResult(len(records), accepted, rejected, rows, outputs)


def run_replay(
    binary: Path, packs: Sequence[Path], dump: Path, timeout: float = 600
) -> tuple[int, str]:
    """Run the replay driver; returns (units replayed, stderr). Fails on any report."""
    if dump.exists():
        dump.unlink()
    env = dict(os.environ, LCG_HARNESS_DUMP=str(dump), **RUN_ENV)
    result = subprocess.run(
        [str(binary), *map(str, packs)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    assert_clean(result.returncode, result.stderr)
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("replayed "), result.stdout
    return int(last.split()[1]), result.stderr


def assert_clean(returncode: int, stderr: str) -> None:
    """No sanitizer report, no harness failure, exit status 0."""
    markers = ("runtime error", "Sanitizer", "harness:", "ERROR: libFuzzer", "deadly signal")
    found = [m for m in markers if m in stderr]
    assert returncode == 0 and not found, f"exit {returncode}, found {found}:\n{stderr[-6000:]}"


def hostile_units(max_row: int, in_place_ok: bool) -> list[bytes]:
    """Every status path and every boundary of the contract, as harness units."""
    sizes = [INT32_MIN, -1, 0, 1, 2, max_row - 1, max_row, max_row + 1, INT32_MAX]
    counts = [INT32_MIN, -1, 0, 1, 2, MAX_ROWS_PER_UNIT]
    logits = bytes([0x7F, 0x80, 0x00, 0xFF, 0x01, 0x81, 0x40, 0xC0])
    units = []
    for flags in (0, FLAG_INPUT_NULL, FLAG_OUTPUT_NULL, FLAG_INPUT_NULL | FLAG_OUTPUT_NULL):
        for num_rows in counts:
            for row_size in sizes:
                if flags == 0 and num_rows == MAX_ROWS_PER_UNIT and row_size > 4096:
                    continue  # long rows are covered with fewer of them
                units.append(encode_unit(flags, num_rows, row_size, logits))
    units.append(b"")  # every field zero: row_size 0
    units.append(encode_unit(0, 3, min(max_row, 5)))  # no logits: zeros
    if in_place_ok:
        units += [encode_unit(FLAG_IN_PLACE, 4, n, logits) for n in {1, min(max_row, 33), max_row}]
    return units


def in_place_allowed(spec: Spec) -> bool:
    """The documented in-place rule: input and output elements of the same size."""
    return spec.bits <= 8 or spec.input_bits == 16


def _exactness_blocks16(spec: Spec, rng: np.random.Generator) -> list[np.ndarray]:
    """int16 rows: every difference 0..65535 at length 2, strided subsets of them at the other
    short lengths, edge rows, and uniform and attention-like rows up to max_row."""
    from lutcodegen.analysis import rowsets

    blocks = []
    for length in range(1, min(16, spec.max_row) + 1):
        step = 1 if length == 2 else 509
        blocks += [
            rowsets.every_difference16(length, step, offset=length % step),
            rowsets.edge_rows16(length),
        ]
    long = {1, 3, 17, 100, spec.max_row // 2, spec.max_row - 1, spec.max_row}
    for length in sorted(n for n in long if 1 <= n <= spec.max_row):
        count = max(2, min(256, 20000 // length))
        blocks += [
            rowsets.uniform16(rng, count, length),
            rowsets.gaussian16(rng, count, length, spec.scale),
            rowsets.edge_rows16(length),
        ]
    return blocks


def exactness_units(spec: Spec, seed: int = 8) -> list[bytes]:
    """The exactness test rows (every table index, edge rows, random and attention-like rows up
    to max_row) as harness units of at most MAX_ROWS_PER_UNIT rows each."""
    from lutcodegen.analysis import rowsets

    rng = np.random.default_rng(seed)
    blocks: list[np.ndarray] = []
    if spec.input_bits == 16:
        return _units(_exactness_blocks16(spec, rng))
    for length in range(1, min(64, spec.max_row) + 1):
        blocks.append(np.concatenate([rowsets.every_difference(length), rowsets.edge_rows(length)]))
    long = {1, 2, 3, 17, 100, spec.max_row // 2, spec.max_row - 1, spec.max_row}
    for length in sorted(n for n in long if 1 <= n <= spec.max_row):
        count = max(2, min(256, 20000 // length))
        blocks += [
            rowsets.uniform(rng, count, length),
            rowsets.gaussian(rng, count, length, spec.scale),
            rowsets.edge_rows(length),
        ]
        if 64 < length <= 4096:  # 256 rows each: beyond 4096 this would dominate the run time
            blocks.append(rowsets.every_difference(length))
    return _units(blocks)


def _units(blocks: Sequence[np.ndarray]) -> list[bytes]:
    """Row blocks as harness units of at most MAX_ROWS_PER_UNIT rows each."""
    units = []
    for block in blocks:
        for start in range(0, block.shape[0], MAX_ROWS_PER_UNIT):
            part = np.ascontiguousarray(block[start : start + MAX_ROWS_PER_UNIT])
            units.append(encode_unit(0, part.shape[0], part.shape[1], part.tobytes()))
    return units


def replay_spec(spec: Spec, variant: str, root: Path, units: Sequence[bytes]) -> ReplayResult:
    """Build the sanitized replay harness for ``spec``, run ``units``, check against reference."""
    dsg = design_for(spec)
    binary = build_harness(dsg, variant, root)
    pack_file = binary.parent / f"units-{variant}.pack"
    pack_file.write_bytes(pack(units))
    dump = binary.parent / f"dump-{variant}.bin"
    replayed, _ = run_replay(binary, [pack_file], dump)
    assert replayed == len(units)
    out_dtype = np.int8 if spec.bits <= 8 else np.int16
    in_dtype = np.int8 if spec.input_bits == 8 else np.int16
    result = check_dump(dsg, read_dump(dump, out_dtype, in_dtype))
    assert result.units == len(units)
    dump.unlink()
    return result
