#!/usr/bin/env bash
# Coded rate against the latent grid's resolution (grid_bits b: bins of 2^-b of the smallest step
# std), opt1 grid, latent coding version 1, archive with JPEG XL bootstrap, --parallel 8, one
# thread, first N CIFAR-10 test images (default 20, the sizes of the n20 rows of
# ../2026-11-29-coded-steps, which are the b=0 points).
# Results: results/nN/opt1_KK_bB.json beside this script.
set -euo pipefail
MODEL=${MODEL:-cifar10-vdm-s1}
N=${N:-20}
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/../../.."
mkdir -p "$HERE/results/n$N"
RUNS=${RUNS:-256:1 100:1 64:1 256:2}
for KB in $RUNS; do
  K=${KB%:*}; B=${KB#*:}
  .venv/bin/bbcodec bench cifar10-test --model $MODEL --limit $N --mode archive --steps $K --grid opt1 \
      --grid-bits $B --latents 1 --parallel 8 --threads 1 --quiet --resume --nelbo-steps 8 \
      --out "$HERE/results/n$N/opt1_K${K}_b$B.json" > /dev/null
done
