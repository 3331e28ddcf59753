"""int16 input (``--input-bits 16``): the compiled C equals the reference bit for bit, the ``lut``
proof holds and is measured, TFLite's arithmetic is replicated step for step, and the options
that do not combine with int16 input are refused."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from exactness import assert_equal, check
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lutcodegen import Spec, SpecError, design_for, ideal_output, reference
from lutcodegen.analysis import rowsets
from lutcodegen.methods import lut_s16, tflite_s16


def s16(**options: object) -> Spec:
    return Spec(input_bits=16, bits=16, **options)


CONFIGS = [
    s16(input_scale=3e-4),
    s16(input_scale=1 / 16),
    s16(input_scale=1e-6, beta=0.5),
    s16(input_scale=2.0),
    s16(input_scale=3e-4, max_row=1),
    s16(input_scale=1e-3, max_row=1000),  # 64-bit sums
    s16(input_scale=3e-4, max_row=4096, table_layout="compact"),
    s16(input_scale=1 / 16, max_row=300, table_layout="compact"),
    s16(method="tflite", input_scale=3e-4),
    s16(method="tflite", input_scale=1e-7, max_row=2048),
    s16(method="tflite", input_scale=4.0, beta=1.2),
    s16(method="tflite", input_scale=0.02, beta=0.3, max_row=65536),
    s16(method="tflite", input_multiplier=0, input_left_shift=0),
    s16(method="tflite", input_multiplier=(1 << 31) - 1, input_left_shift=-31),
]


def _ids(spec: Spec) -> str:
    return (
        f"{spec.method}-s{spec.input_scale:g}-beta{spec.beta:g}-n{spec.max_row}-"
        f"{spec.table_layout}-m{spec.input_multiplier}"
    )


def ideal16(x: np.ndarray, scale: float) -> np.ndarray:
    """``min(round(32768 p), 32767)``: TFLite's int16 convention, correctly rounded."""
    return ideal_output(x, scale, 15) + (1 << 14)


@pytest.mark.parametrize("spec", CONFIGS, ids=_ids)
def test_every_difference_and_short_rows(spec: Spec, build_kernel) -> None:
    """All 65536 differences (every pair of table entries) at length 2, strided subsets and
    the edge rows at every length up to 16."""
    dsg = design_for(spec)
    kernel = build_kernel(dsg)
    if spec.max_row >= 2:
        check(kernel, dsg, rowsets.every_difference16(2))
    for length in range(1, min(16, spec.max_row) + 1):
        check(
            kernel,
            dsg,
            np.concatenate(
                [rowsets.every_difference16(length, 251, length), rowsets.edge_rows16(length)]
            ),
        )


@pytest.mark.parametrize("spec", CONFIGS, ids=_ids)
def test_random_rows_up_to_max_row(spec: Spec, build_kernel) -> None:
    dsg = design_for(spec)
    kernel = build_kernel(dsg)
    rng = np.random.default_rng(spec.max_row + 16)
    n = spec.max_row
    for length in sorted({m for m in (1, 2, 3, 17, 100, 257, n // 2, n - 1, n) if 1 <= m <= n}):
        count = max(2, 20000 // length)
        for x in (
            rowsets.uniform16(rng, count, length),
            rowsets.gaussian16(rng, count, length, spec.scale),
        ):
            check(kernel, dsg, x)


@pytest.mark.parametrize("spec", CONFIGS, ids=_ids)
def test_edge_rows_at_max_row(spec: Spec, build_kernel) -> None:
    """Edge rows, and one maximum with the rest at one lower level (the worst case of the
    summed table error), at the longest accepted row."""
    dsg = design_for(spec)
    n = spec.max_row
    plateau = rowsets.every_difference16(n, 4099 if n > 1000 else 257, 5)
    check(build_kernel(dsg), dsg, np.concatenate([rowsets.edge_rows16(n), plateau]))


@pytest.mark.parametrize("method", ["lut", "tflite"])
def test_in_place(method: str, build_kernel) -> None:
    dsg = design_for(s16(method=method, input_scale=3e-4))
    kernel = build_kernel(dsg)
    x = rowsets.gaussian16(np.random.default_rng(3), 50, 40, dsg.spec.scale)
    expected = reference(dsg, x)
    buf = x.copy()
    assert kernel.status(buf, 50, 40, buf) == 0
    assert_equal(buf.astype(np.int64), expected)


@pytest.mark.parametrize("method", ["lut", "tflite"])
def test_status_codes_write_nothing(method: str, build_kernel) -> None:
    dsg = design_for(s16(method=method, input_scale=3e-4, max_row=64))
    kernel = build_kernel(dsg)
    x = np.ones((2, 64), dtype=np.int16)
    out = np.full((2, 64), 0x5A5A, dtype=np.int16)
    cases = [
        (None, 1, 8, out, -1),
        (x, 1, 8, None, -1),
        (x, -1, 8, out, -2),
        (x, 1, 0, out, -3),
        (x, 1, 65, out, -3),
        (x, 0, 8, out, 0),
    ]
    for inp, rows, size, outp, status in cases:
        assert kernel.status(inp, rows, size, outp) == status
        assert (out == 0x5A5A).all()
    assert kernel.status(x, 2, 64, out) == 0
    assert (out == reference(dsg, x)).all()


@settings(max_examples=40, deadline=None)
@given(
    method=st.sampled_from(["lut", "tflite"]),
    scale=st.floats(1e-7, 4.0),
    beta=st.floats(0.1, 1.2),
    max_row=st.sampled_from([1, 7, 64, 300, 2048]),
    layout=st.sampled_from(["full", "compact"]),
    data=st.data(),
)
def test_hypothesis_options_and_rows(
    method, scale, beta, max_row, layout, data, build_kernel
) -> None:
    layout = layout if method == "lut" else "full"
    dsg = design_for(
        s16(method=method, input_scale=scale, beta=beta, max_row=max_row, table_layout=layout)
    )
    kernel = build_kernel(dsg)
    length = data.draw(st.integers(1, max_row))
    x = data.draw(hnp.arrays(np.int16, (data.draw(st.integers(1, 4)), length)))
    assert_equal(kernel(x), reference(dsg, x))


# --- the lut proof --------------------------------------------------------------------------


@pytest.mark.parametrize("max_row", [1, 2, 16, 256, 400, 1024, 4096, 16384])
@pytest.mark.parametrize("scale", [1e-7, 3e-5, 3e-4, 1 / 16, 1.0, 40.0])
def test_proof_holds_and_the_design_is_sound(scale: float, max_row: int) -> None:
    dsg = design_for(s16(input_scale=scale, max_row=max_row))
    assert dsg.error_bound < 1
    assert dsg.max_sum_bits <= 52  # the 64-bit sum cannot wrap, and g <= 63 below
    w = lut_s16.weights(dsg.hi_table.astype(np.uint64), dsg.lo_table.astype(np.uint64))
    assert int(w[0]) == dsg.top == int(w.max())  # the row maximum has the largest weight
    assert int(w.max()) < 1 << 30  # four weights add up in 32 bits
    assert dsg.top.bit_length() + dsg.precision - lut_s16.OUT_BITS >= 33


@pytest.mark.parametrize("scale", [1e-7, 3e-4, 1 / 256, 1 / 16, 2.0])
def test_weight_error_bound_is_tight_over_every_difference(scale: float) -> None:
    """rho and beta, recomputed independently with math.exp, element by element, on every
    difference: every weight is within rho e + beta, and no smaller rho would do."""
    import math

    dsg = design_for(s16(input_scale=scale))
    w = lut_s16.weights(dsg.hi_table.astype(np.uint64), dsg.lo_table.astype(np.uint64))
    beta = lut_s16.ABS_ERROR
    worst = 0.0
    for d in range(65536):
        exact = dsg.top * math.exp(-scale * d)
        err = abs(int(w[d]) - exact)
        assert err <= dsg.rel_error * exact + dsg.abs_error
        if exact > 0:
            worst = max(worst, (err - beta) / exact)
    assert worst <= dsg.rel_error <= worst + 2 * lut_s16.EXACT_MARGIN_REL
    assert dsg.rel_error < 2.0**-20  # about 21 significant bits per weight


@pytest.mark.parametrize("scale", [1e-7, 3e-4, 1 / 256, 1 / 16, 2.0, 40.0])
def test_tables_for_32_bit_products_give_the_same_weights(scale: float) -> None:
    """Without a 64-bit product the weight is (m b1 + ((m b0) >> 11)) >> (11 - e), from the other
    table format; equal to floor(E_hi E_lo / 2^32) for every difference, with no 32-bit
    overflow. And the Cortex-M0+ loops' byte offsets stay in the one table for any int16 input."""
    dsg = design_for(s16(input_scale=scale, table_layout="compact"))
    k = dsg.lo_bits
    hi, lo = dsg.hi_table_mul32.astype(np.uint64), dsg.lo_table_mul32.astype(np.uint64)
    m = hi >> np.uint64(8)
    shift = hi & np.uint64(0xFF)
    b1, b0 = lo >> np.uint64(16), lo & np.uint64(0xFFFF)
    assert int(b0.max()) < 1 << 11 and int(b1.max()) < 1 << 11 and int(m.max()) < 1 << 21
    t = m[:, None] * b1[None, :] + ((m[:, None] * b0[None, :]) >> np.uint64(11))
    assert int(t.max()) < 1 << 32
    w32 = (t >> shift[:, None]).reshape(-1)
    w = lut_s16.weights(dsg.hi_table.astype(np.uint64), dsg.lo_table.astype(np.uint64))
    assert (w32 == w[: len(w32)]).all() and not w[len(w32) :].any()
    assert len(dsg.exp_table_mul32) == (1 << k) + len(dsg.hi_table)
    # d' = max + 65536 - x for any int16 max and x: 1 <= d' < 2^17, offsets within 512 words
    d_prime = np.array([32767 + 65536 + 32768, -32768 + 65536 - 32767])
    assert d_prime.max() < 1 << 17 and d_prime.min() >= 1
    assert int(((d_prime >> 8) * 4).max()) <= 4 * 511


def test_output_product_from_four_16_bit_products() -> None:
    """The high word of w R from w1 R1 + ((w1 R0 + w0 R1 + ((w0 R0) >> 16)) >> 16), exactly,
    with the inner sum below 2^31, for weights below 2^30 and reciprocals up to 2^25."""
    rng = np.random.default_rng(5)
    w = np.concatenate([rng.integers(0, 1 << 30, 200000), [0, (1 << 30) - 1]]).astype(np.uint64)
    r = np.concatenate([rng.integers(1 << 24, (1 << 25) + 1, 200000), [1 << 25, 1 << 24]])
    r = r.astype(np.uint64)
    w1, w0 = w >> np.uint64(16), w & np.uint64(0xFFFF)
    r1, r0 = r >> np.uint64(16), r & np.uint64(0xFFFF)
    inner = w1 * r0 + w0 * r1 + ((w0 * r0) >> np.uint64(16))
    assert int(inner.max()) < 1 << 31
    high = w1 * r1 + (inner >> np.uint64(16))
    exact = [(int(a) * int(b)) >> 32 for a, b in zip(w.tolist(), r.tolist())]
    assert high.tolist() == exact


@pytest.mark.parametrize(
    "defines",
    [
        ("LCG_USE_CLZ=0",),
        ("LCG_RECIP_NEWTON=0",),
        ("LCG_MUL32=1",),
        ("LCG_USE_CLZ=0", "LCG_RECIP_NEWTON=0", "LCG_MUL32=1"),
        ("LCG_ZERO_SEARCH_MIN=1",),
        ("LCG_ZERO_SEARCH_MIN=1", "LCG_MUL32=1"),
        ("LCG_ZERO_SEARCH_MIN=100000",),
    ],
)
@pytest.mark.parametrize(("scale", "max_row"), [(1e-4, 256), (1e-4, 4096), (1 / 16, 300)])
def test_portable_paths_equal_the_reference(
    defines: tuple[str, ...], scale: float, max_row: int, build_kernel
) -> None:
    """The binary-search shift, the shift-and-subtract reciprocal and the weights and outputs
    from 32-bit products with the other table format (the paths of cores without
    count-leading-zeros or a 64-bit product) give the same bits, and so does the search for
    the first zero output at every row length or at none."""
    dsg = design_for(s16(input_scale=scale, max_row=max_row))
    kernel = build_kernel(dsg, defines)
    rng = np.random.default_rng(7)
    for length in (1, 3, 64, max_row):
        check(
            kernel,
            dsg,
            np.concatenate(
                [
                    rowsets.uniform16(rng, 20, length),
                    rowsets.gaussian16(rng, 20, length, dsg.spec.scale),
                    rowsets.edge_rows16(length),
                ]
            ),
        )
    check(kernel, dsg, rowsets.every_difference16(2))


def test_default_max_row_tables_fit_2_kib() -> None:
    for scale in (1e-7, 3e-4, 1 / 16, 2.0):
        assert design_for(s16(input_scale=scale)).table_bytes <= 2048
    # scale 1/16: E_lo covers d & 15 (s 15 <= 1), E_hi the 22 nonzero entries
    assert design_for(s16(input_scale=1 / 16, table_layout="compact")).table_bytes == 4 * (16 + 22)


@pytest.mark.parametrize("max_row", [256, 4096])
def test_measured_accuracy(max_row: int) -> None:
    """Within 1 LSB everywhere (the proof), and at least 99.9 % equal to correct rounding."""
    rng = np.random.default_rng(max_row)
    outputs = equal = 0
    for scale in (1e-5, 3e-4, 1e-3, 1 / 64):
        dsg = design_for(s16(input_scale=scale, max_row=max_row))
        blocks = [
            rowsets.every_difference16(2),
            rowsets.edge_rows16(max_row),
            rowsets.every_difference16(max_row, 997),
        ]
        for length in (3, 17, 64, max_row // 2, max_row):
            count = max(4, 40000 // length)
            blocks += [
                rowsets.uniform16(rng, count, length),
                rowsets.gaussian16(rng, count, length, dsg.spec.scale),
            ]
        for x in blocks:
            y, ideal = reference(dsg, x), ideal16(x, dsg.spec.scale)
            assert np.abs(y - ideal).max() <= 1
            outputs += y.size
            equal += int((y == ideal).sum())
    assert equal / outputs >= 0.999, f"{equal / outputs:.5%} of {outputs}"


def test_long_rows_refused_where_the_proof_fails() -> None:
    with pytest.raises(SpecError, match="supports max_row up to"):
        design_for(s16(input_scale=3e-4, max_row=1 << 20))


# --- the TFLite replica ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("multiplier", "shift"),
    [
        (2111030213, 1),
        (1073741824, 0),
        (1717960704, 15),
        (1441129907, -10),
        ((1 << 31) - 1, -31),
        (0, 0),
        (1125882699, -1),
    ],
)
def test_one_rounding_equals_tflites_two(multiplier: int, shift: int) -> None:
    """g(d) with SaturatingRoundingDoublingHighMul and RoundingDivideByPOT combined equals
    TFLite's MultiplyByQuantizedMultiplier evaluated literally, for every difference."""
    dsg = design_for(s16(method="tflite", input_multiplier=multiplier, input_left_shift=shift))
    d = np.arange(65536)
    fast = tflite_s16.scaled_magnitude(dsg, d)
    literal = [-tflite_s16.mbqm_literal(-int(v), multiplier, shift) for v in d]
    assert fast.tolist() == literal


def test_tables_are_tflites_on_any_ieee_target() -> None:
    """An expf off by one ULP either way, or fused multiply-adds, changes no entry; the first and
    last entries are exp(-10) and exp(0) (and 1/1, 1/2) in Q0.15."""
    assert tflite_s16.tables_are_platform_independent()
    exp, recip = tflite_s16.exp_lut(), tflite_s16.one_over_one_plus_x_lut()
    assert (exp[0], exp[-1], recip[0], recip[-1]) == (2, 32767, 32767, 16384)
    assert (np.diff(exp.astype(int)) >= 0).all() and (np.diff(recip.astype(int)) <= 0).all()


def test_header_exposes_tflite_parameters() -> None:
    from lutcodegen import render

    dsg = design_for(s16(method="tflite", input_scale=3e-4, prefix="att"))
    header = render(dsg, header_name="att.h").header
    assert f"#define ATT_INPUT_MULTIPLIER {dsg.input_multiplier}\n" in header
    assert f"#define ATT_INPUT_LEFT_SHIFT ({dsg.input_left_shift})\n" in header
    assert "int32_t att_softmax_s16(const int16_t *input" in header


# --- options that do not combine ------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"method": "rexp"}, "only to methods lut, tflite"),
        ({"method": "lut2d"}, "only to methods lut, tflite"),
        ({"bits": 8}, "use --bits 16"),
        ({"bits": 12}, "use --bits 16"),
        ({"unroll": 4}, "int8 input only"),
        ({"method": "tflite", "table_layout": "compact"}, "fixed 513-entry"),
        (
            {"method": "tflite", "input_multiplier": 5, "input_left_shift": 1, "diff_min": -3},
            "no diff_min",
        ),
        ({"method": "tflite", "input_multiplier": 5}, "together"),
        ({"method": "tflite", "input_multiplier": 5, "input_left_shift": 16}, "-31 to 15"),
        ({"method": "tflite", "input_scale": 5.5}, "overflows"),
        ({"method": "tflite", "max_row": 65537}, "up to 65536"),
        ({"input_bits": 12}, "8 or 16"),
    ],
)
def test_refused(options: dict[str, object], message: str) -> None:
    spec_options = {"input_bits": 16, "bits": 16, **options}
    with pytest.raises(SpecError, match=message):
        design_for(Spec(**spec_options))


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lutcodegen", *args], capture_output=True, text=True, check=False
    )


def test_cli_int16_and_the_combinations_it_refuses() -> None:
    ok = _cli("--input-bits", "16", "--bits", "16", "--input-scale", "3e-4")
    assert ok.returncode == 0 and "lcg_softmax_s16(const int16_t *input" in ok.stdout
    for args, message in (
        (["--method", "rexp", "--bits", "16"], "only to methods lut, tflite"),
        (["--bits", "8"], "use --bits 16"),
        ([], "use --bits 16"),
    ):
        bad = _cli("--input-bits", "16", *args)
        assert bad.returncode == 2 and bad.stdout == "" and message in bad.stderr


def test_evaluate_and_report_have_int16_rows(capsys: pytest.CaptureFixture[str]) -> None:
    """The accuracy table and the report measure the int16 kernels against correct rounding."""
    from lutcodegen.analysis import evaluate, report

    lut = evaluate.accuracy16(design_for(s16(input_scale=1 / 1024)), (2, 64), per_length=4000)
    assert lut.max_error <= 1 and lut.equal >= 0.999 and lut.outputs > 100_000
    tfl = evaluate.accuracy16(
        design_for(s16(method="tflite", input_scale=1 / 1024)), (2, 64), per_length=4000
    )
    assert tfl.max_error > 1  # TFLite's exp table stops at exp(-10)
    assert report.main(["--input-bits", "16", "--rows", "50", "--lengths", "16,64"]) == 0
    table = capsys.readouterr().out
    assert "int16 input" in table
    assert [
        line.split("|")[1].strip()
        for line in table.splitlines()
        if line.startswith("|") and "16 | 1/4096" in line
    ] == ["ideal", "lut", "tflite"]
