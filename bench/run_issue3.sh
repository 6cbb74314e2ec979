#!/usr/bin/env bash
# Issue 3's learned rows on the first 1000 CIFAR-10 test images at the default settings (K=100, the
# model's grid and latent coding, JPEG XL bootstrap, --parallel 8), one CPU thread: archives of 100
# images (so --resume can continue after the last complete archive) and one file per image. The
# model NELBO_K reference samples 20 of the K steps per tile. About an hour. Needs ../shared/data
# (or BBCODEC_DATA). The committed rows are cifar10-vdm-s5's (MODEL= picks another model).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/bbcodec bench cifar10-test --model "${MODEL:-cifar10-vdm-s5}" --limit "${N:-1000}" --mode archive --mode per-file --chunk 100 \
    --nelbo-steps 20 --threads 1 --quiet --resume --out "bench/results/cifar10_test_vdm_${N:-1000}.json" > /dev/null
