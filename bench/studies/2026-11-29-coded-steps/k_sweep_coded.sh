#!/usr/bin/env bash
# Coded bits/dim and seconds per image against K, uniform vs the ELBO-optimal grids (the coder side;
# the model side is ../2026-11-29-steps-model-side). GRIDS="opt3" runs only those grids (--resume
# skips finished runs anyway).
# Archive mode (one .bbc per run, first tiles bootstrapped with JPEG XL), --parallel 8, one
# thread, first 100 CIFAR-10 test images; the model's NELBO_K reference samples 8 steps per image.
# MODEL defaults to the model the sweep was run with.
#   LATENTS=2 (default): latent coding version 2, grids opt1, uniform, opt2 and opt3 (the default grid
#     with version 2) -> results/latents2/n100/GRID_KK.json
#   LATENTS=1: version 1 -> results/latents1/nN/GRID_KK.json (plus first-20 rows for K 32..256)
# bench/report.py folds both into docs/results.md.
set -euo pipefail
MODEL=${MODEL:-cifar10-vdm-s1}
LATENTS=${LATENTS:-2}
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/../../.."
DIR=$HERE/results/latents$LATENTS
run() {  # N K GRID
  mkdir -p $DIR/n$1
  .venv/bin/bbcodec bench cifar10-test --model $MODEL --limit $1 --mode archive --steps $2 --grid $3 --parallel 8 \
      --latents $LATENTS --threads 1 --quiet --resume --nelbo-steps 8 --out $DIR/n$1/$3_K$2.json > /dev/null
}
GRIDS=${GRIDS:-$([ "$LATENTS" = 1 ] && echo "opt1 uniform" || echo "opt1 uniform opt2 opt3")}
for G in $GRIDS; do for K in 8 16 32 64 128 256; do run 100 $K $G; done; done
if [ "$LATENTS" = 1 ]; then
  for K in 32 64 100 128 256; do for G in uniform opt1; do run 20 $K $G; done; done
fi
