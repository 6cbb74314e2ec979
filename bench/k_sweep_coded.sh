#!/usr/bin/env bash
# Issue 5, coder side: coded bits/dim and seconds per image against K, uniform vs opt1 grid.
# Archive mode (one .bbc per run, first tiles bootstrapped with JPEG XL), --parallel 8, one
# thread, on the first N CIFAR-10 test images (N=100 for K <= 64, N=20 for K = 128 and 256: the
# CPU time of this machine); the model's NELBO_K reference samples 8 steps per image (the
# 1000-image model-side sweep is bench/k_sweep.py). Results: bench/results/k_sweep_coded/GRID_KK.json,
# which bench/report.py folds into the README. MODEL defaults to the model the sweep was run with.
set -euo pipefail
MODEL=${MODEL:-cifar10-vdm-s1}
cd "$(dirname "$0")/.."
for K in 8 16 32 64 128 256; do
  N=100; [ "$K" -gt 64 ] && N=20
  for G in uniform opt1; do
    .venv/bin/bbcodec bench cifar10-test --model $MODEL --limit $N --mode archive --steps $K --grid $G --parallel 8 \
        --threads 1 --quiet --resume --nelbo-steps 8 --out bench/results/k_sweep_coded/${G}_K${K}.json > /dev/null
  done
done
