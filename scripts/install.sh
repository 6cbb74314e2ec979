#!/usr/bin/env bash
# Create .venv and install bbcodec into it.
#
# torch is installed first, so that the package's plain `torch` requirement is already met:
# - no NVIDIA GPU (nvidia-smi finds none): the CPU-only build, 2.13.0+cpu, from a local wheel where pip
#   has one (--find-links) or else from torch's own CPU wheel index; never the multi-GB CUDA build
#   with its CUDA and triton packages that a plain `pip install torch` resolves to on Linux;
# - an NVIDIA GPU: the CUDA build from PyPI (torch==2.13.0).
# TORCH_SPEC (e.g. "torch==2.13.0") and TORCH_INDEX (e.g. https://download.pytorch.org/whl/cu126) override
# the choice; a torch already in .venv is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_VERSION=2.13.0
CPU_INDEX=https://download.pytorch.org/whl/cpu
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
pip_install() { .venv/bin/python -m pip install -q "$@"; }
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  echo "install.sh: installing torch into .venv (a few minutes on a fresh machine)" >&2
  if [ -n "${TORCH_SPEC:-}" ]; then
    pip_install "$TORCH_SPEC" ${TORCH_INDEX:+--index-url "$TORCH_INDEX"}
  elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    pip_install "torch==$TORCH_VERSION"
  else
    # the local wheel first (no network round trip), then torch's CPU index for torch alone
    pip_install "torch==$TORCH_VERSION+cpu" 2>/dev/null \
      || pip_install "torch==$TORCH_VERSION+cpu" --extra-index-url "$CPU_INDEX"
  fi
fi
echo "install.sh: installing bbcodec and its dependencies into .venv" >&2
pip_install -e ".[test]"
