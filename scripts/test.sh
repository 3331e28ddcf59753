#!/usr/bin/env bash
# The whole test suite from a fresh machine: set-up, lint, format and type checks, then every test
# (host and firmware). Missing toolchains fail the run rather than skip tests
# (LUTCODEGEN_REQUIRE_TOOLS=1).
#
#   bash scripts/test.sh            everything (15 to 37 minutes on 2 cores)
#   bash scripts/test.sh --quick    the fast loop: every layer at reduced size (under a minute),
#                                   the pytest marker "quick" (host_tests/conftest.py)
#   bash scripts/test.sh -k NAME    any other arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
args=("$@")
if [[ ${1:-} == "--quick" ]]; then
    args=(-m quick "${@:2}")
else
    bash scripts/setup.sh
fi
PY_PATHS=(lutcodegen host_tests firmware examples scripts)
.venv/bin/ruff check "${PY_PATHS[@]}"
.venv/bin/ruff format --check "${PY_PATHS[@]}"
.venv/bin/mypy
LUTCODEGEN_REQUIRE_TOOLS=1 .venv/bin/python -m pytest -q -p no:cacheprovider "${args[@]}"
