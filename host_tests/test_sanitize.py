"""Every representative configuration, built with AddressSanitizer and UndefinedBehaviorSanitizer
(gcc and clang) and with MemorySanitizer (clang), run over the exactness corpus and every status
and boundary case of the contract: no sanitizer report, no write outside
``output[0 .. num_rows*row_size)``, no read outside the input, no use of memory the kernel did not
write, the documented status, and outputs equal to the numpy reference."""

from __future__ import annotations

import pytest
import sanitize
from configs import all_specs, spec_id

from lutcodegen import Spec


@pytest.mark.parametrize("variant", sorted(sanitize.VARIANTS))
@pytest.mark.parametrize("spec", all_specs(), ids=spec_id)
def test_sanitized_exactness_and_contract(
    spec: Spec, variant: str, harness_root, hardening_report: list[str]
) -> None:
    units = sanitize.hostile_units(
        spec.max_row, sanitize.in_place_allowed(spec)
    ) + sanitize.exactness_units(spec)
    result = sanitize.replay_spec(spec, variant, harness_root, units)
    assert result.rejected_calls > 0 and result.accepted_calls > 0
    hardening_report.append(
        f"sanitized {variant:5} {spec_id(spec)}: {result.units} calls "
        f"({result.rejected_calls} rejected as documented), {result.outputs} outputs "
        f"equal to the reference"
    )


def test_expected_status_follows_the_documented_order() -> None:
    """The driver's own status model (a wrong model would make the checks above vacuous)."""
    status = sanitize.expected_status
    assert status(sanitize.FLAG_INPUT_NULL, -1, 0, 8) == -1
    assert status(sanitize.FLAG_OUTPUT_NULL, 5, 3, 8) == -1
    assert status(0, -1, 0, 8) == -2
    assert status(0, sanitize.INT32_MIN, 3, 8) == -2
    assert status(0, 0, 0, 8) == -3
    assert status(0, 0, 9, 8) == -3
    assert status(0, 0, 8, 8) == 0
    assert status(0, 3, 1, 8) == 0


def test_harness_rejects_a_wrong_output(harness_root) -> None:
    """check_dump must fail when one output differs from the reference."""
    import numpy as np

    from lutcodegen import design_for, reference

    dsg = design_for(Spec())
    x = np.array([[1, 2, 3]], dtype=np.int8)
    y = reference(dsg, x).astype(np.int8)
    y[0, 1] += 1
    with pytest.raises(AssertionError, match="1 mismatches"):
        sanitize.check_dump(dsg, [sanitize.Record(0, 1, 3, 0, x, y)])
