#!/usr/bin/env bash
# File size and seconds against --parallel (the number of tiles in flight), per file, at the
# default settings (K=100, the model's grid and latent coding, first tiles by JPEG XL), one CPU
# thread. CPU time allows one photo of the set per session; OFFSETS picks which (photos-full is
# sorted by name: 0 mate_Dune 420x263, 6 skimage_chelsea 451x300). --resume skips finished rows.
#   bash bench/studies/2026-11-30-parallel/parallel_table.sh   # NS="1 2 4 8 16 32 64" OFFSETS="0"
# The committed table was coded with cifar10-vdm-s5 (MODEL=cifar10-vdm-s5 reproduces it).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/../../.."
NS=${NS:-"1 2 4 8 16 32 64"}
OFFSETS=${OFFSETS:-"0"}
MODEL_ARGS=(${MODEL:+--model "$MODEL"})
mkdir -p "$HERE/results"
for OFF in $OFFSETS; do
  for N in $NS; do
    .venv/bin/bbcodec bench photos-full "${MODEL_ARGS[@]}" --offset "$OFF" --limit 1 --mode per-file --parallel "$N" \
      --nelbo-steps 8 --threads 1 --quiet --resume --out "$HERE/results/photos_full_$OFF.json" > /dev/null
  done
done
