#!/usr/bin/env bash
# Issue 6's --parallel table: file size and seconds against the number of tiles in flight, per file,
# at the default settings (K=100, the model's grid and latent coding, first tiles by JPEG XL), one
# CPU thread. CPU time allows one photo of the set per session; OFFSETS picks which (photos-full is
# sorted by name: 0 mate_Dune 420x263, 6 skimage_chelsea 451x300). --resume skips finished rows.
#   bash bench/parallel_table.sh            # NS="1 2 4 8 16 32 64" OFFSETS="0"
set -euo pipefail
cd "$(dirname "$0")/.."
NS=${NS:-"1 2 4 8 16 32 64"}
OFFSETS=${OFFSETS:-"0"}
mkdir -p bench/results/parallel
for OFF in $OFFSETS; do
  for N in $NS; do
    .venv/bin/bbcodec bench photos-full --offset "$OFF" --limit 1 --mode per-file --parallel "$N" \
      --nelbo-steps 8 --threads 1 --quiet --resume --out "bench/results/parallel/photos_full_$OFF.json" > /dev/null
  done
done
