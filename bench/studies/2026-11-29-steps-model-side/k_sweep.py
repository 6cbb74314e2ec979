"""NELBO_K against K for the uniform and the ELBO-optimal (opt1) time grid (model side: no coder).

    .venv/bin/python bench/studies/2026-11-29-steps-model-side/k_sweep.py --grid uniform --out bench/studies/2026-11-29-steps-model-side/results/k_sweep_uniform.json
    .venv/bin/python bench/studies/2026-11-29-steps-model-side/k_sweep.py --grid opt1    --out bench/studies/2026-11-29-steps-model-side/results/k_sweep_opt1.json

On the first N CIFAR-10 test images, with `--sampled` of the K steps drawn per image and scaled by
K/m (unbiased; the standard error over images includes that sampling noise). With --stratified,
one step from each of m contiguous runs of the K steps instead (also unbiased, much less noisy).
The same seed per K for every grid, so two grids see the same images and noise draws. Coder-free:
fresh continuous latents (`bbcodec.diffusion.vdm.nelbo_k_bits`).

    .venv/bin/python bench/studies/2026-11-29-steps-model-side/k_sweep.py --grid opt1 --sampled 4 --stratified \
        --ks 512,1000 --out bench/studies/2026-11-29-steps-model-side/results/k_sweep_strat_opt1.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT))

from bbcodec.bench import load_dataset  # noqa: E402
from bbcodec.diffusion.vdm import nelbo_k_bits  # noqa: E402
from bbcodec.registry import load_model  # noqa: E402

KS = (8, 16, 32, 64, 128, 256, 512, 1000)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--grid", default="opt1")
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--sampled", type=int, default=2, help="steps sampled per image (m)")
    ap.add_argument("--stratified", action="store_true", help="one step from each of m runs of steps")
    ap.add_argument("--ks", default=",".join(map(str, KS)), help="comma-separated K values")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = load_model(a.model)
    _, arrays = load_dataset("cifar10-test", a.images)
    x = np.stack(arrays).transpose(0, 3, 1, 2).copy()
    d = x[0].size
    rows = []
    for k in [int(v) for v in a.ks.split(",")]:
        t0 = time.time()
        bits = nelbo_k_bits(model.vdm.net, model.schedule, x, model.time_grid(a.grid, k),
                            sampled_steps=a.sampled, seed=k, stratified=a.stratified)
        per = bits / d
        rows.append({"K": k, "nelbo_k_bpd": float(per.mean()), "se": float(per.std(ddof=1) / np.sqrt(len(per))),
                     "per_image_bpd": [round(float(v), 5) for v in per],
                     "seconds": time.time() - t0})
        print(json.dumps({key: v for key, v in rows[-1].items() if key != "per_image_bpd"}), flush=True)
        res = {"model": model.name, "model_sha256": model.sha256, "grid": a.grid, "images": len(x),
               "sampled_steps_per_image": a.sampled, "stratified": a.stratified, "rows": rows,
               "command": f"python {Path(__file__).resolve().relative_to(ROOT)} " + " ".join(sys.argv[1:])}
        Path(a.out).write_text(json.dumps(res, indent=1) + "\n")  # after every K: a partial run keeps its rows


if __name__ == "__main__":
    main()
