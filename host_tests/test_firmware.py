"""Firmware on emulated boards: on-target exactness (``pio test``), the benchmark, packaging.

Each PlatformIO environment is built and tested once per session (one ``pio test`` call for all
boards); the benchmark runs once for all boards. A missing toolchain, emulator or PlatformIO
skips these tests locally and fails them in CI (LUTCODEGEN_REQUIRE_TOOLS=1).
"""

from __future__ import annotations

import configparser
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cbuild import REQUIRE_TOOLS, require_tool

import lutcodegen
from lutcodegen.firmware import bench
from lutcodegen.firmware import build as fw
from lutcodegen.firmware.boards import SEMIHOSTING_STDIO
from lutcodegen.methods.lut import recip_divide
from lutcodegen.tflm.build import compiler_version

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "firmware"
BOARDS = [b.env for b in fw.emulated_boards(FIRMWARE)]
#: The boards' cores with a fast divider, where lut's reciprocal is two UDIVs by default
DIVIDE_CPUS = {"cortex-m4", "cortex-m33", "cortex-m55"}
#: Minutes are not spent here: the whole module takes well under one on two cores.
PIO_TIMEOUT = 900


def require_firmware_tools() -> None:
    for tool in (
        "arm-none-eabi-gcc",
        "riscv64-unknown-elf-gcc",
        "qemu-system-arm",
        "qemu-system-riscv32",
        "cc",
        "timeout",
    ):
        require_tool(tool)
    try:
        import platformio  # noqa: F401
    except ImportError:
        message = "PlatformIO not installed (pip install -e '.[firmware]')"
        if REQUIRE_TOOLS:
            pytest.fail(message + " (LUTCODEGEN_REQUIRE_TOOLS=1)")
        pytest.skip(message)


def pio(args: list[str], project: Path = FIRMWARE, **env: str) -> subprocess.CompletedProcess:
    environment = fw.pio_environment(project)
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "platformio", *args, "-d", str(project)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=PIO_TIMEOUT,
    )


def expected_test_names() -> list[str]:
    """The test names the firmware must report: from the same options pio reads."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(FIRMWARE / "platformio.ini")
    main = lutcodegen.Spec(
        **{
            k: fw.convert_option(k, parser.get("lutcodegen", k))
            for k in fw.SPEC_OPTIONS
            if parser.has_option("lutcodegen", k)
        }
    )
    lines = [
        ln for ln in parser.get("env", "custom_lutcodegen_test_specs").splitlines() if ln.strip()
    ]
    specs = [main] + [
        fw.parse_spec_line(ln, f"golden{i}", main.method) for i, ln in enumerate(lines, 1)
    ]
    names = [
        n
        for k in range(len(specs))
        for n in (f"status_codes_kernel{k}", f"partial_overlap_kernel{k}")
    ]
    for k, spec in enumerate(specs):
        names += [f"golden_kernel{k}_length{n}" for n in fw.golden_lengths(spec.max_row)]
    return names


@pytest.fixture(scope="session")
def pio_test_output() -> tuple[int, dict[str, str]]:
    """``pio test -v`` on every emulated board, once; output split per environment."""
    require_firmware_tools()
    args = ["test", "-v"]
    for board in BOARDS:
        args += ["-e", board]
    done = pio(args)
    sections = re.split(r"Processing test_softmax in (\S+) environment", done.stdout)
    per_env = dict(zip(sections[1::2], sections[2::2]))
    return done.returncode, per_env


@pytest.mark.firmware
def test_pio_test_succeeds(pio_test_output) -> None:
    status, per_env = pio_test_output
    assert sorted(per_env) == sorted(BOARDS)
    assert status == 0, "\n".join(per_env.values())[-4000:]


@pytest.mark.firmware
@pytest.mark.parametrize("board", BOARDS)
def test_on_target_bit_exact(board: str, pio_test_output) -> None:
    _, per_env = pio_test_output
    output = per_env[board]
    passed = re.findall(r":\d+:(\w+):PASS", output)
    failed = re.findall(r":\d+:(\w+):FAIL: (.*)", output)
    assert not failed, output[-4000:]
    assert passed == expected_test_names()
    assert f"{len(passed)} Tests 0 Failures 0 Ignored" in output


@pytest.mark.firmware
@pytest.mark.parametrize("board", ["microbit", "sifive_e"])
def test_wrong_golden_value_fails_with_position(board: str, tmp_path: Path) -> None:
    """One expected value off by one LSB must fail pio test and name that position."""
    require_firmware_tools()
    kernel, length, position = 0, 17, 40
    dsg = lutcodegen.design_for(lutcodegen.Spec())
    true_value = int(lutcodegen.reference(dsg, fw.golden_rows(length)).ravel()[position])
    top = (1 << (dsg.spec.bits - 1)) - 1
    wrong = true_value + 1 if true_value < top else true_value - 1
    done = pio(
        ["test", "-v", "-e", board],
        LUTCODEGEN_GOLDEN_FLIP=f"{kernel}:{length}:{position}",
        PLATFORMIO_BUILD_DIR=str(tmp_path / "build"),
    )
    assert done.returncode != 0
    assert f"pos {position}: act {true_value} ref {wrong}" in done.stdout
    assert f"golden_kernel0_length{length}:FAIL: 1 mismatches of" in done.stdout
    assert f"{len(expected_test_names())} Tests 1 Failures 0 Ignored" in done.stdout


@pytest.fixture(scope="session")
def bench_results(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str, str]:
    """``lutcodegen bench --board all`` once: JSON, Markdown and the printed table."""
    require_firmware_tools()
    require_tool("cc")
    if not (FIRMWARE / "tools" / "qemu-plugin" / "include" / "qemu-plugin.h").is_file():
        message = "qemu-plugin.h missing (scripts/setup.sh fetches it)"
        if REQUIRE_TOOLS:
            pytest.fail(message)
        pytest.skip(message)
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "lutcodegen",
            "bench",
            "--board",
            "all",
            "--json",
            str(out / "bench.json"),
            "--markdown",
            str(out / "bench.md"),
        ],
        capture_output=True,
        text=True,
        timeout=PIO_TIMEOUT,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return (
        json.loads((out / "bench.json").read_text()),
        (out / "bench.md").read_text(),
        done.stdout,
    )


@pytest.mark.firmware
def test_bench_covers_every_board_method_and_length(bench_results) -> None:
    data, markdown, printed = bench_results
    results = data["results"]
    got = {(r["board"], r["method"], r["length"]) for r in results}
    want = {(b, m, n) for b in BOARDS for m in lutcodegen.METHODS for n in (16, 64, 256, 1024)}
    assert got == want
    assert "not cycles" in printed and "not cycles" in markdown and "not cycles" in data["unit"]
    assert "| board |" in markdown


@pytest.mark.firmware
def test_bench_figures_are_consistent(bench_results) -> None:
    for r in bench_results[0]["results"]:
        spec = lutcodegen.Spec(
            method=r["method"], bits=r["bits"], input_scale=r["input_scale"], max_row=r["max_row"]
        )
        assert r["max_row"] == max(256, r["length"])
        dsg = lutcodegen.design_for(spec)
        # lut's const data: the exp table and, with the seeded reciprocal, its seed table; cores
        # that take the reciprocal from UDIV (LCG_RECIP_DIV) compile the exp table only
        tables = dsg.const_bytes if spec.method == "lut" else dsg.table_bytes
        assert r["design_table_bytes"] == tables
        if spec.method == "lut" and recip_divide(dsg) is not None and r["cpu"] in DIVIDE_CPUS:
            tables = dsg.table_bytes
        assert r["table_bytes"] == tables
        assert r["rows"] * r["length"] == max(1024, r["length"])
        assert r["instructions"] == pytest.approx(
            r["instructions_per_element"] * r["rows"] * r["length"]
        )
        # a softmax reads, sums and writes every element: more than 3 instructions each
        assert 3 < r["instructions_per_element"] < 10000
        assert any(name.startswith("lcg_") for name in r["code_functions"])
        assert r["code_bytes"] == sum(r["code_functions"].values()) > 0
        assert 0 < r["stack_bytes"] < 1024
        assert r["static_ram_bytes"] == 0


def _call_key(r: dict) -> tuple:
    """What identifies one call in the bench's JSON."""
    return r["board"], r["method"], r["max_row"], r["length"]


@pytest.mark.firmware
def test_bench_counts_are_repeatable(bench_results, tmp_path: Path) -> None:
    json_path = tmp_path / "again.json"
    assert (
        bench.main(
            ["--board", "an386", "--board", "virt", "--lengths", "16,64", "--json", str(json_path)]
        )
        == 0
    )
    again = json.loads(json_path.read_text())["results"]
    first = {_call_key(r): r["instructions"] for r in bench_results[0]["results"]}
    assert again
    for r in again:
        assert r["instructions"] == first[_call_key(r)]


def _compilers_of_the_shipped_bench() -> dict[str, str]:
    """The compilers docs/firmware.md says ``docs/firmware-bench.json`` was measured with."""
    setup = " ".join((ROOT / "docs" / "firmware.md").read_text().split())
    found = dict(re.findall(r"(arm-none-eabi-gcc|riscv64-unknown-elf-gcc) (\d+\.\d+\.\d+)", setup))
    assert len(found) == 2, "docs/firmware.md no longer names the bench's compilers"
    return found


@pytest.mark.firmware
def test_the_shipped_bench_figures_are_current(bench_results) -> None:
    """``docs/firmware-bench.json``, which the README and the docs quote (test_docs_figures), is
    what the bench measures now: a kernel change that moves a count must regenerate it with
    ``lutcodegen bench --board all --json docs/firmware-bench.json``. Counts depend on the
    compiler, so other compiler versions than the ones the JSON was measured with skip this."""
    for compiler, version in _compilers_of_the_shipped_bench().items():
        here = compiler_version(compiler)
        if here != version:
            pytest.skip(
                f"docs/firmware-bench.json was measured with {compiler} {version}, not {here}"
            )
    shipped = json.loads((ROOT / "docs" / "firmware-bench.json").read_text())["results"]
    now = {_call_key(r): r for r in bench_results[0]["results"]}
    then = {_call_key(r): r for r in shipped}
    assert now.keys() == then.keys()
    stale = [
        f"{k} {field}: {then[k].get(field)} -> {value}"
        for k, r in now.items()
        for field, value in r.items()
        if then[k].get(field) != value
    ]
    assert not stale, f"docs/firmware-bench.json is stale in {len(stale)} figures: {stale[:5]}"


@pytest.mark.firmware
def test_library_example_builds_and_matches_reference() -> None:
    """The root library.json generates the kernel for another project from its options."""
    require_firmware_tools()
    example = ROOT / "examples" / "platformio_library"
    done = pio(["run", "-t", "exec"], project=example)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    dsg = lutcodegen.design_for(lutcodegen.Spec(bits=16, prefix="demo"))
    expected = lutcodegen.reference(dsg, np.array([[0, 16, 32, 48]], dtype=np.int8))[0]
    # semihosting output reaches QEMU's stderr
    assert "status 0: " + " ".join(str(int(v)) for v in expected) in done.stdout + done.stderr


def test_bench_exits_2_without_firmware_dir(tmp_path: Path, capsys) -> None:
    assert bench.main(["--firmware-dir", str(tmp_path)]) == 2
    assert "firmware project not found" in capsys.readouterr().err


def test_bench_exits_2_for_unknown_board(capsys) -> None:
    assert bench.main(["--board", "no_such_board"]) == 2
    assert "unknown board" in capsys.readouterr().err


def test_bench_is_a_cli_subcommand() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lutcodegen", "bench", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0 and "not cycles" in done.stdout


def test_library_json_version_matches_package() -> None:
    manifest = json.loads((ROOT / "library.json").read_text())
    assert manifest["version"] == lutcodegen.__version__
    assert manifest["name"] == "lutcodegen"
    assert (ROOT / manifest["build"]["extraScript"]).is_file()


def test_no_generated_code_in_the_firmware_sources() -> None:
    """Generated kernels live in the build folder only; the sources never carry a copy."""
    tracked = subprocess.run(
        ["git", "ls-files", "firmware", "examples"], cwd=ROOT, capture_output=True, text=True
    )
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    # The golden files, compared with the generator in test_examples.py, are generated on purpose.
    golden = {
        "examples/softmax_lut.c",
        "examples/split/softmax_lut.c",
        "examples/split/softmax_lut.h",
    }
    for name in set(tracked.stdout.split()) - golden:
        assert not re.search(r"_softmax\.[ch]$|golden_vectors\.c$|_config\.h$", name), name
        if name.endswith((".c", ".h")):
            assert "Generated by lutcodegen" not in (ROOT / name).read_text(), name


def _trace_regions(board: fw.Board, elf: Path, tmp_path: Path) -> list[int]:
    """Instructions between the markers, counted from QEMU's one-instruction-per-block trace.

    A second, independent counter: no plugin, just ``-singlestep -d exec,nochain`` and the
    program counter of every executed instruction.
    """
    symbols = bench.read_symbols(elf, board)
    start = symbols["bench_start"].address & ~1
    stop = symbols["bench_stop"].address & ~1
    log = tmp_path / f"{board.env}.trace"
    subprocess.run(
        [
            "timeout",
            "120",
            *board.qemu,
            *SEMIHOSTING_STDIO,
            "-singlestep",
            "-d",
            "exec,nochain",
            "-D",
            str(log),
            "-kernel",
            str(elf),
        ],
        capture_output=True,
        check=True,
        timeout=180,
    )
    regions, count, counting = [], 0, False
    with open(log) as f:
        for line in f:
            m = re.match(r"Trace \d+: \S+ \[[0-9a-f]+/([0-9a-f]+)/", line)
            if not m:
                continue
            pc = int(m.group(1), 16)
            if pc == start:
                counting, count = True, 0
            elif pc == stop and counting:
                regions.append(count)
                counting = False
            count += counting
    return regions


@pytest.mark.firmware
@pytest.mark.parametrize("board_name", ["an386", "virt"])
def test_plugin_counts_equal_an_instruction_trace(
    board_name: str, bench_results, tmp_path: Path
) -> None:
    board = next(b for b in fw.emulated_boards(FIRMWARE) if b.env == board_name)
    measured = [
        r
        for r in bench_results[0]["results"]
        if r["board"] == board_name and r["method"] == "lut" and r["max_row"] == 256
    ]
    # rebuilds only if another test built this design with other lengths meanwhile
    elf = bench.build_firmware(FIRMWARE, board, lutcodegen.Spec(), [16, 64, 256], verbose=False)
    regions = _trace_regions(board, elf, tmp_path)
    overhead = regions[0]
    assert [r["marker_overhead"] for r in measured] == [overhead] * len(measured)
    assert [r["instructions"] for r in measured] == [n - overhead for n in regions[1:]]
