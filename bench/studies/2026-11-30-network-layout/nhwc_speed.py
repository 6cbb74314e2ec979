"""The network's layout against coding speed: the plain module against the channels-last graph that
CPU encoders use (header coding.nhwc; see diffusion.codec.EpsFn), on the same image, same settings,
one after the other, each file decoded and compared. Writes results/nhwc_speed.json beside this script.

    .venv/bin/python bench/studies/2026-11-30-network-layout/nhwc_speed.py [--dataset photos-full] [--offset 0] [--parallel 8] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from bbcodec import api
from bbcodec.bench import _image_data, load_dataset
from bbcodec.cli import DEFAULT_GRID_BITS, DEFAULT_STEPS
from bbcodec.registry import load_model

HERE = Path(__file__).resolve().parent


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="photos-full")
    ap.add_argument("--offset", type=int, default=0)
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--note", default="", help="conditions, e.g. what else ran on the machine")
    ap.add_argument("--out", default=str(HERE / "results" / "nhwc_speed.json"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = load_model()
    params = api.coding_params(model, DEFAULT_STEPS, None, DEFAULT_GRID_BITS, None)
    names, arrays = load_dataset(a.dataset, 1, a.offset)
    img = _image_data(names[0], arrays[0])
    px = img.width * img.height
    rows = []
    for nhwc in (False, True):
        api.NHWC_ON_CPU = nhwc
        t = time.perf_counter()
        data, rep = api.compress([img], model, params, parallel=a.parallel, bootstrap="auto")
        enc = time.perf_counter() - t
        t = time.perf_counter()
        out, _ = api.decompress(data, model)
        dec = time.perf_counter() - t
        same = bool(np.array_equal(out[0].main, img.main))
        rows.append({"network": "channels-last graph (nhwc)" if nhwc else "plain module", "bytes": len(data),
                     "bpd": 8 * len(data) / img.subpixels, "bit_exact": same, "encode_s": enc, "decode_s": dec,
                     "encode_s_per_megapixel": enc / px * 1e6, "decode_s_per_megapixel": dec / px * 1e6,
                     "encodes": rep.encodes})
        print(json.dumps(rows[-1]), flush=True)
    res = {"command": f"python {Path(__file__).resolve().relative_to(HERE.parents[2])} --dataset {a.dataset} --offset {a.offset} --parallel {a.parallel} "
                      f"--threads {a.threads}", "note": a.note, "image": names[0], "pixels": px, "model": model.name,
           "steps": params.steps, "grid": params.grid, "latents": params.latents, "parallel": a.parallel,
           "threads": a.threads, "torch": torch.__version__, "cpus": os.cpu_count(), "rows": rows,
           "speedup": {k: rows[0][k] / rows[1][k] for k in ("encode_s", "decode_s")}}
    Path(a.out).write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
