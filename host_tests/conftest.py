"""Shared fixtures: a session-wide cffi kernel builder."""

from __future__ import annotations

import pytest
from cbuild import KernelBuilder


@pytest.fixture(scope="session")
def build_kernel(tmp_path_factory: pytest.TempPathFactory) -> KernelBuilder:
    return KernelBuilder(tmp_path_factory.mktemp("cffi"))
