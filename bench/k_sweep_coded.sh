#!/usr/bin/env bash
# Issue 5, coder side: coded bits/dim and seconds per image against K, uniform vs opt1 grid.
# Archive mode (one .bbc per run, first tiles bootstrapped with JPEG XL), --parallel 8, one
# thread, on the first 100 CIFAR-10 test images for K <= 256 and on the first 20 for K from 32 to 256
# (the CPU time of this machine); the model's NELBO_K reference samples 8 steps per image (the
# 1000-image model-side sweep is bench/k_sweep.py). Results: bench/results/k_sweep_coded/nN/GRID_KK.json,
# which bench/report.py folds into the README. MODEL defaults to the model the sweep was run with.
set -euo pipefail
MODEL=${MODEL:-cifar10-vdm-s1}
cd "$(dirname "$0")/.."
run() {  # N K GRID
  .venv/bin/bbcodec bench cifar10-test --model $MODEL --limit $1 --mode archive --steps $2 --grid $3 --parallel 8 \
      --threads 1 --quiet --resume --nelbo-steps 8 --out bench/results/k_sweep_coded/n$1/$3_K$2.json > /dev/null
}
for K in 8 16 32 64 128 256; do for G in uniform opt1; do run 100 $K $G; done; done
for K in 32 64 100 128 256; do for G in uniform opt1; do run 20 $K $G; done; done
