"""Discrete-time fine-tuning, before any coding: each model's NELBO_K at the coder's settings, on the
same images and draws (`vdm.nelbo_k_bits`, the coder's statistic: x_hat clipped, the variances latent
coding version 2 pushes, each model on its own grid opt3 and error curve from its grids.json), beside
its continuous-time NELBO (`train.evaluate_nelbo`).

Images: the held-out end of a training file (validation: what the fine-tuning chose its checkpoint
on), or a test set (evaluation only: nothing is chosen on it).

    python bench/studies/2026-12-05-discrete-fine-tuning/nelbo_k.py --models cifar10-vdm-s7 runs/cifar-dt1-float \
        --data ../shared/data/cifar10/test.npz --first 500 --out results/cifar10_test500.json
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from bbcodec.bench import dataset_tiles, environment
from bbcodec.diffusion.vdm import fitted_push_var, nelbo_k_bits
from bbcodec.registry import load_model
from bbcodec.train import evaluate_nelbo, load_images

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", required=True, help="registered names or model folders (with grids.json)")
    ap.add_argument("--data", required=True, help=".npz (x uint8 [N, H, W, C]) or a dataset name (its full 32x32 tiles)")
    ap.add_argument("--first", type=int, default=None, help="the first N images")
    ap.add_argument("--last", type=int, default=None, help="the last N images (a training file's held-out end)")
    ap.add_argument("--steps", type=int, nargs="+", default=[100, 32])
    ap.add_argument("--sampled-steps", type=int, default=20, help="steps per image, stratified (unbiased)")
    ap.add_argument("--grid", default="opt3")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.set_num_threads(1)
    x = load_images(a.data) if a.data.endswith(".npz") else dataset_tiles(a.data)
    x = x[-a.last:] if a.last else x[:a.first] if a.first else x
    out = {"data": a.data, "images": len(x), "slice": {"first": a.first, "last": a.last},
           "sampled_steps": a.sampled_steps, "grid": a.grid, "models": {}, "env": environment()}
    d = x[0].size
    for name in a.models:
        m = load_model(name)
        t0 = time.process_time()
        row = {"sha256": m.sha256, "continuous_bpd": evaluate_nelbo(m.vdm, x, repeats=2)["bpd"]}
        for k in a.steps:
            times = m.time_grid(a.grid, k)
            var = fitted_push_var(m.schedule, times, m.mse_curve)
            v = nelbo_k_bits(m.vdm.net, m.schedule, x, times, sampled_steps=a.sampled_steps, stratified=True,
                             seed=k, push_vars=[var])[0] / d
            row[f"K{k}_bpd"] = float(v.mean())
            row[f"K{k}_se"] = float(v.std(ddof=1) / np.sqrt(len(v)))
        row["cpu_seconds"] = time.process_time() - t0
        out["models"][name] = row
        print(name, row, flush=True)
    path = HERE / a.out
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
