"""What binning the latents costs, with the network taken out: a 1-D Bit-Swap chain whose denoiser
is exact (x_hat = s(x)), so the continuous chain would cost only the prior KL of z_1.

The chain is the coder's own ChainSpec (grids, pop stds, push stds) for the model's schedule and
time grid; the bin masses are evaluated exactly and the latents drawn as the ANS pops draw them
(a Gaussian sample rounded to the grid). Version 2's push std with M(t) = 0 is the binning-corrected
one; version 1 pushes the schedule's posterior std. Prints, per K and grid_bits, the expected code
length beyond the prior KL, in bits per subpixel and per step.

    .venv/bin/python bench/studies/2026-11-30-binning-toy/toy_bins.py --out bench/studies/2026-11-30-binning-toy/results/toy_bins.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from bbcodec.diffusion.codec import ChainSpec, CodingParams  # noqa: E402
from bbcodec.diffusion.vdm import prior_kl_bits  # noqa: E402
from bbcodec.registry import load_model  # noqa: E402


def log2_bin(n, delta, mean, std):
    """log2 of the mass of N(mean, std^2) on the bin of grid index n (upper tail where more precise)."""
    hi, lo = ((n + 0.5) * delta - mean) / std, ((n - 0.5) * delta - mean) / std
    flip = lo > 0
    a, b = np.where(flip, -hi, lo), np.where(flip, -lo, hi)
    cdf = lambda v: torch.special.ndtr(torch.from_numpy(v)).numpy()  # noqa: E731
    return np.log2(np.maximum(cdf(b) - cdf(a), 1e-300))


def chain_cost(spec: ChainSpec, n_sub: int, rng) -> tuple[float, float]:
    """(expected code length, prior KL) in bits per subpixel, s(x) uniform on [-1, 1]."""
    f = rng.uniform(-1, 1, n_sub)
    d = spec.delta
    draw = lambda mean, std, delta: np.rint((mean + std * rng.standard_normal(n_sub)) / delta)  # noqa: E731
    n = draw(spec.alpha[0] * f, spec.pop_std0, d[0])
    cost = log2_bin(n, d[0], spec.alpha[0] * f, spec.pop_std0)  # bits back from q(z_0 | x)
    for i in range(1, spec.K + 1):
        mean_q = spec.a_q[i] * n * d[i - 1]
        n_new = draw(mean_q, spec.pop_std[i], d[i])
        mean_p = spec.c_z[i] * n_new * d[i] + spec.c_x[i] * f  # the exact denoiser
        cost += log2_bin(n_new, d[i], mean_q, spec.pop_std[i]) - log2_bin(n, d[i - 1], mean_p, spec.push_std[i])
        n = n_new
    cost -= log2_bin(n, d[spec.K], 0.0, 1.0)
    return float(cost.mean()), float(prior_kl_bits(spec.alpha[spec.K], spec.sigma[spec.K], f).mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="cifar10-vdm-s1")
    ap.add_argument("--ks", default="16,64,256")
    ap.add_argument("--subpixels", type=int, default=20000)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    model = load_model(a.model)
    exact = (np.array([0.0, 1.0]), np.zeros(2))
    rows = []
    for k in map(int, a.ks.split(",")):
        for gb in (0, 1):
            for version in (1, 2):
                spec = ChainSpec(model.schedule, CodingParams(steps=k, grid="opt1", grid_bits=gb, latents=version),
                                 model.time_grid("opt1", k), exact)
                cost, prior = chain_cost(spec, a.subpixels, np.random.default_rng(0))
                rows.append({"K": k, "grid_bits": gb, "latents": version, "bits_per_subpixel": cost,
                             "prior_kl": prior, "excess": cost - prior, "excess_per_step": (cost - prior) / k})
                print(json.dumps(rows[-1]), flush=True)
    if a.out:
        Path(a.out).write_text(json.dumps({"model": a.model, "subpixels": a.subpixels, "rows": rows,
                                           "command": f"python {Path(__file__).resolve().relative_to(ROOT)} " + " ".join(sys.argv[1:])},
                                          indent=1) + "\n")


if __name__ == "__main__":
    main()
