#!/usr/bin/env bash
# The default model on the first 100 CIFAR-10 test images at the default settings, in one archive
# (issue 2's headline figure). --resume keeps the rows of earlier models in the same JSON, so the
# table shows each shipped model. Needs ../shared/data (or BBCODEC_DATA).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/bbcodec bench cifar10-test --threads 1 --quiet --resume --limit 100 --mode archive \
    --out bench/results/cifar10_test_vdm_archive100.json > /dev/null
