"""``--scratch-row on``: the kernel keeps each element's table value in a caller-supplied row
between the sum and the output pass. Its outputs are the reference's, bit for bit (the reference
does not change), on every path the C can take; its scratch argument is checked (NULL, overlap
with the input or the output) before anything is written; and the option is refused where it
does not apply."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rows
from cbuild import require_tool, scratch_dtype
from exactness import (
    assert_equal,
    check,
    check_edge_rows_at_max_row,
    check_random_rows,
    check_short_rows,
)

from lutcodegen import Spec, SpecError, design_for, reference
from lutcodegen.firmware import build as fw
from lutcodegen.firmware.bench import Result, designs_for
from lutcodegen.render import render

#: Every output form and storage width with a scratch row: 16-bit entries and 32-bit products
#: (the default), 32-bit entries with 64-bit sums and products, two product widths by row
#: length, the compact table (per-element lookup), 2-bit and 16-bit outputs, every unroll.
CONFIGS = [
    Spec(scratch_row="on"),
    Spec(scratch_row="on", bits=16),
    Spec(scratch_row="on", bits=2),
    Spec(scratch_row="on", bits=4, input_scale=0.25),
    Spec(scratch_row="on", bits=8, max_row=4096),
    Spec(scratch_row="on", bits=16, max_row=4096),
    Spec(scratch_row="on", bits=8, input_scale=50.0),
    Spec(scratch_row="on", table_layout="compact"),
    Spec(scratch_row="on", bits=16, table_layout="compact", max_row=1000),
    Spec(scratch_row="on", unroll=1),
    Spec(scratch_row="on", unroll=2, bits=16, max_row=5000),
    Spec(scratch_row="on", unroll=4, table_layout="compact", max_row=300),
]

#: The C's optional paths a host can run: without the high multiply, without count leading zeros.
DEFINES = [(), ("LCG_USE_MULHI=0",), ("LCG_USE_CLZ=0",)]


def _ids(spec: Spec) -> str:
    return f"b{spec.bits}-s{spec.input_scale:g}-n{spec.max_row}-{spec.table_layout}-u{spec.unroll}"


@pytest.mark.parametrize("spec", CONFIGS, ids=_ids)
def test_every_table_index_and_short_length(spec: Spec, build_kernel) -> None:
    dsg = design_for(spec)
    check_short_rows(build_kernel(dsg), dsg, 64)


@pytest.mark.parametrize("spec", CONFIGS, ids=_ids)
def test_random_and_edge_rows_up_to_max_row(spec: Spec, build_kernel) -> None:
    dsg = design_for(spec)
    kernel = build_kernel(dsg)
    rng = np.random.default_rng(spec.max_row + spec.bits)
    n = spec.max_row
    check_random_rows(kernel, dsg, rng, {1, 2, 3, 17, 100, n // 2, n - 1, n}, 2)
    check_edge_rows_at_max_row(kernel, dsg)


@pytest.mark.parametrize("defines", DEFINES, ids=lambda d: ",".join(d) or "default")
def test_optional_paths(defines: tuple[str, ...], build_kernel) -> None:
    dsg = design_for(Spec(scratch_row="on", max_row=1024))
    kernel = build_kernel(dsg, defines)
    check_random_rows(kernel, dsg, np.random.default_rng(7), {1, 9, 64, 255, 1024}, 4)


def test_same_outputs_as_without_and_scratch_contents_do_not_matter(build_kernel) -> None:
    """The scratch row is the only difference: the kernel without it gives the same bits, and
    whatever the row held before the call (here all ones) does not show in the outputs."""
    x = rows.uniform(np.random.default_rng(3), 40, 256)
    plain = build_kernel(design_for(Spec()))
    kernel = build_kernel(design_for(Spec(scratch_row="on")))
    assert kernel.scratch is not None
    kernel.scratch[:] = np.iinfo(kernel.scratch.dtype).max
    assert_equal(kernel(x), plain(x))


def test_in_place_and_partial_overlap(build_kernel) -> None:
    """In place gives the reference's outputs; output = input + k (not supported) stays in
    bounds and returns 0: the output pass reads only the scratch row, never the input."""
    dsg = design_for(Spec(scratch_row="on"))
    kernel = build_kernel(dsg)
    x = rows.uniform(np.random.default_rng(5), 30, 64)
    buf = x.copy()
    assert kernel.status(buf, 30, 64, buf) == 0
    assert_equal(buf.astype(np.int64), reference(dsg, x))
    for shift in (1, 3, 8):
        buf = np.full(3 * 64 + shift + 16, 0x5A, dtype=np.int8)
        buf[: 3 * 64] = -128
        buf[::64] = -127
        assert kernel.status(buf[: 3 * 64], 3, 64, buf[shift : shift + 3 * 64]) == 0
        assert (buf[3 * 64 + shift :] == 0x5A).all(), "wrote past the output"


def test_bad_scratch_is_rejected_and_nothing_written(build_kernel) -> None:
    """NULL scratch: the null-pointer status. Scratch sharing a byte with the input or the
    output: BAD_SCRATCH (-4). Either way the output is untouched. A scratch row right after the
    buffers, or a call of zero rows, is accepted."""
    dsg = design_for(Spec(scratch_row="on"))
    kernel = build_kernel(dsg)
    entry = scratch_dtype(dsg)
    assert entry is np.uint16
    x = rows.uniform(np.random.default_rng(9), 2, 16)
    out = np.full((2, 16), 0x5A, dtype=np.int8)
    assert kernel.status(x, 2, 16, out, None) == -1
    assert (out == 0x5A).all()

    # one block of 2-byte words: [0, 16) input, [16, 32) output, [32, 48) free
    block = np.zeros(48, dtype=np.uint16)
    raw = block.view(np.int8)
    inp, outp = raw[:32], raw[32:64]
    inp[:] = x.ravel()
    for start in (0, 8, 15, 16, 24, 31, 1):  # entries: the row of 16 entries starts here
        outp[:] = 0x5A
        row = block[start : start + 16]
        assert kernel.status(inp, 2, 16, outp, row) == -4, start
        assert (outp == 0x5A).all()
    assert kernel.status(inp, 2, 16, outp, block[32:48]) == 0
    assert_equal(outp.reshape(2, 16).astype(np.int64), reference(dsg, x))
    assert kernel.status(inp, 0, 16, outp, block[0:16]) == 0
    # only the entries a call uses count: 4 of them right after 4 input bytes
    assert kernel.status(inp[:4], 1, 4, outp[:4], block[2:6]) == 0


def test_header_declares_the_scratch_row() -> None:
    """The prototype takes the typed row, and the header states its size."""
    generated = render(design_for(Spec(scratch_row="on")), header_name="k.h")
    header = generated.header or ""
    assert "typedef uint16_t lcg_scratch_t;" in header
    assert "#define LCG_SCRATCH_ENTRIES 256" in header
    assert "#define LCG_SCRATCH_BYTES 512" in header
    assert "LCG_STATUS_BAD_SCRATCH = -4" in header
    assert re.search(r"int8_t \*output, lcg_scratch_t \*scratch\);", header)
    wide = render(design_for(Spec(scratch_row="on", bits=16, max_row=4096)), header_name="k.h")
    assert "#define LCG_SCRATCH_BYTES 16384" in (wide.header or "")
    assert "--scratch-row on" in generated.source.splitlines()[4]
    assert "scratch" not in render(design_for(Spec())).source


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"optimize": "size"}, "--scratch-row on applies to --optimize speed only"),
        ({"input_bits": 16, "bits": 16}, "--scratch-row applies to int8 input only"),
        ({"method": "tflite"}, "--scratch-row does not apply to method 'tflite'"),
        ({"method": "rexp"}, "--scratch-row does not apply to method 'rexp'"),
    ],
)
def test_unsupported_combinations_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError, match=re.escape(message)):
        Spec(scratch_row="on", **options)  # type: ignore[arg-type]


def test_off_is_the_default_and_stays_out_of_the_banner() -> None:
    assert Spec().scratch_row == "off"
    assert Spec(scratch_row="off") == Spec()
    assert "scratch" not in Spec(method="tflite", scratch_row="off").command_line()
    with pytest.raises(SpecError, match="scratch_row must be one of off, on"):
        Spec(scratch_row="yes")


def test_cli_refuses_with_status_2_and_no_output(tmp_path) -> None:
    target = tmp_path / "k.c"
    done = subprocess.run(
        [sys.executable, "-m", "lutcodegen", "--scratch-row", "on", "--optimize", "size"]
        + ["-o", str(target)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "--scratch-row on applies to --optimize speed only" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert not target.exists()


def test_random_rows_match_with_and_without(build_kernel) -> None:
    """Attention-like rows of every length to 300, with the same kernel called repeatedly: the
    row a call leaves in the scratch row does not leak into the next call."""
    dsg = design_for(Spec(scratch_row="on", max_row=300))
    kernel = build_kernel(dsg)
    rng = np.random.default_rng(11)
    for length in range(1, 301, 7):
        check(kernel, dsg, rows.gaussian(rng, 8, length, dsg.spec.scale))


# --- the firmware and the bench ---------------------------------------------------------------


def test_bench_measures_lut_with_and_without() -> None:
    both = designs_for("lut", 8, 0.0625, 256, [64, 256, 1024], scratch_row="both")
    assert [(s.scratch_row, s.max_row, ns) for s, ns in both] == [
        ("off", 256, [64, 256]),
        ("off", 1024, [1024]),
        ("on", 256, [64, 256]),
        ("on", 1024, [1024]),
    ]
    on = designs_for("lut", 8, 0.0625, 256, [64], scratch_row="on")
    assert [s.scratch_row for s, _ in on] == ["on"]
    # the other methods have no scratch row: measured once, as they are
    tflite = designs_for("tflite", 8, 0.0625, 256, [64], scratch_row="both")
    assert [s.scratch_row for s, _ in tflite] == ["off"]


def test_bench_names_and_counts_the_scratch_row() -> None:
    fields = dict(board="microbit", cpu="cortex-m0plus", method="lut", bits=8, input_scale=0.0625)
    fields.update(max_row=256, length=64, rows=16, instructions=1, marker_overhead=0)
    fields.update(instructions_per_element=1.0, instructions_per_row=1.0, code_bytes=1)
    plain = Result(**fields, stack_bytes=88)  # type: ignore[arg-type]
    with_row = Result(
        **fields,  # type: ignore[arg-type]
        stack_bytes=100,
        scratch_row="on",
        scratch_bytes=512,
    )
    assert (plain.variant, plain.ram_bytes) == ("lut", 88)
    assert (with_row.variant, with_row.ram_bytes) == ("lut+scratch", 612)


def test_firmware_sources_pass_a_scratch_row(tmp_path) -> None:
    """The golden vectors call a scratch kernel through a wrapper with the common signature
    and check its rejections; lutcodegen_config.h tells the benchmark firmware to pass a row.
    Both compile warning-free against the generated header."""
    cc = require_tool("gcc")
    designs = [design_for(Spec()), design_for(Spec(scratch_row="on", prefix="golden1"))]
    for dsg in designs:
        for name, text in fw.kernel_files(dsg).items():
            (tmp_path / name).write_text(text)
    golden = fw.golden_source(designs)
    assert "golden1_with_scratch, NULL, NULL," in golden
    assert "golden1_scratch_rejections}" in golden
    assert "lcg_softmax_s8, NULL, NULL," in golden and "NULL}," in golden
    (tmp_path / "golden_vectors.c").write_text(golden)
    config = fw.config_header(designs[1])
    assert "#define LUTCODEGEN_SCRATCH_ENTRIES GOLDEN1_SCRATCH_ENTRIES" in config
    assert "LUTCODEGEN_SCRATCH" not in fw.config_header(designs[0])
    (tmp_path / "config.h").write_text(config)
    (tmp_path / "use_config.c").write_text(
        '#include "config.h"\n'
        "static lutcodegen_scratch_t row[LUTCODEGEN_SCRATCH_ENTRIES];\n"
        "int32_t call(const int8_t *x, int8_t *y);\n"
        "int32_t call(const int8_t *x, int8_t *y) { return LUTCODEGEN_SOFTMAX(x, 1, 4, y, row); }\n"
    )
    include = Path(__file__).resolve().parent.parent / "firmware" / "include"
    for source in ("golden_vectors.c", "use_config.c"):
        done = subprocess.run(
            [cc, "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-Wconversion"]
            + [f"-I{include}", "-I.", "-c", source],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
