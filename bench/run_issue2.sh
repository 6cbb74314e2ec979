#!/usr/bin/env bash
# Issue 2 figures: the shipped model on the first 100 CIFAR-10 test images at the default settings,
# archive mode (one .bbc) and per-file mode (first 20 images, one .bbc each), run side by side.
# Needs ../shared/data (or BBCODEC_DATA). Writes bench/results/cifar10_test_vdm_*.json and .md.
set -euo pipefail
cd "$(dirname "$0")/.."
B=".venv/bin/bbcodec bench cifar10-test --threads 1 --quiet"
$B --limit 100 --mode archive --out bench/results/cifar10_test_vdm_archive100.json &
$B --limit 20 --mode per-file --out bench/results/cifar10_test_vdm_perfile20.json &
wait
