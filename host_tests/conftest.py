"""Shared fixtures: a cffi kernel builder for the whole run, a sanitized-harness build folder, and a
report of what the sanitizer and fuzzing runs executed, printed at the end of the test run."""

from __future__ import annotations

import pytest
from cbuild import KernelBuilder

#: Lines for the end-of-run summary (fuzz executions, corpus sizes, replayed outputs).
HARDENING_REPORT: list[str] = []


@pytest.fixture(scope="session")
def build_kernel(tmp_path_factory: pytest.TempPathFactory) -> KernelBuilder:
    return KernelBuilder(tmp_path_factory.mktemp("cffi"))


@pytest.fixture(scope="session")
def harness_root(tmp_path_factory: pytest.TempPathFactory):
    """One folder per test run for sanitized harness builds (cached by source hash)."""
    return tmp_path_factory.mktemp("harness")


@pytest.fixture
def hardening_report() -> list[str]:
    """Append a line here to have it printed in the run's summary."""
    return HARDENING_REPORT


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if HARDENING_REPORT:
        terminalreporter.section("hardening: sanitized runs and fuzzing")
        for line in HARDENING_REPORT:
            terminalreporter.write_line(line)


#: Modules of the fast loop (``-m quick``, ``scripts/test.sh --quick``): one of each layer. In
#: each, the first case of every test function runs (parametrized tests at their first, smallest
#: parameter), so every layer is touched at reduced size: options and registry, designs and the
#: reference, rendering and the golden files, strict and cross compilation, cffi bit-exactness,
#: the paper and tflite methods, the model, the firmware support and one on-target build.
QUICK_MODULES = frozenset(
    {
        "test_registry",
        "test_cli",
        "test_design",
        "test_exact",
        "test_examples",
        "test_compile",
        "test_lut_paths",
        "test_paper_methods",
        "test_tflite",
        "test_model",
        "test_model_compile",
        "test_firmware_support",
        "test_report",
        "test_model_firmware",
        "test_tflm_cli",
    }
)

#: Exhaustive or property-based functions the fast loop leaves to the full run.
QUICK_SKIP = frozenset({"test_hypothesis_options_and_rows", "test_newton_reciprocal_is_exact"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the first case of each test function of ``QUICK_MODULES`` as ``quick``, unless slow."""
    seen: set[tuple[str, str]] = set()
    for item in items:
        module = item.module.__name__ if isinstance(item, pytest.Function) else ""
        name = getattr(item, "originalname", item.name)
        key = (module, name)
        if module not in QUICK_MODULES or name in QUICK_SKIP or key in seen:
            continue
        if item.get_closest_marker("slow"):
            continue
        seen.add(key)
        item.add_marker(pytest.mark.quick)
