#!/usr/bin/env bash
# Install, then run the default (fast, CPU-only) test suite. Extra arguments go to pytest,
# e.g. `bash scripts/test.sh -m slow` for the slow tests with the shipped model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/python -m pytest "$@"
