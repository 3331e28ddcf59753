"""Hypothesis over generator options, valid and hostile: every combination either yields a
design whose C compiles strictly and equals the reference bit for bit, or is refused with a
SpecError naming the option (exit status 2 from the CLI) before anything is written."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from cbuild import require_tool
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from test_compile import STRICT

from lutcodegen import METHODS, Spec, SpecError, cli, design_for, reference, render
from lutcodegen.registry import INT16_INPUT_METHODS
from lutcodegen.spec import C_KEYWORDS

NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(1e-3, 16.0),
    st.sampled_from([1e-300, 5e-324, 1e300, 1.7976931348623157e308, 0.0, -0.0, 1, 3]),
    st.integers(-5, 5),
    st.sampled_from([10**400, -(10**400), 2**1024, 10**300]),  # huge Python ints
    st.sampled_from(["0.1", None, True]),  # wrong types through the API
)
PREFIXES = st.one_of(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,30}", fullmatch=True),
    st.text(max_size=8),
    st.sampled_from(sorted(C_KEYWORDS)),
)
OPTIONS = st.fixed_dictionaries(
    {
        "method": st.sampled_from([*METHODS, "nope"]),
        "bits": st.one_of(st.integers(-2, 20), st.sampled_from([8.0, "8", None])),
        "input_scale": NUMBERS,
        "beta": NUMBERS,
        "max_row": st.one_of(
            st.integers(-2, 5000), st.sampled_from([1 << 16, 1 << 20, 1 << 20 + 1])
        ),
        "prefix": PREFIXES,
    }
)

#: Options a user would plausibly give, including the extremes the design must survive.
PLAUSIBLE = st.fixed_dictionaries(
    {
        "method": st.sampled_from(METHODS),
        "bits": st.integers(2, 16),
        "input_scale": st.one_of(st.floats(1e-4, 64.0), st.sampled_from([1e-300, 5e-324, 1e300])),
        "beta": st.one_of(st.just(1.0), st.floats(0.01, 8.0)),
        "max_row": st.one_of(st.integers(1, 4096), st.sampled_from([1, 513, 1024, 1 << 16])),
        "prefix": st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True),
    }
)
MIXED = st.one_of(PLAUSIBLE, PLAUSIBLE, OPTIONS)

#: Words a SpecError must contain for each option, so the message says what is wrong.
OPTION_WORDS = {
    "method": "method",
    "bits": "bits",
    "input_scale": "input_scale",
    "beta": "beta",
    "max_row": "max_row",
    "prefix": "prefix",
}


def _check_design(spec: Spec, rng: np.random.Generator) -> None:
    """Invariants any accepted spec's design must satisfy, and a reference run on edge rows."""
    dsg = design_for(spec)
    text = render(dsg).source
    assert text.isascii() and f"{spec.function_name}(" in text
    if spec.method == "lut":
        table = dsg.exp_table.astype(np.int64)
        assert 1 <= len(table) <= 256 and int(table[0]) == dsg.top
        assert np.all(table[: dsg.nonzero] > 0) and np.all(table[dsg.nonzero :] == 0)
        assert np.all(np.diff(table) <= 0)
        assert int(table.max()) < 1 << dsg.entry_bits
        assert spec.max_row * dsg.top < 1 << dsg.sum_bits
        assert dsg.error_bound < 1
        n_max = (spec.max_row * dsg.top).bit_length()
        assert n_max + dsg.precision - spec.bits < dsg.product_bits
    lo, hi = -(1 << (spec.bits - 1)), (1 << (spec.bits - 1)) - 1
    for length in {1, min(spec.max_row, 3), spec.max_row}:
        x = rng.integers(-128, 128, size=(2, length)).astype(np.int8)
        x = np.concatenate([x, np.zeros((1, length), np.int8)])
        y = reference(dsg, x)
        assert y.shape == x.shape and int(y.min()) >= lo and int(y.max()) <= hi


@pytest.mark.filterwarnings("error")  # an overflow warning is an unhandled edge, not noise
@settings(max_examples=400, deadline=None)
@given(options=MIXED, seed=st.integers(0, 2**32 - 1))
# found by this test: float32's largest beta refused without naming the value, and overflow
# warnings from the exp tables of a lut design at scales near double's range
@example(
    options={"method": "tflite", "bits": 8, "input_scale": 1.0, "beta": 3.4028235677973366e38},
    seed=0,
)
@example(options={"method": "lut", "bits": 8, "input_scale": 1.0, "beta": 1e307}, seed=0)
def test_api_accepts_with_a_sound_design_or_refuses_clearly(options: dict, seed: int) -> None:
    try:
        spec = Spec(**options)
        dsg_or_error: object = design_for(spec)
    except SpecError as exc:
        event("refused")
        message = str(exc)
        assert any(word in message for word in OPTION_WORDS.values()), message
        # it names the value or the limit it broke
        assert any(w in message for w in ("got", "supports max_row up to", "must exceed")), message
        return
    assert dsg_or_error is not None
    event("accepted")
    _check_design(spec, np.random.default_rng(seed))


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize(
    ("method", "bits", "input_bits"),
    [(m, b, 8) for m in METHODS for b in (8, 16)] + [(m, 16, 16) for m in INT16_INPUT_METHODS],
)
@pytest.mark.parametrize("scale", [1.7e308, 1e307, 1e300, 5e-324])
def test_scales_at_double_range_design_or_refuse_without_a_warning(
    method: str, bits: int, input_bits: int, scale: float
) -> None:
    """An exp table at a scale near double's range overflows scale * d to -inf (an entry 0):
    that is the value, and it must not reach a user as a RuntimeWarning."""
    try:
        spec = Spec(method=method, bits=bits, input_bits=input_bits, input_scale=1.0, beta=scale)
        design_for(spec)
    except SpecError as exc:
        assert "got" in str(exc) or "must exceed" in str(exc), str(exc)


def _as_text(value: object) -> str:
    return repr(value) if isinstance(value, float) else str(value)


@pytest.mark.slow
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(options=MIXED, data=st.data())
def test_cli_compiles_strictly_and_is_exact_or_exits_2_without_writing(
    options: dict, data: st.DataObject, build_kernel
) -> None:
    gcc = require_tool("gcc")
    args = [f"--{name.replace('_', '-')}={_as_text(value)}" for name, value in options.items()]
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "k.c"
        try:
            status = cli.main([*args, "-o", str(target)])
        except SystemExit as exc:  # argparse's own refusals
            status = exc.code
        if status != 0:
            event("refused")
            assert status == 2
            assert list(Path(folder).iterdir()) == []
            return
        result = subprocess.run(
            [gcc, "-std=c99", *STRICT, "-c", "k.c"],
            cwd=folder,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        text = target.read_text()
    spec = Spec(
        method=options["method"],
        bits=int(options["bits"]),
        input_scale=float(options["input_scale"]),
        beta=float(options["beta"]),
        max_row=int(options["max_row"]),
        prefix=options["prefix"],
    )
    dsg = design_for(spec)
    event("accepted, compiled and compared")
    assert text == render(dsg).source
    kernel = build_kernel(dsg)
    length = data.draw(st.integers(1, min(spec.max_row, 4096)), label="length")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    x = np.random.default_rng(seed).integers(-128, 128, size=(3, length)).astype(np.int8)
    x[2] = x[2, 0]  # an all-equal row
    np.testing.assert_array_equal(kernel(x), reference(dsg, x))


@pytest.mark.parametrize("option", ["input_scale", "beta"])
@pytest.mark.parametrize("value", [10**400, 2**1024, -(10**400)], ids=["1e400", "2^1024", "-1e400"])
def test_numbers_too_large_for_a_float_are_a_spec_error(option: str, value: int) -> None:
    """Python ints have no size limit; converting one past 1.8e308 raised OverflowError."""
    with pytest.raises(SpecError, match=option):
        Spec(**{option: value})


def test_int_options_whose_product_is_too_large_are_a_spec_error() -> None:
    with pytest.raises(SpecError, match="beta \\* input_scale"):
        Spec(input_scale=10**300, beta=10**10)
