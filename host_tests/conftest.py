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
