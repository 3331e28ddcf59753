"""Method ``tflite``: parameters, C vs reference bit for bit, edge rows, options, compiled forms.

Agreement with TFLite Micro itself is in ``test_tflite_oracle.py``; here the numpy reference is
the specification and the generated C must equal it exactly.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import subprocess

import cffi
import numpy as np
import pytest
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

from lutcodegen import Spec, SpecError, design_for, ideal_output, reference, render
from lutcodegen.cli import main as cli_main
from lutcodegen.methods import gemmlowp, tflite

CONFIGS = [
    Spec(method="tflite"),
    Spec(method="tflite", bits=16),
    Spec(method="tflite", input_scale=0.001, max_row=4096),
    Spec(method="tflite", bits=16, input_scale=0.001, max_row=8191),
    Spec(method="tflite", input_scale=0.1, beta=0.7),
    Spec(method="tflite", input_scale=2.9, max_row=1024),
    Spec(method="tflite", bits=16, input_scale=0.37, beta=1.3, max_row=1000),
    Spec(method="tflite", input_scale=0.002, max_row=8191),  # longest rows, sum up to 2^32 - 2^19
    Spec(method="tflite", input_scale=40.0),  # multiplier capped at 2^31-1: diff_min = 0
    Spec(method="tflite", input_multiplier=1 << 30, input_left_shift=23, diff_min=-248),
    Spec(method="tflite", input_multiplier=1234567890, input_left_shift=20, diff_min=-300),
]


def _ids(spec: Spec) -> str:
    raw = f"-raw{spec.input_multiplier}" if spec.input_multiplier is not None else ""
    return f"b{spec.bits}-s{spec.input_scale:g}-beta{spec.beta:g}-n{spec.max_row}{raw}"


# --- parameters -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scale", "beta", "expected"),
    [
        # beta * scale * 2^26 = 2^22 = 0.5 * 2^23: multiplier 2^30, shift 23;
        # radius floor(31 * 2^26 / 2^23) = 248.
        (1 / 16, 1.0, (1 << 30, 23, -248)),
        # 2^18: shift 19, radius 31 * 2^7 = 3968.
        (1 / 256, 1.0, (1 << 30, 19, -3968)),
        # 3 * 2^26 * 2 = 0.75 * 2^29: multiplier 0.75 * 2^31, shift 29, radius floor(31/8) = 3.
        (3.0, 2.0, (3 << 29, 29, -3)),
        # Above 2^31 - 1 the real multiplier is capped: round((2^31-1)/2^31 * 2^31), shift 31.
        (40.0, 1.0, ((1 << 31) - 1, 31, 0)),
    ],
)
def test_params_known_values(scale, beta, expected) -> None:
    assert gemmlowp.softmax_params(scale, beta) == expected


def test_params_use_float32_like_tflite() -> None:
    # 0.1 is not a float32; TFLite sees float32(0.1) = 0.100000001490116..., whose product with
    # 2^26 is 6710886.5 = 0.8000000119... * 2^23.
    multiplier, shift, diff_min = gemmlowp.softmax_params(0.1, 1.0)
    real = float(np.float32(0.1)) * 2**26
    assert shift == 23
    assert multiplier == round(real / 2**23 * 2**31)
    assert diff_min == -248


@pytest.mark.parametrize("scale", [1e-3, 0.0123, 0.5, 1.0, 2.999])
def test_multiplier_represents_the_scale(scale) -> None:
    multiplier, shift, diff_min = gemmlowp.softmax_params(scale, 1.0)
    assert 1 << 30 <= multiplier < 1 << 31
    real = float(np.float32(scale)) * 2**26
    assert abs(multiplier * 2.0 ** (shift - 31) - real) <= 2.0 ** (shift - 32)
    assert diff_min == -math.floor(31 * 2**26 / 2**shift)


def test_tiny_scale_is_rejected_as_tflite_does() -> None:
    with pytest.raises(SpecError, match="must exceed 1"):
        design_for(Spec(method="tflite", input_scale=1e-9))


def test_exp_table_known_points() -> None:
    dsg = design_for(Spec(method="tflite"))
    assert int(dsg.exp_table[0]) == (1 << 31) - 1  # exp(0) = One() in Q0.31
    # d = 2: -2/16 = -1/8 exactly, where gemmlowp's polynomial is its constant term exp(-1/8).
    assert int(dsg.exp_table[2]) == 1895147668
    assert (dsg.exp_table[249:] == 0).all()  # d = 249.. is below diff_min = -248
    assert len(dsg.exp_table) == 256  # the full layout pads with zeros
    exact = np.exp(-np.arange(249) / 16)
    # gemmlowp's polynomial is worst at -1/4 (2.2e-7 absolute); the table is its output.
    assert np.max(np.abs(dsg.exp_table[:249] / 2**31 - exact)) < 3e-7
    assert dsg.table_bytes == 1024
    short = design_for(Spec(method="tflite", input_scale=0.1, table_layout="compact"))
    assert len(short.exp_table) == 222 and short.exp_table[-1] > 0  # exp rounds to 0 past 221
    assert len(design_for(Spec(method="tflite", input_scale=0.1)).exp_table) == 256


def test_table_at_most_1kib() -> None:
    for scale in (1e-3, 0.01, 0.0625, 0.5, 3.0):
        for bits in (8, 16):
            dsg = design_for(Spec(method="tflite", bits=bits, input_scale=scale))
            assert dsg.table_bytes <= 1024


def test_raw_params_give_the_same_design() -> None:
    computed = design_for(Spec(method="tflite", input_scale=0.1, beta=0.7))
    given = design_for(
        Spec(
            method="tflite",
            input_multiplier=computed.input_multiplier,
            input_left_shift=computed.input_left_shift,
            diff_min=computed.diff_min,
        )
    )
    assert np.array_equal(computed.exp_table, given.exp_table)
    assert given.params_given and not computed.params_given


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bits": 12}, "bits 8"),
        ({"max_row": 8192}, "max_row up to 8191"),
        ({"input_multiplier": 5}, "together"),
        ({"input_multiplier": 0, "input_left_shift": 1, "diff_min": -1}, "input_multiplier"),
        ({"input_multiplier": 1 << 31, "input_left_shift": 1, "diff_min": -1}, "input_multiplier"),
        ({"input_multiplier": 1 << 30, "input_left_shift": 32, "diff_min": -1}, "input_left_shift"),
        ({"input_multiplier": 1 << 30, "input_left_shift": 3, "diff_min": 1}, "diff_min"),
        ({"input_multiplier": 1 << 30, "input_left_shift": 31, "diff_min": -1}, "overflows"),
        ({"input_multiplier": 1 << 30, "input_left_shift": 24, "diff_min": -255}, "overflows"),
        ({"input_multiplier": True, "input_left_shift": 3, "diff_min": -1}, "input_multiplier"),
    ],
)
def test_spec_validation(kwargs, message) -> None:
    with pytest.raises(SpecError, match=message):
        Spec(method="tflite", **kwargs)


def test_raw_params_only_with_tflite() -> None:
    with pytest.raises(SpecError, match="does not apply to method 'lut'"):
        Spec(input_multiplier=1 << 30, input_left_shift=23, diff_min=-248)


# --- C vs reference ---------------------------------------------------------------------------


@pytest.mark.parametrize("spec", CONFIGS, ids=_ids)
def test_every_difference_and_short_rows(spec: Spec, build_kernel) -> None:
    dsg = design_for(spec)
    check_short_rows(build_kernel(dsg), dsg, 40)


@pytest.mark.parametrize("spec", CONFIGS, ids=_ids)
def test_random_rows_up_to_max_row(spec: Spec, build_kernel) -> None:
    dsg = design_for(spec)
    rng = np.random.default_rng(spec.max_row + spec.bits)
    n = spec.max_row
    check_random_rows(build_kernel(dsg), dsg, rng, {1, 2, 3, 17, 100, 511, 512, n // 2, n}, 4)


@pytest.mark.parametrize("spec", CONFIGS, ids=_ids)
def test_edge_rows_at_max_row(spec: Spec, build_kernel) -> None:
    dsg = design_for(spec)
    check_edge_rows_at_max_row(build_kernel(dsg), dsg)


@settings(max_examples=60, deadline=None)
@given(
    bits=st.sampled_from([8, 16]),
    scale=st.floats(1e-3, 8.0),
    beta=st.floats(0.1, 4.0),
    max_row=st.sampled_from([1, 7, 64, 700, 2048]),
    data=st.data(),
)
def test_hypothesis_options_and_rows(bits, scale, beta, max_row, data, build_kernel) -> None:
    dsg = design_for(
        Spec(method="tflite", bits=bits, input_scale=scale, beta=beta, max_row=max_row)
    )
    kernel = build_kernel(dsg)
    length = data.draw(st.integers(1, max_row))
    x = data.draw(hnp.arrays(np.int8, (data.draw(st.integers(1, 4)), length)))
    assert_equal(kernel(x), reference(dsg, x))


def test_in_place_int8(build_kernel) -> None:
    dsg = design_for(Spec(method="tflite"))
    check_in_place(build_kernel(dsg), dsg, seed=3)


def test_status_codes(build_kernel) -> None:
    dsg = design_for(Spec(method="tflite", max_row=64))
    kernel = build_kernel(dsg)
    x = np.zeros((2, 64), dtype=np.int8)
    out = np.full((2, 64), 7, dtype=np.int8)
    assert kernel.status(None, 2, 64, out) == -1
    assert kernel.status(x, 2, 64, None) == -1
    assert kernel.status(x, -1, 64, out) == -2
    assert kernel.status(x, 2, 0, out) == -3
    assert kernel.status(x, 1, 65, out) == -3
    assert (out == 7).all()  # nothing written on error
    assert kernel.status(x, 0, 64, out) == 0


# --- where TFLite fails ----------------------------------------------------------------------


def _long_rows() -> np.ndarray:
    """Rows of 4096 whose int8 sum of exps is at and around 2^28 for input scale 1/16."""
    out = []
    for equal in (511, 512, 513, 600, 1024, 4096):
        row = np.full(4096, -128)
        row[:equal] = 127
        out.append(row)
    out.append(np.full(4096, -128))  # fully masked attention row
    out.append(np.full(4096, 5))
    return np.array(out, dtype=np.int8)


@pytest.mark.parametrize("bits", [8, 16])
def test_rows_past_tflite_sum_limit(bits, build_kernel) -> None:
    """Int8: sum >= 2^28 gives -128 everywhere, within 1 LSB of ideal; int16: TFLite's formula."""
    dsg = design_for(Spec(method="tflite", bits=bits, max_row=4096))
    kernel = build_kernel(dsg)
    x = _long_rows()
    got = kernel(x)
    assert_equal(got, reference(dsg, x))
    sums = tflite.row_sums(dsg, x)
    assert list(sums >= tflite.INT8_SUM_LIMIT) == [False, True, True, True, True, True, True, True]
    ideal = ideal_output(x, dsg.effective_scale, bits)
    if bits == 8:
        assert (got[sums >= tflite.INT8_SUM_LIMIT] == -128).all()
        assert got[0, 0] == -127  # 511 equal maxima: 256/511 rounds to 1, TFLite's own path
    assert np.abs(got - ideal).max() <= 1


def test_int8_sum_limit_every_row_length(build_kernel) -> None:
    """Every length 1..1536 of equal logits and of one max over a plateau: C = reference."""
    dsg = design_for(Spec(method="tflite", max_row=1536))
    kernel = build_kernel(dsg)
    for length in range(1, 1537):
        x = np.stack([np.zeros(length), np.r_[1, np.zeros(length - 1)]]).astype(np.int8)
        got = kernel(x)
        assert_equal(got, reference(dsg, x))
        assert np.abs(got - ideal_output(x, dsg.effective_scale, 8)).max() <= 1


# --- the reciprocal, on its own --------------------------------------------------------------


def _reciprocal_kernel(tmp_path_factory: pytest.TempPathFactory) -> object:
    dsg = design_for(Spec(method="tflite"))
    source = render(dsg).source + (
        "\nint32_t test_reciprocal(int32_t a);\n"
        "int32_t test_reciprocal(int32_t a) { return lcg_reciprocal(a); }\n"
    )
    name = "_lcg_recip_" + hashlib.sha256(source.encode()).hexdigest()[:12]
    ffi = cffi.FFI()
    ffi.cdef("int32_t test_reciprocal(int32_t a);")
    ffi.set_source(name, source, extra_compile_args=["-O2", "-std=c99"])
    library = ffi.compile(tmpdir=str(tmp_path_factory.mktemp("recip")), verbose=False)
    spec = importlib.util.spec_from_file_location(name, library)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.lib


def test_reciprocal_matches_gemmlowp(tmp_path_factory) -> None:
    """The C Newton-Raphson reciprocal equals the Python one on edges and 100k random inputs."""
    lib = _reciprocal_kernel(tmp_path_factory)
    rng = np.random.default_rng(7)
    inputs = [0, 1, 2, (1 << 31) - 1, (1 << 31) - 2, 1 << 30, (1 << 30) - 1]
    inputs += [(1 << k) + j for k in range(31) for j in (-1, 0, 1) if 0 <= (1 << k) + j < 1 << 31]
    inputs += rng.integers(0, 1 << 31, size=100_000).tolist()
    expected = gemmlowp.one_over_one_plus_x_for_x_in_0_1
    bad = [a for a in inputs if lib.test_reciprocal(a) != expected(a)]
    assert not bad, f"{len(bad)} mismatches, first {bad[:5]}"


# --- generated text, CLI, cross compile ------------------------------------------------------


def test_cli_raw_params_in_banner(capsys) -> None:
    argv = [
        "--method",
        "tflite",
        "--input-multiplier",
        "1073741824",
        "--input-left-shift",
        "23",
        "--diff-min",
        "-248",
    ]
    assert cli_main(argv) == 0
    text = capsys.readouterr().out
    assert "--input-multiplier 1073741824 --input-left-shift 23 --diff-min -248" in text
    assert "#define LCG_INPUT_MULTIPLIER 1073741824" in text
    assert "#define LCG_DIFF_MIN (-248)" in text


@pytest.mark.parametrize(
    "argv",
    [
        ["--method", "tflite", "--bits", "12"],
        ["--method", "tflite", "--input-multiplier", "5"],
        ["--input-multiplier", "1073741824", "--input-left-shift", "23", "--diff-min", "-248"],
        ["--method", "tflite", "--input-scale", "1e-9"],
    ],
)
def test_cli_usage_errors(argv, capsys) -> None:
    assert cli_main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "lutcodegen: error:" in captured.err


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


@pytest.mark.parametrize("compiler", ["gcc", "clang"])
@pytest.mark.parametrize("spec", [CONFIGS[0], CONFIGS[3], CONFIGS[7]], ids=_ids)
def test_strict_compile(spec, compiler, tmp_path) -> None:
    cc = require_tool(compiler)
    source = tmp_path / "softmax_tflite.c"
    source.write_text(render(design_for(spec)).source)
    subprocess.run([cc, *STRICT, "-O2", str(source), "-o", str(tmp_path / "a.o")], check=True)


@pytest.mark.parametrize("bits", [8, 16])
def test_cortex_m0plus_has_no_division(bits, tmp_path) -> None:
    """No divide instruction or division helper on a core without a divider."""
    cc = require_tool("arm-none-eabi-gcc")
    nm = require_tool("arm-none-eabi-nm")
    source = tmp_path / "softmax_tflite.c"
    source.write_text(render(design_for(Spec(method="tflite", bits=bits))).source)
    obj = tmp_path / "m0.o"
    subprocess.run(
        [cc, "-mcpu=cortex-m0plus", "-mthumb", "-O2", *STRICT, str(source), "-o", str(obj)],
        check=True,
    )
    symbols = subprocess.run([nm, str(obj)], check=True, capture_output=True, text=True).stdout
    assert "div" not in symbols, symbols
