"""Which grid codes best, measured exactly on test images instead of predicted from the curve.

For every step of every grid, the expected KL of latent coding version 2's reverse step (the coder's
own push variance, s_p^2 + c_x^2 M(t) from the frozen training curve) is computed in closed form from
the network's measured error on N test images at that step's time:
    1/2 [c_x^2 M_test(t) / v + v0 / v - 1 - log(v0 / v)],   v0 = s_p^2,
and summed over steps (bits/dim, the diffusion term only: the recon and prior terms do not depend on
the grid).  Beside it: the same with the variance that would be best for these images (M_test in
place of the curve), the dynamic program's prediction (training curve), and version 1's cost.
All grids share the images; each time point draws its own noise.

    .venv/bin/python bench/studies/2026-11-30-grid-check/grid_check.py --model cifar10-vdm-s3 --steps 100 --images 32
writes results/MODEL_KK_nN.json beside this script.
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

from bbcodec.bench import NAMED  # noqa: E402
from bbcodec.diffusion.grids import mse_curve  # noqa: E402
from bbcodec.diffusion.vdm import LN2, fitted_push_var, reverse_coefficients  # noqa: E402
from bbcodec.registry import load_model  # noqa: E402
from bbcodec.train import load_images  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--grids", default="uniform,opt1,opt2,opt3")
    ap.add_argument("--data", default=None, help="test .npz (default: CIFAR-10 test from ../shared)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    m = load_model(a.model)
    data = str(a.data or NAMED["cifar10-test"]())
    x = load_images(data)[:a.images]
    sched, K = m.schedule, a.steps
    tc, mc = m.mse_curve
    tf = np.linspace(0, 1, 2001)
    mf = np.exp(np.interp(tf, tc, np.log(np.maximum(mc, 1e-30))))  # the DP's view of the curve
    grids = {g: np.asarray(m.time_grid(g, K), dtype=np.float64) for g in a.grids.split(",")}
    times = np.unique(np.concatenate([g[1:] for g in grids.values()]))
    t0 = time.time()
    m_test, _ = mse_curve(m.vdm.net, sched, x, times, batch=len(x), seed=a.seed)
    m_at = dict(zip(times.tolist(), m_test.tolist()))
    out = {"model": m.name, "steps": K, "images": len(x), "data": Path(data).name, "seed": a.seed,
           "network_seconds": time.time() - t0, "grids": {}}
    print(f"{m.name} K={K}, first {len(x)} images of {Path(data).name}; diffusion term, bits/dim")
    print(f"{'grid':8s} {'coded v2':>9s} {'best var':>9s} {'DP pred':>9s} {'v1':>9s}")
    for g, tg in grids.items():
        _, c_x, s_p = reverse_coefficients(sched, tg[:-1], tg[1:])
        v0, mt = s_p ** 2, np.array([m_at[t] for t in tg[1:]])

        def kl(v):
            return 0.5 * (c_x ** 2 * mt / v + v0 / v - 1 - np.log(v0 / v)) / LN2
        snr = np.exp(-sched.gamma(tg))
        row = {"coded_v2": kl(fitted_push_var(sched, tg, m.mse_curve)), "best_variance": kl(v0 + c_x ** 2 * mt),
               "dp_predicted": 0.5 * np.log1p((snr[:-1] - snr[1:]) * np.interp(tg[1:], tf, mf)) / LN2,
               "v1": 0.5 * c_x ** 2 * mt / v0 / LN2}
        out["grids"][g] = {"t": tg.tolist(), "m_test": mt.tolist(),
                           **{k: float(v.sum()) for k, v in row.items()},
                           "per_step": {k: v.tolist() for k, v in row.items()}}
        print(f"{g:8s} " + " ".join(f"{float(v.sum()):9.4f}" for v in row.values()))
    dest = HERE / "results" / f"{m.name}_K{K}_n{len(x)}.json"
    dest.write_text(json.dumps(out) + "\n")
    print(f"wrote {dest.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
