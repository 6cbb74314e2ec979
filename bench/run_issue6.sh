#!/usr/bin/env bash
# Issue 6 figures on one CPU thread: per-file CIFAR-10 with the JPEG XL bootstrap (first 100 test
# images), per-file full-size photos at the default settings with --parallel 8 (the photos named
# below: CPU time), and the network-versus-coder profile. Needs ../shared/data or BBCODEC_DATA
# (photos-full is rebuilt from Debian/PyPI packages when ../shared is absent).
set -euo pipefail
cd "$(dirname "$0")/.."
B=".venv/bin/bbcodec bench --threads 1 --quiet --resume"
$B cifar10-test --limit 100 --mode per-file --out bench/results/cifar10_test_vdm_perfile100_boot.json > /dev/null
# photos-full is sorted by name: 0 mate_Dune (420x263), 6 skimage_chelsea (451x300)
for OFF in 0 6; do
  $B photos-full --offset $OFF --limit 1 --mode per-file --parallel 8 --nelbo-steps 20 \
     --out bench/results/photos_full_vdm_$OFF.json > /dev/null
done
.venv/bin/python bench/profile.py --images 4 --parallel 1
