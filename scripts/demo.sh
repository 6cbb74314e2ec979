#!/usr/bin/env bash
# Install, then run the main job: compress + decompress the bundled samples with the default model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/bbcodec demo "$@"
