"""The paper methods ``rexp`` and ``lut2d``: C bit-exact with the numpy reference, status codes,
table invariants, options, calibration and divider-free compiled code."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import rows
from cbuild import require_tool
from exactness import (
    assert_equal,
    check_edge_rows_at_max_row,
    check_in_place,
    check_random_rows,
    check_short_rows,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lutcodegen import Spec, SpecError, design_for, reference, render
from lutcodegen.methods import paper

CONFIGS = [
    Spec(method="rexp"),
    Spec(method="lut2d"),
    Spec(method="rexp", bits=2),
    Spec(method="lut2d", bits=2),
    Spec(method="rexp", bits=4, input_scale=0.25),
    Spec(method="lut2d", bits=5, input_scale=0.25, num_shift=0),
    Spec(method="rexp", bits=12, input_scale=1 / 64),
    Spec(method="lut2d", bits=12, input_scale=1 / 64),
    Spec(method="rexp", bits=16),
    Spec(method="lut2d", bits=16),
    Spec(method="rexp", sum_mode="linear", rounding="floor"),
    Spec(method="lut2d", sum_mode="linear", sum_shift=5, max_row=64),
    Spec(method="rexp", index_shift=2, exp_entries=9, sum_mantissa=0),
    Spec(method="lut2d", index_shift=3, sum_mantissa=7, num_shift=2, sum_max=3000),
    Spec(method="rexp", sum_max=1000, max_row=1024, input_scale=0.01),
    Spec(method="rexp", bits=16, max_row=70000),  # sum needs 64 bits
    Spec(method="lut2d", bits=9, max_row=70000, input_scale=1 / 128),
    Spec(method="rexp", bits=8, input_scale=1e-4, max_row=16),  # table reaches d = 255
]


def _ids(spec: Spec) -> str:
    return spec.command_line().replace("lutcodegen --method ", "").replace(" --", ",")


def bucket_rows(dsg) -> list[np.ndarray]:
    """One row per sum bucket (plus sums above sum_max): greedy numerator sums near each lo."""
    spec, q, table = dsg.spec, dsg.quantizer, dsg.num_table.astype(np.int64)
    k = dsg.index_shift
    targets = [lo for lo, _ in q.bounds()] + [hi for _, hi in q.bounds()] + [q.s_cap]
    out = []
    for target in targets:
        remaining, elems = target - int(table[0]), [127]
        for idx in range(len(table)):
            while remaining >= table[idx] > 0 and len(elems) < spec.max_row:
                elems.append(127 - (idx << k))
                remaining -= int(table[idx])
        out.append(np.array(elems, dtype=np.int8)[None, :])
    return out


@pytest.mark.parametrize("spec", CONFIGS, ids=_ids)
def test_every_numerator_index_and_short_length(spec: Spec, build_kernel) -> None:
    dsg = design_for(spec)
    check_short_rows(build_kernel(dsg), dsg, 40)


@pytest.mark.parametrize("spec", [s for s in CONFIGS if s.max_row >= 2], ids=_ids)
def test_exhaustive_rows_of_one_and_two(spec: Spec, build_kernel) -> None:
    """Every int8 row of length 1 (256) and 2 (65536): the whole input space of short rows."""
    dsg = design_for(spec)
    kernel = build_kernel(dsg)
    values = np.arange(-128, 128, dtype=np.int8)
    pairs = np.stack(np.meshgrid(values, values, indexing="ij"), axis=-1).reshape(-1, 2)
    assert_equal(kernel(values[:, None]), reference(dsg, values[:, None]))
    assert_equal(kernel(pairs), reference(dsg, pairs))


@pytest.mark.parametrize("spec", CONFIGS, ids=_ids)
def test_every_sum_bucket(spec: Spec, build_kernel) -> None:
    dsg = design_for(spec)
    kernel = build_kernel(dsg)
    hit = set()
    for x in bucket_rows(dsg):
        n = paper.numerators(dsg.num_table, dsg.index_shift, x)
        hit.add(int(dsg.quantizer.index(n.sum(axis=-1))[0]))
        assert_equal(kernel(x), reference(dsg, x))
    last = dsg.quantizer.length - 1
    assert {0, last} <= hit
    if int(dsg.num_table.min()) == 1:
        # Numerators of 1 make every sum from 2^B - 1 to the cap reachable, so every bucket.
        assert hit == set(range(last + 1)), "some sum buckets were not exercised"


@pytest.mark.parametrize("spec", CONFIGS, ids=_ids)
def test_random_rows_up_to_max_row(spec: Spec, build_kernel) -> None:
    dsg = design_for(spec)
    rng = np.random.default_rng(spec.max_row + 31 * spec.bits)
    n = spec.max_row
    check_random_rows(build_kernel(dsg), dsg, rng, {1, 2, 3, 17, 100, n // 2, n}, 2)


@pytest.mark.parametrize("spec", CONFIGS, ids=_ids)
def test_edge_rows_at_max_row(spec: Spec, build_kernel) -> None:
    dsg = design_for(spec)
    check_edge_rows_at_max_row(build_kernel(dsg), dsg)


@settings(max_examples=40, deadline=None)
@given(
    method=st.sampled_from(["rexp", "lut2d"]),
    bits=st.integers(2, 16),
    scale=st.floats(1e-3, 8.0),
    max_row=st.sampled_from([1, 7, 64, 300]),
    index_shift=st.integers(0, 3),
    sum_mode=st.sampled_from(["log", "linear"]),
    data=st.data(),
)
def test_hypothesis_options_and_rows(
    method, bits, scale, max_row, index_shift, sum_mode, data, build_kernel
) -> None:
    options = {"index_shift": index_shift, "sum_mode": sum_mode}
    if sum_mode == "log":
        options["sum_mantissa"] = data.draw(st.integers(0, min(12, bits - 1)))
    else:
        options["sum_shift"] = data.draw(st.integers(0, bits + 4))
    if method == "lut2d":
        options["num_shift"] = data.draw(st.integers(max(0, bits - 6), bits - 1))
    else:
        options["rounding"] = data.draw(st.sampled_from(["nearest", "floor"]))
    dsg = design_for(Spec(method=method, bits=bits, input_scale=scale, max_row=max_row, **options))
    kernel = build_kernel(dsg)
    length = data.draw(st.integers(1, max_row))
    x = data.draw(hnp.arrays(np.int8, (data.draw(st.integers(1, 4)), length)))
    assert_equal(kernel(x), reference(dsg, x))


@pytest.mark.parametrize("method", ["rexp", "lut2d"])
@pytest.mark.parametrize("bits", [8, 16])
def test_status_codes_write_nothing(method: str, bits: int, build_kernel) -> None:
    dsg = design_for(Spec(method=method, bits=bits, max_row=32))
    kernel = build_kernel(dsg)
    x = rows.uniform(np.random.default_rng(3), 2, 33)
    out = np.full((2, 33), 7, dtype=kernel.out_dtype)
    assert kernel.status(None, 1, 4, out) == -1
    assert kernel.status(x, 1, 4, None) == -1
    assert kernel.status(x, -1, 4, out) == -2
    assert kernel.status(x, 1, 0, out) == -3
    assert kernel.status(x, 1, 33, out) == -3
    assert (out == 7).all()
    assert kernel.status(x, 0, 4, out) == 0
    assert (out == 7).all()
    assert kernel.status(x, 2, 32, out[:, :32].copy()) == 0


def test_in_place_int8(build_kernel) -> None:
    for method in ("rexp", "lut2d"):
        dsg = design_for(Spec(method=method))
        check_in_place(build_kernel(dsg), dsg, seed=1)


@pytest.mark.parametrize("spec", CONFIGS, ids=_ids)
def test_table_invariants(spec: Spec) -> None:
    dsg = design_for(spec)
    B = spec.bits
    n = dsg.num_table.astype(np.int64)
    assert n[0] == (1 << B) - 1 and (np.diff(n) <= 0).all() and n.min() >= 1
    bounds = dsg.quantizer.bounds()
    assert bounds[0][0] == (1 << B) - 1
    assert all(bounds[j][1] + 1 == bounds[j + 1][0] for j in range(len(bounds) - 1))
    if spec.method == "rexp":
        assert (np.diff(dsg.alpha.astype(np.int64)) <= 0).all()
        assert ((1 << B) - 1) * int(dsg.alpha.max()) + (1 << (dsg.frac_bits - 1)) < 1 << 32
    else:
        t = dsg.table2d.astype(np.int64)
        assert (np.diff(t, axis=0) >= 0).all() and (np.diff(t, axis=1) <= 0).all()
        assert t.min() >= -(1 << (B - 1)) and t.max() <= (1 << (B - 1)) - 1


def test_one_hot_row_is_exact() -> None:
    """S = 2^B - 1 has its own bucket, so a one-hot row gives exactly 1.0 and 0.0."""
    for method in ("rexp", "lut2d"):
        for bits in (2, 8, 16):
            dsg = design_for(Spec(method=method, bits=bits))
            x = np.full((1, 10), -128, dtype=np.int8)
            x[0, 3] = 127
            y = reference(dsg, x)[0]
            assert y[3] == (1 << (bits - 1)) - 1 and (np.delete(y, 3) == -(1 << (bits - 1))).all()


@pytest.mark.parametrize(
    "options, message",
    [
        ({"method": "lut", "sum_mode": "log"}, "does not apply"),
        ({"method": "rexp", "num_shift": 2}, "does not apply"),
        ({"method": "lut2d", "rounding": "floor"}, "does not apply"),
        ({"method": "rexp", "sum_shift": 3}, "--sum-mode linear"),
        ({"method": "rexp", "sum_mode": "linear", "sum_mantissa": 3}, "--sum-mode log"),
        ({"method": "rexp", "sum_mantissa": 8}, "sum_mantissa"),
        ({"method": "lut2d", "num_shift": 8}, "num_shift"),
        ({"method": "rexp", "sum_max": 100}, "sum_max"),
        ({"method": "rexp", "sum_mode": "cubic"}, "sum_mode"),
        ({"method": "rexp", "index_shift": 8}, "index_shift"),
        ({"method": "rexp", "exp_entries": 0}, "exp_entries"),
    ],
)
def test_bad_options_are_rejected(options: dict, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        design_for(Spec(**options))


def test_options_round_trip_through_command_line() -> None:
    spec = Spec(
        method="lut2d", index_shift=1, sum_mode="linear", sum_shift=4, num_shift=3, sum_max=5000
    )
    line = spec.command_line()
    for flag in (
        "--index-shift 1",
        "--sum-mode linear",
        "--sum-shift 4",
        "--num-shift 3",
        "--sum-max 5000",
    ):
        assert flag in line
    assert Spec().command_line() == (
        "lutcodegen --method lut --bits 8 --input-scale 0.0625 --beta 1.0 --max-row 256"
        " --prefix lcg --table-layout full"
    )


STRICT = [
    "-std=c99",
    "-pedantic",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wconversion",
    "-Wsign-conversion",
    "-c",
]


@pytest.mark.parametrize("spec", CONFIGS, ids=_ids)
def test_strict_compile(spec: Spec, tmp_path) -> None:
    cc = require_tool("gcc")
    src = tmp_path / "softmax.c"
    src.write_text(render(design_for(spec)).source)
    subprocess.run([cc, *STRICT, str(src), "-o", str(tmp_path / "softmax.o")], check=True)


@pytest.mark.parametrize("method", ["rexp", "lut2d"])
@pytest.mark.parametrize("bits", [8, 16])
def test_cortex_m0plus_has_no_divide(method: str, bits: int, tmp_path) -> None:
    cc = require_tool("arm-none-eabi-gcc")
    nm = require_tool("arm-none-eabi-nm")
    src = tmp_path / "softmax.c"
    src.write_text(render(design_for(Spec(method=method, bits=bits, max_row=70000))).source)
    obj = tmp_path / "softmax.o"
    subprocess.run(
        [cc, "-mcpu=cortex-m0plus", "-mthumb", "-O2", *STRICT, str(src), "-o", str(obj)], check=True
    )
    undefined = subprocess.run(
        [nm, "-u", str(obj)], check=True, capture_output=True, text=True
    ).stdout
    assert "div" not in undefined and "mod" not in undefined, undefined


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lutcodegen", *args], capture_output=True, text=True
    )


def test_calibration_picks_sum_range(tmp_path) -> None:
    rng = np.random.default_rng(5)
    scores = (rng.standard_normal((300, 96)) * 1.5).astype(np.float32)
    path = tmp_path / "scores.npy"
    np.save(path, scores)
    for method in ("rexp", "lut2d"):
        result = _cli("--method", method, "--calibrate", str(path))
        assert result.returncode == 0, result.stderr
        base = design_for(Spec(method=method))
        x = np.clip(np.rint(scores / 0.0625), -128, 127).astype(np.int8)
        sums = paper.numerators(base.num_table, 0, x).sum(axis=-1)
        assert f"--sum-max {int(sums.max())}" in result.stderr
        assert f"--sum-max {int(sums.max())}" in result.stdout  # banner command line
        assert "calibration chose" in result.stdout
        # The chosen resolution is at least as fine as the default and fits the same bytes.
        line = next(ln for ln in result.stdout.splitlines() if "Command:" in ln)
        mantissa = int(line.split("--sum-mantissa ")[1].split()[0])
        assert mantissa >= (5 if method == "rexp" else 2)
        spec = Spec(method=method, sum_max=int(sums.max()), sum_mantissa=mantissa)
        assert design_for(spec).table_bytes <= base.table_bytes


def test_calibration_int8_and_errors(tmp_path) -> None:
    x = rows.uniform(np.random.default_rng(2), 20, 300)
    np.save(tmp_path / "long.npy", x)
    result = _cli("--method", "rexp", "--calibrate", str(tmp_path / "long.npy"))
    assert result.returncode == 2 and "--max-row" in result.stderr and result.stdout == ""
    np.save(tmp_path / "nan.npy", np.array([[0.5, np.nan]]))
    result = _cli("--method", "lut2d", "--calibrate", str(tmp_path / "nan.npy"))
    assert result.returncode == 2 and "NaN" in result.stderr
    np.save(tmp_path / "wide.npy", np.array([[0, 300]], dtype=np.int16))
    result = _cli("--method", "lut2d", "--calibrate", str(tmp_path / "wide.npy"))
    assert result.returncode == 2 and "int8" in result.stderr
    np.save(tmp_path / "ok.npy", x[:, :200])
    result = _cli("--calibrate", str(tmp_path / "ok.npy"))
    assert result.returncode == 0 and "no free parameters" in result.stderr


@pytest.mark.parametrize(
    "spec",
    [
        Spec(method="rexp", bits=8, max_row=300),
        Spec(method="lut2d", bits=16, max_row=300, sum_mode="linear"),
        Spec(method="rexp", bits=16, max_row=70000),
    ],
    ids=_ids,
)
def test_sanitizers_on_edge_rows(spec: Spec, tmp_path) -> None:
    """Undefined behaviour (shifts, overflow, out-of-bounds reads) aborts under UBSan/ASan."""
    cc = require_tool("gcc")
    dsg = design_for(spec)
    length = min(spec.max_row, 300)
    x = np.concatenate([rows.edge_rows(length), rows.every_difference(length)])
    (tmp_path / "softmax.c").write_text(render(dsg).source)
    (tmp_path / "rows.bin").write_bytes(x.tobytes())
    out_type = spec.output_ctype
    (tmp_path / "main.c").write_text(f"""
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
int32_t {spec.function_name}(const int8_t *, int32_t, int32_t, {out_type} *);
int main(int argc, char **argv) {{
    static int8_t in[{x.size}];
    static {out_type} out[{x.size}];
    FILE *f = fopen(argv[1], "rb");
    size_t i;
    (void)argc;
    if (f == NULL || fread(in, 1, sizeof in, f) != sizeof in) return 2;
    fclose(f);
    if ({spec.function_name}(in, {x.shape[0]}, {length}, out) != 0) return 3;
    for (i = 0; i < {x.size}; ++i) printf("%d\\n", (int)out[i]);
    return 0;
}}
""")
    exe = tmp_path / "run"
    subprocess.run(
        [
            cc,
            "-std=c99",
            "-O1",
            "-g",
            "-fsanitize=undefined,address",
            "-fno-sanitize-recover=all",
            str(tmp_path / "main.c"),
            str(tmp_path / "softmax.c"),
            "-o",
            str(exe),
        ],
        check=True,
    )
    result = subprocess.run([str(exe), str(tmp_path / "rows.bin")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    got = np.array(result.stdout.split(), dtype=np.int64).reshape(x.shape)
    assert_equal(got, reference(dsg, x))


def test_cli_method_options_reach_the_banner() -> None:
    result = _cli(
        "--method",
        "lut2d",
        "--sum-mode",
        "linear",
        "--sum-shift",
        "6",
        "--num-shift",
        "3",
        "--index-shift",
        "1",
        "-v",
    )
    assert result.returncode == 0, result.stderr
    command = next(ln for ln in result.stdout.splitlines() if "Command:" in ln)
    assert "--index-shift 1 --sum-mode linear --sum-shift 6 --num-shift 3" in command
    assert "columns of 2^6" in result.stderr
    bad = _cli("--method", "lut", "--rounding", "floor")
    assert bad.returncode == 2 and "does not apply" in bad.stderr and bad.stdout == ""
