#!/usr/bin/env bash
# Issue 6 figures on one CPU thread per process: every full-size photo as its own file at the default
# settings (K=100, the model's grid and latent coding version, JPEG XL bootstrap, --parallel 8), each
# decoded and compared; the model NELBO_K reference samples 20 of the K steps per tile. About 2.5
# CPU-hours; --resume continues after the last finished photo. SPLIT=5 codes photos [0, 5) and
# [5, 9) in two processes (one per core) without their own summaries, joins them (bench/merge.py) and finishes the summary over
# all nine. Then the network-versus-coder profile. The committed rows are cifar10-vdm-s6's (MODEL=
# picks another model). Needs ../shared/data or BBCODEC_DATA (photos-full is rebuilt from
# Debian/PyPI packages when ../shared is absent). The per-file CIFAR-10 rows are in bench/run_issue3.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=bench/results/photos_full_vdm.json
ARGS=(--model "${MODEL:-cifar10-vdm-s6}" --mode per-file --nelbo-steps 20 --threads 1 --quiet --resume)
if [ -n "${SPLIT:-}" ]; then
  .venv/bin/bbcodec bench photos-full --limit "$SPLIT" "${ARGS[@]}" --no-summary --out "$OUT.part0.json" > /dev/null &
  A=$!
  .venv/bin/bbcodec bench photos-full --offset "$SPLIT" "${ARGS[@]}" --no-summary --out "$OUT.part1.json" > /dev/null &
  B=$!
  wait "$A" && wait "$B"
  .venv/bin/python bench/merge.py "$OUT" "$OUT.part0.json" "$OUT.part1.json"  # fails unless both are whole
fi
.venv/bin/bbcodec bench photos-full "${ARGS[@]}" --out "$OUT" > /dev/null
.venv/bin/python bench/profile.py --images 16 --parallel 8 --threads 1
