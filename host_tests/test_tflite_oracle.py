"""Method ``tflite`` against TFLite Micro itself (the ``tflite-micro`` interpreter), bit for bit.

The interpreter runs in a child process (``tflite_oracle.run_jobs``) because TFLite Micro aborts
the process on int8 rows whose sum of exps reaches 2^28. Those rows are predicted from the
reference's sums, kept out of the bulk comparison, and checked separately: TFLite must die on
them, and the generated C must return its documented result.
"""

from __future__ import annotations

import importlib.util
import os
import signal

import numpy as np
import pytest
import rows
from cbuild import REQUIRE_TOOLS
from tflite_oracle import Job, run_jobs

from lutcodegen import Spec, design_for, ideal_output, reference
from lutcodegen.methods import tflite


@pytest.fixture(scope="module", autouse=True)
def _tflite_micro() -> None:
    """Skip without the ``tflite-micro`` package; in CI (LUTCODEGEN_REQUIRE_TOOLS=1) fail."""
    missing = [m for m in ("tflite_micro", "flatbuffers") if importlib.util.find_spec(m) is None]
    if missing:
        message = f"Python package(s) {', '.join(missing)} not installed (pip install -e '.[test]')"
        if REQUIRE_TOOLS:
            pytest.fail(message + " (LUTCODEGEN_REQUIRE_TOOLS=1)")
        pytest.skip(message)


#: Configurations of the bulk comparison; each compiles one kernel. Outputs per config ~30k.
N_CONFIGS = int(os.environ.get("LUTCODEGEN_ORACLE_CONFIGS", "40"))
OUTPUTS_PER_LENGTH = 5000


def _bulk_cases(seed: int) -> list[tuple[Spec, np.ndarray]]:
    """Random (spec, rows) pairs: scales 1e-3..3 log-uniform, betas, lengths 1..1024, data mixes."""
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(N_CONFIGS):
        scale = float(10 ** rng.uniform(-3, np.log10(3)))
        beta = 1.0 if i % 3 == 0 else float(rng.uniform(0.25, 2.0))
        bits = 16 if i % 4 == 3 else 8
        spec = Spec(method="tflite", bits=bits, input_scale=scale, beta=beta, max_row=1024)
        lengths = {1, 1024} if i % 8 == 0 else set()
        while len(lengths) < 6:
            lengths.add(int(round(10 ** rng.uniform(0, np.log10(1024)))))
        for length in sorted(lengths):
            count = max(2, OUTPUTS_PER_LENGTH // length)
            parts = [
                rows.uniform(rng, count // 2 + 1, length),
                rows.gaussian(rng, count // 2 + 1, length, spec.scale),
                rows.edge_rows(length),
            ]
            if length >= 2:
                picked = rng.permutation(256)[: max(1, count // 8)]
                parts.append(rows.every_difference(length)[picked])
            cases.append((spec, np.concatenate(parts)))
    return cases


def _would_abort(spec: Spec, x: np.ndarray) -> np.ndarray:
    """Rows on which TFLite Micro aborts: int8 output and a Q12.19 sum of exps >= 2^28."""
    if spec.bits != 8:
        return np.zeros(len(x), dtype=bool)
    return tflite.row_sums(design_for(spec), x) >= tflite.INT8_SUM_LIMIT


@pytest.mark.slow
def test_one_million_outputs_match_tflite_micro(build_kernel) -> None:
    cases = _bulk_cases(seed=2024)
    jobs, kept, skipped, aborting = [], [], 0, []
    for spec, x in cases:
        abort = _would_abort(spec, x)
        skipped += int(abort.sum())
        aborting += [(spec, row[None]) for row in x[abort]]
        x = x[~abort]
        if len(x):
            jobs.append(Job(spec.input_scale, spec.beta, spec.bits, x))
            kept.append((spec, x))
    result = run_jobs(jobs)
    assert result.returncode == 0, f"TFLite Micro failed ({result.returncode}):\n{result.stderr}"

    compared = c_mismatch = ref_mismatch = 0
    first = []
    for (spec, x), expected in zip(kept, result.outputs):
        dsg = design_for(spec)
        got = build_kernel(dsg)(x)
        ref = reference(dsg, x)
        expected = expected.reshape(x.shape)
        compared += expected.size
        bad = int((got != expected).sum())
        c_mismatch += bad
        ref_mismatch += int((ref != expected).sum())
        if bad and len(first) < 10:
            pos = np.argwhere(got != expected)[0]
            first.append(
                f"{spec.command_line()} L={x.shape[1]} pos {tuple(pos)}: "
                f"act {got[tuple(pos)]} ref {expected[tuple(pos)]}"
            )
    print(
        f"\nTFLite Micro oracle: {compared} outputs in {len(jobs)} shapes, {N_CONFIGS} configs; "
        f"C mismatches {c_mismatch}, reference mismatches {ref_mismatch}; "
        f"{skipped} int8 rows kept out (TFLite would abort)"
    )
    assert compared >= 1_000_000 or N_CONFIGS < 40

    # The rows kept out: the C gives -128 (within 1 LSB of ideal), and TFLite really aborts.
    for spec, row in aborting:
        dsg = design_for(spec)
        got = build_kernel(dsg)(row)
        assert (got == -128).all()
        assert np.abs(got - ideal_output(row, dsg.effective_scale, 8)).max() <= 1
    picks = np.random.default_rng(1).permutation(len(aborting))[:3]
    for i in picks:
        spec, row = aborting[i]
        assert run_jobs([Job(spec.input_scale, spec.beta, 8, row)]).returncode == -signal.SIGABRT
    assert c_mismatch == 0, "\n".join(first)
    assert ref_mismatch == 0


def _abort_cases() -> list[tuple[str, Spec, np.ndarray]]:
    rng = np.random.default_rng(5)
    return [
        ("512 equal logits", Spec(method="tflite", max_row=1024), np.zeros((1, 512))),
        ("fully masked row of 1024", Spec(method="tflite", max_row=1024), np.full((1, 1024), -128)),
        (
            "uniform row of 1024 at scale 1e-3",
            Spec(method="tflite", input_scale=1e-3, max_row=1024),
            rows.uniform(rng, 1, 1024),
        ),
    ]


@pytest.mark.parametrize(("name", "spec", "x"), _abort_cases(), ids=lambda v: None)
def test_where_tflite_aborts_we_return_minus_128(name, spec, x, build_kernel) -> None:
    x = x.astype(np.int8)
    assert _would_abort(spec, x).all(), name
    result = run_jobs([Job(spec.input_scale, spec.beta, spec.bits, x)])
    # TFLITE_CHECK(exponent <= 31) calls abort(): the child dies of SIGABRT.
    assert result.returncode == -signal.SIGABRT, (
        f"{name}: TFLite Micro returned {result.returncode} instead of aborting; revisit the docs"
    )
    dsg = design_for(spec)
    got = build_kernel(dsg)(x)
    assert (got == -128).all()
    assert np.abs(got - ideal_output(x, dsg.effective_scale, 8)).max() <= 1


def test_rows_just_below_the_limit_match_tflite(build_kernel) -> None:
    """511 equal logits (sum 2^28 - 2^19) and long int16 rows whose int32 sum wraps in TFLite."""
    cases = [
        (Spec(method="tflite", max_row=1024), np.zeros((1, 511))),
        # one maximum and 1023 at d = 12: sum ~ 1 + 1023 exp(-0.75) ~ 484 (x 2^19), just inside
        (Spec(method="tflite", max_row=1024), np.r_[[127], np.full(1023, 115)][None]),
        (Spec(method="tflite", bits=16, max_row=8191), np.zeros((2, 4096))),
        (Spec(method="tflite", bits=16, max_row=8191), np.zeros((1, 8191))),
        (
            Spec(method="tflite", bits=16, input_scale=1e-3, max_row=8191),
            rows.uniform(np.random.default_rng(9), 3, 6000),
        ),
    ]
    cases = [(spec, x.astype(np.int8)) for spec, x in cases]
    for spec, x in cases:
        assert not _would_abort(spec, x).any()
    result = run_jobs([Job(s.input_scale, s.beta, s.bits, x) for s, x in cases])
    assert result.returncode == 0, result.stderr
    for (spec, x), expected in zip(cases, result.outputs):
        dsg = design_for(spec)
        assert (build_kernel(dsg)(x) == expected.reshape(x.shape)).all(), spec.command_line()


def test_raw_params_kernel_matches_tflite(build_kernel) -> None:
    """A kernel generated from raw SoftmaxParams equals TFLite run from the scale they came from."""
    computed = design_for(Spec(method="tflite", input_scale=0.043, beta=1.7))
    spec = Spec(
        method="tflite",
        input_multiplier=computed.input_multiplier,
        input_left_shift=computed.input_left_shift,
        diff_min=computed.diff_min,
    )
    x = rows.gaussian(np.random.default_rng(11), 400, 64, computed.effective_scale)
    result = run_jobs([Job(0.043, 1.7, 8, x)])
    assert result.returncode == 0, result.stderr
    assert (build_kernel(design_for(spec))(x) == result.outputs[0].reshape(x.shape)).all()


#: int16 configurations of the bulk comparison (TFLite's 16x8 mode).
N_CONFIGS_S16 = int(os.environ.get("LUTCODEGEN_ORACLE_CONFIGS_S16", "24"))


def _bulk_cases_s16(seed: int) -> list[tuple[Spec, np.ndarray]]:
    """Random int16 (spec, rows): scales 1e-6..4 log-uniform (every multiplier shift from -13 to
    15), betas, lengths 1..20000 (rows longer than 1024 in every config), data mixes."""
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(N_CONFIGS_S16):
        scale = float(10 ** rng.uniform(-6, np.log10(4)))
        beta = 1.0 if i % 3 == 0 else float(rng.uniform(0.25, 1.25))
        spec = Spec(
            method="tflite", input_bits=16, bits=16, input_scale=scale, beta=beta, max_row=20000
        )
        lengths = {1, 2, int(rng.integers(1025, 20001))}
        while len(lengths) < 6:
            lengths.add(int(round(10 ** rng.uniform(0, np.log10(4096)))))
        for length in sorted(lengths):
            count = max(2, OUTPUTS_PER_LENGTH // length)
            parts = [
                rows.uniform16(rng, count // 2 + 1, length),
                rows.gaussian16(rng, count // 2 + 1, length, spec.scale),
                rows.edge_rows16(length),
                rows.every_difference16(
                    length,
                    int(rng.integers(40000, 65536)) if length > 64 else 257,
                    int(rng.integers(0, 257)),
                ),
            ]
            cases.append((spec, np.concatenate(parts)))
    return cases


@pytest.mark.slow
def test_int16_outputs_match_tflite_micro(build_kernel) -> None:
    """0 mismatches against the interpreter's int16 softmax, tables and parameters included."""
    cases = _bulk_cases_s16(seed=1616)
    if N_CONFIGS_S16 >= 2:  # every difference 0..65535 once, at two scales
        for scale in (3e-4, 1e-6):
            spec = Spec(method="tflite", input_bits=16, bits=16, input_scale=scale, max_row=20000)
            cases.append((spec, rows.every_difference16(2)))
    result = run_jobs([Job(s.input_scale, s.beta, 16, x, 16) for s, x in cases])
    assert result.returncode == 0, f"TFLite Micro failed ({result.returncode}):\n{result.stderr}"
    compared = c_mismatch = ref_mismatch = 0
    longest = 0
    for (spec, x), expected in zip(cases, result.outputs):
        dsg = design_for(spec)
        expected = expected.reshape(x.shape)
        got = build_kernel(dsg)(x)
        compared += expected.size
        longest = max(longest, x.shape[1])
        c_mismatch += int((got != expected).sum())
        ref_mismatch += int((reference(dsg, x) != expected).sum())
    print(
        f"\nTFLite Micro int16 oracle: {compared} outputs in {len(cases)} shapes, "
        f"{N_CONFIGS_S16} configs, rows up to {longest}; C mismatches {c_mismatch}, "
        f"reference mismatches {ref_mismatch}"
    )
    assert compared >= 500_000 or N_CONFIGS_S16 < 24
    assert longest > 1024
    assert c_mismatch == 0 and ref_mismatch == 0


def test_int16_raw_params_kernel_matches_tflite(build_kernel) -> None:
    """A kernel generated from TFLite's two int16 parameters equals TFLite run from the scale."""
    computed = design_for(
        Spec(method="tflite", input_bits=16, bits=16, input_scale=2.5e-4, beta=0.8)
    )
    spec = Spec(
        method="tflite",
        input_bits=16,
        bits=16,
        input_multiplier=computed.input_multiplier,
        input_left_shift=computed.input_left_shift,
    )
    x = rows.gaussian16(np.random.default_rng(12), 300, 77, 2e-4)
    result = run_jobs([Job(2.5e-4, 0.8, 16, x, 16)])
    assert result.returncode == 0, result.stderr
    assert (build_kernel(design_for(spec))(x) == result.outputs[0].reshape(x.shape)).all()
