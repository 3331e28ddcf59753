"""The speed figures the README and the docs quote, held to the bench output they quote.

``docs/firmware-bench.json`` is what ``lutcodegen bench --board all --json`` wrote, and
``docs/tflm-bench*.json`` what ``lutcodegen bench --tflm`` wrote (the commands are in
``docs/firmware.md`` and ``docs/tflite.md``). The tables and sentences checked here were copied
from them by hand; when the kernels change and the JSON is measured again, a figure left behind
fails here instead of going stale in a document. Nothing is built or run: this reads files only.
(``test_firmware`` checks that ``docs/firmware-bench.json`` is what the bench measures now.)
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from lutcodegen.firmware.bench import Result, markdown_table, summary_header, summary_rows
from lutcodegen.tflm import bench as tflm_bench

ROOT = Path(__file__).resolve().parent.parent
LENGTHS = (16, 64, 256, 1024)

#: How the headline tables name each board (the QEMU machine in backticks): its environments.
HEADLINE_BOARDS = {
    "mps2-an386": ["an386"],
    "microbit": ["microbit"],
    "mps2-an505": ["an505"],
    "mps3-an547": ["an547"],
    "sifive_e": ["sifive_e", "virt"],
}
#: The comparison table's columns: the boards each column's range covers.
FAMILIES = {"Cortex-M4": ["an386"], "Cortex-M0+": ["microbit"], "RV32": ["sifive_e", "virt"]}


@pytest.fixture(scope="module")
def results() -> list[Result]:
    data = json.loads((ROOT / "docs" / "firmware-bench.json").read_text())
    out = []
    for record in data["results"]:
        record = dict(record)
        record.pop("ram_bytes")  # a property of Result, written for readers of the JSON
        out.append(Result(**record))
    return out


def _doc(name: str) -> str:
    return (ROOT / name).read_text()


def _table(text: str, header_start: str) -> list[list[str]]:
    """The body rows of the Markdown table whose header line starts with ``header_start``."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(header_start)]
    assert starts, f"no table starting {header_start!r}"
    start = starts[0]
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def _call(results: Sequence[Result], board: str, length: int, method: str = "lut") -> Result:
    """The one measured call: L >= 1024 from the design for that length, shorter rows from the
    default design (max_row 256)."""
    (r,) = [r for r in results if (r.board, r.method, r.length) == (board, method, length)]
    return r


def _per_element(results: Sequence[Result], board: str, length: int, method: str = "lut") -> str:
    """The bench's insn/elem as its tables print it."""
    return f"{_call(results, board, length, method).instructions_per_element:.1f}"


def test_the_measured_table_is_the_benchs(results: list[Result]) -> None:
    table = markdown_table(summary_header(results, LENGTHS), summary_rows(results, LENGTHS))
    assert table in _doc("docs/firmware.md")


def test_the_per_row_table_is_the_benchs(results: list[Result]) -> None:
    rows = _table(_doc("docs/firmware.md"), "| board | L=16 | L=64 | L=256 | L=1024 |")
    assert rows, "docs/firmware.md: the per-row table is missing"
    for board, *cells in rows:
        expected = [f"{_call(results, board, n).instructions_per_row:.1f}" for n in LENGTHS]
        assert cells == expected, board


@pytest.mark.parametrize("name", ["README.md", "docs/performance.md"])
def test_the_headline_table_is_the_benchs(results: list[Result], name: str) -> None:
    rows = _table(_doc(name), "| board | L = 16 | L = 64 | L = 256 | L = 1024 |")
    assert len(rows) == len(HEADLINE_BOARDS), name
    for label, *cells in rows:
        named = re.search(r"`([^`]+)`", label)
        assert named, f"{name}: {label} names no board"
        machine = named.group(1)
        for board in HEADLINE_BOARDS[machine]:
            per_element = [c.strip("*") for c in cells[: len(LENGTHS)]]
            assert per_element == [_per_element(results, board, n) for n in LENGTHS], label
            r = _call(results, board, 256)
            assert cells[-1] == f"{r.code_bytes} / {r.table_bytes} / {r.stack_bytes}", label


def test_the_cmsis_nn_comparison_quotes_the_bench(results: list[Result]) -> None:
    rows = _table(_doc("docs/firmware.md"), "| implementation | Cortex-M4 insn/elem |")
    quoted = {row[0]: row[1:4] for row in rows if row[0].startswith("lutcodegen")}
    assert len(quoted) == 3, quoted

    def span(boards: list[str], lengths: Sequence[int]) -> str:
        values = sorted(float(_per_element(results, b, n)) for b in boards for n in lengths)
        low, high = f"{values[0]:.1f}", f"{values[-1]:.1f}"
        return low if low == high else f"{low}-{high}"

    for label, cells in quoted.items():
        bounds = re.search(r"L = (\d+)(?:\.\.(\d+))?", label)
        assert bounds, label
        low, high = int(bounds[1]), int(bounds[2] or bounds[1])
        lengths = [n for n in LENGTHS if low <= n <= high]
        expected = [span(boards, lengths) for boards in FAMILIES.values()]
        assert [c.split(" ")[0] for c in cells] == expected, label


def test_the_readme_quotes_the_bench(results: list[Result]) -> None:
    readme = _doc("README.md")
    fast = re.search(
        r"(\d+\.\d) executed instructions per element on Cortex-M4, (\d+\.\d) on Cortex-M0\+"
        r"\s+and\s+(\d+\.\d)\s+on\s+RV32IMAC\s+at\s+L = 256",
        readme,
    )
    assert fast, "README: the 'Fast' line is missing"
    assert list(fast.groups()) == [
        _per_element(results, b, 256) for b in ("an386", "microbit", "virt")
    ]
    tflite = re.search(r"at (\d+\.\d) instructions per\s+element instead of ~510", readme)
    assert tflite, "README: the TFLite Micro line's count is missing"
    assert tflite[1] == _per_element(results, "an386", 256, "tflite")
    for row in _table(readme, "| `--method` | what it is |"):
        method = row[0].split("`")[1]
        assert row[-1] == _per_element(results, "an386", 256, method), method


def test_the_per_row_fit_is_the_benchs(results: list[Result]) -> None:
    """docs/performance.md splits the count into per element and per row, from L = 64 and 256."""

    def fit(board: str) -> tuple[str, str]:
        r64, r256 = (_call(results, board, n).instructions_per_row for n in (64, 256))
        slope = (r256 - r64) / 192
        return f"{slope:.1f}", f"{r64 - 64 * slope:.0f}"

    text = " ".join(_doc("docs/performance.md").split())
    stated = re.search(
        r"cost (\d+\.\d) per element on Cortex-M4 \((\d+\.\d) on M0\+, (\d+\.\d) on RV32\), and "
        r"each row adds about (\d+) \((\d+) on M0\+, (\d+) on RV32\)",
        text,
    )
    assert stated, "docs/performance.md: the per-row sentence is missing"
    (m4, m4_row), (m0, m0_row), (rv, rv_row) = (fit(b) for b in ("an386", "microbit", "virt"))
    assert stated.groups() == (m4, m0, rv, m4_row, m0_row, rv_row)


# --- TFLite Micro ---------------------------------------------------------------------------


def _tflm_rows(name: str) -> list[tflm_bench.Row]:
    data = json.loads((ROOT / "docs" / f"{name}.json").read_text())
    return [tflm_bench.Row(**r) for r in data["results"]]


def _tflm_cells(name: str) -> dict[tuple[str, str], dict[str, str]]:
    """``docs/<name>.json`` as ``lutcodegen bench --tflm`` prints it: cells by (model, variant)."""
    header, body = tflm_bench.table(_tflm_rows(name))
    return {(cells[0], cells[1]): dict(zip(header, cells)) for cells in body}


def _numbers(text: str) -> list[float]:
    return [float(n.replace(",", "")) for n in re.findall(r"\d[\d,]*(?:\.\d+)?", text)]


def _quotes(doc: str, bench: list[str]) -> bool:
    """The numbers of a document's cell appear, in order, among those of the bench's cells."""
    pool = iter(_numbers(" ".join(bench)))
    return all(any(n == m for m in pool) for n in _numbers(doc))


@pytest.mark.parametrize("name", ["tflm-bench", "tflm-bench-16x8"])
def test_the_tflm_tables_are_the_benchs(name: str) -> None:
    table = tflm_bench.markdown_table(*tflm_bench.table(_tflm_rows(name)))
    assert table in _doc(f"docs/{name}.md")


#: Each table that quotes the TFLM bench: the document, the start of the table's header, the
#: bench output it quotes, and per quoted column the bench columns whose numbers it gives.
TFLM_QUOTES = [
    (
        "docs/tflite.md",
        "| model | softmax | instructions per inference |",
        "tflm-bench",
        {
            2: ["insn/inference"],
            3: ["speed-up"],
            4: ["in softmax", "softmax share"],
            5: ["softmax speed-up"],
            6: ["insn/softmax elem"],
        },
    ),
    (
        "README.md",
        "| model | softmax | instructions per inference |",
        "tflm-bench",
        {2: ["insn/inference"], 3: ["speed-up"], 4: ["in softmax", "softmax speed-up"]},
    ),
    (
        "docs/tflite.md",
        "| softmax | instructions per inference |",
        "tflm-bench-16x8",
        {
            1: ["insn/inference"],
            2: ["speed-up"],
            3: ["in softmax", "softmax share"],
            4: ["softmax speed-up"],
            5: ["insn/softmax elem"],
            6: ["flash B"],
            7: ["arena B"],
        },
    ),
]


@pytest.mark.parametrize(
    "doc, header, name, columns", TFLM_QUOTES, ids=["tflite.md", "README.md", "tflite.md-16x8"]
)
def test_the_tflm_figures_quote_the_bench(
    doc: str, header: str, name: str, columns: dict[int, list[str]]
) -> None:
    bench = _tflm_cells(name)
    rows = _table(_doc(doc), header)
    assert len(rows) == len(bench), f"{doc}: {len(rows)} rows for {len(bench)} measured"
    models = sorted({model for model, _ in bench})
    for row in rows:
        if len(models) == 1:
            model, variant = models[0], row[0]
        else:
            (model,) = [m for m in models if m.startswith(f"vit{row[0].split()[0]}_")]
            variant = row[1]
        variant = next(v for v in tflm_bench.VARIANTS if v in variant)
        cells = bench[(model, variant)]
        for index, sources in columns.items():
            quoted = [cells[c] for c in sources]
            assert _quotes(row[index], quoted), f"{doc}: {row[index]!r} is not {quoted} ({row[:2]})"
