#!/usr/bin/env bash
# Create .venv and install bbcodec into it. The CPU build of torch is installed FIRST and pinned,
# so that the package's plain `torch` requirement is already met and no multi-GB CUDA build is
# pulled. (On a GPU machine, install the torch build you want before running this.)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  .venv/bin/python -m pip install -q "torch==2.13.0"
fi
.venv/bin/python -m pip install -q -e ".[test]"
