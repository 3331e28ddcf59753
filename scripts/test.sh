#!/usr/bin/env bash
# The whole test suite from a fresh machine: set-up, lint, then every test (host and firmware).
# Missing toolchains fail the run rather than skip tests (LUTCODEGEN_REQUIRE_TOOLS=1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check lutcodegen host_tests firmware examples
LUTCODEGEN_REQUIRE_TOOLS=1 .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
