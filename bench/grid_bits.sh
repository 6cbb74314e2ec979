#!/usr/bin/env bash
# Coded rate against the latent grid's resolution (grid_bits b: bins of 2^-b of the smallest step
# std), opt1 grid, archive with JPEG XL bootstrap, --parallel 8, one thread, first N CIFAR-10 test
# images (default 20, the sizes of k_sweep_coded.sh's n20 rows, which are the b=0 points).
# Results: bench/results/grid_bits/nN/opt1_KK_bB.json.
set -euo pipefail
MODEL=${MODEL:-cifar10-vdm-s1}
N=${N:-20}
cd "$(dirname "$0")/.."
mkdir -p bench/results/grid_bits/n$N
RUNS=${RUNS:-256:1 100:1 64:1 256:2}
for KB in $RUNS; do
  K=${KB%:*}; B=${KB#*:}
  .venv/bin/bbcodec bench cifar10-test --model $MODEL --limit $N --mode archive --steps $K --grid opt1 \
      --grid-bits $B --parallel 8 --threads 1 --quiet --resume --nelbo-steps 8 \
      --out bench/results/grid_bits/n$N/opt1_K${K}_b$B.json > /dev/null
done
