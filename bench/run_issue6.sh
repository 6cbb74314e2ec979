#!/usr/bin/env bash
# Issue 6 figures on one CPU thread: every full-size photo as its own file at the default settings
# (K=100, the model's grid and latent coding version, JPEG XL bootstrap, --parallel 8), each decoded
# and compared; the model NELBO_K reference samples 20 of the K steps per tile. About 2 CPU-hours;
# --resume continues after the last finished photo. Then the network-versus-coder profile.
# Needs ../shared/data or BBCODEC_DATA (photos-full is rebuilt from Debian/PyPI packages when
# ../shared is absent). The per-file CIFAR-10 rows are in bench/run_issue3.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/bbcodec bench photos-full --mode per-file --nelbo-steps 20 --threads 1 --quiet --resume \
    --out bench/results/photos_full_vdm.json > /dev/null
.venv/bin/python bench/profile.py --images 16 --parallel 8 --threads 1
