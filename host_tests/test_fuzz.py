"""Coverage-guided fuzzing of every method's representative kernels with libFuzzer (clang),
under AddressSanitizer and UndefinedBehaviorSanitizer.

libFuzzer mutates harness units (flags, row count, row length, logits; see
``harness/softmax_harness.c``), so it tries NULL pointers, negative, zero, huge and boundary row
counts and lengths, and arbitrary rows. The harness aborts on a sanitizer report, a wrong status,
a write outside ``output[0 .. num_rows*row_size)``, a changed input, an output out of range, a
different second result, a row that differs when computed alone or reversed, or a different
in-place result. The fuzzer cannot know the exact outputs, so the corpus it built is then
replayed through the gcc-sanitized harness and every output compared with the numpy reference.

Budget: ``LUTCODEGEN_FUZZ_SECONDS`` per spec (default 10, as in CI); set it higher locally for a
longer run, ``LUTCODEGEN_FUZZ_SEED`` to vary the search, and ``LUTCODEGEN_FUZZ_CORPUS`` to a
folder to keep each spec's corpus there, so that successive local runs build on each other.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import sanitize
from cbuild import REQUIRE_TOOLS, require_tool
from configs import fuzz_specs, spec_id

from lutcodegen import Spec, design_for

FUZZ_SECONDS = int(os.environ.get("LUTCODEGEN_FUZZ_SECONDS", "10"))
FUZZ_SEED = int(os.environ.get("LUTCODEGEN_FUZZ_SEED", "1"))
FUZZ_CORPUS = os.environ.get("LUTCODEGEN_FUZZ_CORPUS", "")


def _seeds(spec: Spec) -> list[bytes]:
    """Every boundary of the contract, plus short exactness rows, as starting points."""
    short = [
        u
        for u in sanitize.exactness_units(Spec(**{**spec.options(), "max_row": 8}))
        if len(u) <= 512
    ]
    return sanitize.hostile_units(spec.max_row, sanitize.in_place_allowed(spec)) + short[::7]


def _fuzzer(spec: Spec, root: Path) -> Path:
    require_tool("clang")
    try:
        return sanitize.build_harness(design_for(spec), "clang", root, fuzzer=True)
    except AssertionError as exc:
        if "fuzzer" in str(exc) and not REQUIRE_TOOLS:
            pytest.skip("clang cannot link -fsanitize=fuzzer here (install libclang-rt-14-dev)")
        raise


@pytest.mark.slow
@pytest.mark.parametrize("spec", fuzz_specs(), ids=spec_id)
def test_libfuzzer_then_replay_against_reference(
    spec: Spec, harness_root, tmp_path: Path, hardening_report: list[str]
) -> None:
    binary = _fuzzer(spec, harness_root)
    corpus = Path(FUZZ_CORPUS) / spec_id(spec) if FUZZ_CORPUS else tmp_path / "corpus"
    seeds, crashes = tmp_path / "seeds", tmp_path / "crashes"
    corpus.mkdir(parents=True, exist_ok=True)
    for folder in (seeds, crashes):
        folder.mkdir()
    kept_before = len(list(corpus.iterdir()))
    for i, unit in enumerate(_seeds(spec)):
        (seeds / f"seed-{i:04d}").write_bytes(unit)

    cmd = [
        str(binary),
        str(corpus),
        str(seeds),
        f"-max_total_time={FUZZ_SECONDS}",
        f"-seed={FUZZ_SEED}",
        "-max_len=512",
        "-timeout=30",
        "-rss_limit_mb=4096",
        "-use_value_profile=1",
        "-print_final_stats=1",
        f"-artifact_prefix={crashes}/",
    ]
    env = dict(os.environ, **sanitize.RUN_ENV)
    started = time.monotonic()
    result = subprocess.run(
        cmd, capture_output=True, text=True, env=env, check=False, timeout=FUZZ_SECONDS + 300
    )
    elapsed = time.monotonic() - started
    sanitize.assert_clean(result.returncode, result.stderr)
    assert list(crashes.iterdir()) == [], "libFuzzer saved crash inputs"
    executions = re.search(r"stat::number_of_executed_units:\s*(\d+)", result.stderr)
    assert executions is not None, result.stderr[-3000:]
    runs = int(executions.group(1))
    assert runs > len(_seeds(spec)), "the fuzzer did not get past its seeds"

    # Exactness: the whole corpus (what the fuzzer kept, and the seeds) against the reference.
    units = [p.read_bytes() for folder in (corpus, seeds) for p in sorted(folder.iterdir())]
    checked = sanitize.replay_spec(spec, "gcc", harness_root, units)
    kept = len(list(corpus.iterdir()))
    hardening_report.append(
        f"libFuzzer {spec_id(spec)}: {runs} executions in {elapsed:.0f} s (seed {FUZZ_SEED}), "
        f"corpus {kept} units ({kept - kept_before} new) + {len(units) - kept} seeds; "
        f"replay: {checked.accepted_calls} "
        f"accepted calls, {checked.outputs} outputs equal to the reference, "
        f"{checked.rejected_calls} rejected as documented"
    )
