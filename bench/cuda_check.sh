#!/usr/bin/env bash
# The CUDA round trip and throughput on any GPU machine, in under 10 minutes.
#   bash bench/cuda_check.sh            (PY=python-with-CUDA-torch to choose the interpreter)
# Needs a CUDA build of torch and this project's dependencies importable. Runs the CUDA tests,
# then encodes and decodes 256 CIFAR-sized images (the bundled samples, flipped and rolled into
# distinct images) with --device cuda at the default K, for several --parallel (and checks that the
# default integer network's files cross devices: CUDA -> CPU and CPU -> CUDA), and writes
# bench/results/cuda_check_pP.json and .md (or under $OUT when set, for a remote machine). Suite entry:
# python bench/suite.py run cuda-check.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
DEST=${OUT:-bench/results}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
$PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.__version__, torch.cuda.get_device_name(0))"
$PY -m pytest -q -p no:cacheprovider tests/test_cuda.py
TMP=$(mktemp -d)
$PY - "$TMP/set.npz" <<'PY'
import sys, numpy as np
from pathlib import Path
from PIL import Image
base = [np.asarray(Image.open(f).convert("RGB")) for f in sorted(Path("bbcodec/samples").glob("*.png"))]
out = [np.roll(b[:, ::-1] if k & 1 else b, (k // 2) % 32, axis=(k // 64) % 2) for k in range(32) for b in base]
np.savez(sys.argv[1], x=np.stack(out[:256]))
PY
# the integer network's files cross devices: encoded on CUDA, decoded on the CPU, and the reverse
$PY -m bbcodec.cli compress bbcodec/samples -o "$TMP/gpu.bbc" --device cuda --quiet
$PY -m bbcodec.cli decompress "$TMP/gpu.bbc" -o "$TMP/from_gpu" --device cpu --quiet
$PY -m bbcodec.cli compress bbcodec/samples -o "$TMP/cpu.bbc" --device cpu --quiet
$PY -m bbcodec.cli decompress "$TMP/cpu.bbc" -o "$TMP/from_cpu" --device cuda --quiet
$PY - "$TMP" <<'PY'
import sys, numpy as np
from pathlib import Path
from PIL import Image
tmp = Path(sys.argv[1])
for f in sorted(Path("bbcodec/samples").glob("*.png")):
    a = np.asarray(Image.open(f))
    for d in ("from_gpu", "from_cpu"):
        assert np.array_equal(a, np.asarray(Image.open(tmp / d / (f.stem + ".png")))), (d, f.name)
print("integer network: CUDA -> CPU and CPU -> CUDA decodes bit-exact")
PY
for P in 1 16 256; do
  $PY -m bbcodec.cli bench "$TMP/set.npz" --device cuda --parallel $P --mode archive --quiet \
      --nelbo-steps 10 --out "$DEST/cuda_check_p$P.json"
done
rm -rf "$TMP"
