"""The integer network against its float source, side by side in one run: bits and seconds.

For each model (the float source and its integer version), one archive of the first N CIFAR-10 test
images and one file per photo for the smallest photos of photos-full, at the defaults (K=100, the
model's grid and latent coding, parallel 8, one thread, jxl bootstrap): encode, decode, compare every
pixel, and record bytes, bits/dim (whole file and without the initial bits), and encode and decode
seconds per image and per megapixel (after each model's first compress in the process, timed apart:
first_compress_s); expected_bpd is the chains' NELBO plus the bootstrap tiles' classical bits (what the
file should cost without coder overhead). The integer network's CIFAR-10 archive is also decoded in a fresh process under
ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 with numpy's AVX-512 loops off (a machine without
AVX-512), and the float one is offered to that process too (it refuses).

    python bench/integer_network.py --out bench/results/integer_network.json
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bbcodec import api  # noqa: E402
from bbcodec.bench import load_dataset  # noqa: E402
from bbcodec.images import from_array  # noqa: E402
from bbcodec.registry import load_model  # noqa: E402

WARMUP_IMAGES = 8  # each model's first compress in the process, timed apart
OTHER_CPU = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
             "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL"}
_DECODE = r"""
import sys, hashlib, json
from bbcodec import api
from bbcodec.errors import BbcError
from bbcodec.registry import load_model
try:
    out, _ = api.decompress(open(sys.argv[1], "rb").read(), load_model(sys.argv[2]))
except BbcError as e:
    print(json.dumps({"decoded": False, "error": str(e)}))
    sys.exit(0)
h = hashlib.sha256()
for d in out:
    h.update(d.main.tobytes())
print(json.dumps({"decoded": True, "pixels_sha256": h.hexdigest()}))
"""


def pixels_sha256(images) -> str:
    h = hashlib.sha256()
    for d in images:
        h.update(d.main.tobytes())
    return h.hexdigest()


def kernels_in_use() -> str:
    """What does the integer network's per-element work here: numba's fused loops or plain torch."""
    from bbcodec.diffusion import intkernels
    from bbcodec.diffusion.intnet import matmul_backend
    loops = f"numba {intkernels.numba.__version__} fused loops" if intkernels.available() else "torch operations"
    return f"{loops}, {matmul_backend('cpu')} products, torch {torch.__version__}"


def code(model, images, label: str) -> tuple[dict, bytes]:
    params = api.coding_params(model, 100)
    t = time.perf_counter()
    data, rep = api.compress(images, model, params, threads=1)
    enc = time.perf_counter() - t
    t = time.perf_counter()
    out, _ = api.decompress(data, model)
    dec = time.perf_counter() - t
    assert len(out) == len(images) and all(np.array_equal(a.main, b.main) for a, b in zip(images, out)), label
    mp = sum(d.width * d.height for d in images) / 1e6
    return {"what": label, "model": model.name, "images": len(images), "megapixels": round(mp, 6),
            "bytes": rep.bytes, "bpd": rep.bpd, "bpd_without_initial": rep.bpd_without_initial,
            "expected_bpd": rep.expected_bits / rep.subpixels,
            "coder_overhead_pct": 100.0 * (8.0 * rep.bytes / rep.expected_bits - 1.0),
            "model_tiles": rep.model_tiles, "encode_s": enc, "decode_s": dec,
            "encode_s_per_image": enc / len(images), "decode_s_per_image": dec / len(images),
            "encode_s_per_mp": enc / mp, "decode_s_per_mp": dec / mp, "decoded_bit_exact": True}, data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--int-model", default="cifar10-vdm-s7-int")
    ap.add_argument("--cifar", type=int, default=100, help="first N CIFAR-10 test images, one archive")
    ap.add_argument("--photos", type=int, default=3, help="the N smallest photos of photos-full, one file each")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.set_num_threads(1)
    # the code measured is the code at the start (later commits during a long run are not in it)
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    imodel = load_model(a.int_model)
    fmodel = load_model(imodel.card["converted_from"]["sha256"])
    rows, other = [], {}
    names, arrays = load_dataset("cifar10-test", a.cifar)
    cifar = [from_array(x, n) for n, x in zip(names, arrays)]
    # one-time costs apart: each model's first compress in the process (the float network's
    # channels-last trace; the integer network's tables, and its fused loops loaded from numba's
    # cache or compiled on a first run) is timed on its own, so the rows below are steady-state
    first = {}
    for model in (fmodel, imodel):  # enough images that the network codes some tiles (not all bootstrap)
        t = time.perf_counter()
        _, rep = api.compress(cifar[:WARMUP_IMAGES], model, api.coding_params(model, 100), threads=1)
        assert rep.model_tiles > 0
        first[model.name] = {"images": WARMUP_IMAGES, "model_tiles": rep.model_tiles,
                             "seconds": round(time.perf_counter() - t, 3)}
    with tempfile.TemporaryDirectory() as tmp:
        for model in (fmodel, imodel):
            row, data = code(model, cifar, f"cifar10-test[:{a.cifar}] archive")
            rows.append(row)
            f = Path(tmp) / f"{model.name}.bbc"
            f.write_bytes(data)
            r = subprocess.run([sys.executable, "-c", _DECODE, str(f), model.name], capture_output=True, text=True,
                               env=dict(os.environ, **OTHER_CPU), cwd=ROOT)
            res = json.loads(r.stdout.strip().splitlines()[-1])
            if res.get("decoded"):
                res["bit_exact"] = res.pop("pixels_sha256") == pixels_sha256(cifar)
            other[model.name] = res
            print(json.dumps(row), json.dumps(res), flush=True)
    names, arrays = load_dataset("photos-full")
    sizes = sorted(range(len(names)), key=lambda i: arrays[i].shape[0] * arrays[i].shape[1])[:a.photos]
    for i in sorted(sizes):
        img = [from_array(arrays[i], names[i])]
        for model in (fmodel, imodel):
            row, _ = code(model, img, names[i])
            rows.append(row)
            print(json.dumps(row), flush=True)
    out = {"what": "the integer network against its float source, same images, same run",
           "command": "python bench/integer_network.py --out " + a.out, "revision": rev,
           "settings": "K=100, model defaults (grid, latent coding), parallel 8, 1 thread, jxl bootstrap",
           "integer_kernels": kernels_in_use(),
           "first_compress": first,  # the first images of the archive, one-time costs included (not in the rows)
           "other_cpu_settings": OTHER_CPU, "decoded_under_other_cpu": other, "rows": rows}
    Path(a.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
