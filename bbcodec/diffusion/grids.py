"""ELBO-optimal time grids (Watson et al. 2021), by dynamic programming over a fine grid.

For a step s < t the coder pays (in expectation) the KL
    L(s, t) = 1/2 (SNR(s) - SNR(t)) E||s(x) - x_hat(z_t)||^2,
and x_hat depends on t only, so one curve M(t) = E||s(x) - x_hat(z_t)||^2 (per dimension, estimated
on TRAINING images) gives L for every pair of fine-grid points. The best K-step grid is then
    cost(k, j) = min_i cost(k-1, i) + L(t_i, t_j),  t_0 = 0, t_K = 1.
Grids are computed once per model, saved in the model folder (grids.json) under a versioned name
and frozen: a coded file names its grid, never carries its K floats.
"""
from __future__ import annotations

import numpy as np
import torch

from .schedule import Schedule
from .vdm import pixel_to_model


@torch.no_grad()
def mse_curve(net, sched: Schedule, images: np.ndarray, t: np.ndarray, batch: int = 64, seed: int = 0,
              clip: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """M(t) per dimension and its standard error, from uint8 images [N, C, H, W], at times t.

    x_hat is clipped to [-1, 1] as the coder clips it.
    """
    g = torch.Generator().manual_seed(seed)
    alpha, sigma = sched.alpha_sigma(t)
    gam = sched.gamma(t)
    means, ses = [], []
    for ti in range(len(t)):
        idx = torch.randperm(len(images), generator=g)[:batch].numpy()
        f = pixel_to_model(torch.from_numpy(images[np.sort(idx)]))
        eps = torch.randn(f.shape, generator=g)
        z = float(alpha[ti]) * f + float(sigma[ti]) * eps
        e_hat = net(z, torch.full((f.shape[0],), float(gam[ti])))
        x_hat = (z.double() - float(sigma[ti]) * e_hat.double()) / float(alpha[ti])
        if clip:
            x_hat = x_hat.clamp(-1, 1)
        per = (f.double() - x_hat).square().flatten(1).mean(1).numpy()
        means.append(per.mean())
        ses.append(per.std(ddof=1) / np.sqrt(len(per)))
    return np.array(means), np.array(ses)


def _cost(d_snr, m, fitted: bool):
    """A step's expected KL per dimension (nats): with the posterior's variance (grid opt1, latent
    coding version 1) 1/2 dSNR M(t); with the fitted variance s_p^2 + c_x^2 M(t) (grid opt2, version 2)
    the KL collapses to 1/2 log(1 + dSNR M(t)), because c_x^2 / s_p^2 = SNR_s - SNR_t."""
    return 0.5 * np.log1p(d_snr * m) if fitted else 0.5 * d_snr * m


def step_costs(sched: Schedule, t: np.ndarray, m: np.ndarray, fitted: bool = False) -> np.ndarray:
    """L[i, j] in nats per dimension for fine-grid points i < j (inf elsewhere)."""
    snr = np.exp(-sched.gamma(t))
    with np.errstate(invalid="ignore"):
        L = _cost(snr[:, None] - snr[None, :], m[None, :], fitted)
    L[np.tril_indices(len(t))] = np.inf
    return L


def optimal_grids(sched: Schedule, t: np.ndarray, m: np.ndarray, ks: list[int],
                  fitted: bool = False) -> dict[int, np.ndarray]:
    """Best grid for each K in ks (each a subset of the fine grid t, which must start at 0 and end at 1)."""
    assert t[0] == 0.0 and t[-1] == 1.0
    L = step_costs(sched, t, m, fitted)
    n = len(t)
    kmax = max(ks)
    cost = np.full(n, np.inf)
    cost[0] = 0.0
    back = []
    out = {}
    for k in range(1, kmax + 1):
        tot = cost[:, None] + L          # [i, j]
        arg = np.argmin(tot, axis=0)
        cost = tot[arg, np.arange(n)]
        back.append(arg)
        if k in ks:
            j = n - 1
            path = [j]
            for kk in range(k - 1, -1, -1):
                j = back[kk][j]
                path.append(j)
            path = path[::-1]
            assert path[0] == 0, "fine grid too coarse for this K"
            out[k] = t[np.array(path)]
    return out


def grid_cost(sched: Schedule, t_fine: np.ndarray, m: np.ndarray, grid: np.ndarray, fitted: bool = False) -> float:
    """Expected diffusion cost (nats per dimension) of a grid, M interpolated from the fine curve."""
    mg = np.interp(grid, t_fine, m)
    snr = np.exp(-sched.gamma(grid))
    return float(np.sum(_cost(snr[:-1] - snr[1:], mg[1:], fitted)))


GRID_KS = (8, 16, 25, 32, 50, 64, 100, 128, 200, 256, 400, 500, 512, 1000)


def build_grids(net, sched: Schedule, images: np.ndarray, n_curve: int = 81, batch: int = 64,
                n_fine: int = 2001, ks=GRID_KS, seed: int = 0, source: str = "") -> dict:
    """The content of grids.json: the M(t) curve (with its noise) and grid 'opt1' for every K in ks.

    M is measured at n_curve times and interpolated log-linearly onto n_fine points for the DP.
    """
    tc = np.linspace(0.0, 1.0, n_curve)
    m, se = mse_curve(net, sched, images, tc, batch=batch, seed=seed)
    gj = {
        "version": 1,
        "curve": {"t": tc.tolist(), "mse_per_dim": m.tolist(), "se": se.tolist(), "images": source,
                  "batch_per_time": batch, "seed": seed},
        "grids": {},
    }
    for name in GRID_NAMES:
        add_grid(gj, sched, name, n_fine=n_fine, ks=ks)
    return gj


# grid name -> (fitted variances?, DP on the smoothed curve?)
GRID_NAMES = {"opt1": (False, False), "opt2": (True, False), "opt3": (True, True)}
SMOOTH_DEGREES = range(3, 13)


def smooth_curve(t: np.ndarray, m: np.ndarray, se: np.ndarray) -> tuple[np.ndarray, dict]:
    """A smooth fit of log M(t): the weighted least-squares polynomial in t (weights M / se, the inverse
    standard error of log M) whose degree in 3..12 has the lowest BIC, chi^2 + (degree + 1) log n.

    The DP exploits noise in the measured curve: a point measured low draws steps to it, a point
    measured high drives them away, and on unseen images those steps cost more than predicted
    (grid opt2 coded worse than uniform at K >= 64).  Returns (fitted M at t, a description)."""
    from numpy.polynomial import Polynomial
    y, w = np.log(m), m / se
    best = None
    for deg in SMOOTH_DEGREES:
        p = Polynomial.fit(t, y, deg, w=w)
        chi2 = float(np.sum(np.square((y - p(t)) * w)))
        bic = chi2 + (deg + 1) * np.log(len(t))
        if best is None or bic < best[0]:
            best = (bic, p, chi2 / (len(t) - deg - 1), deg)
    _, p, chi2, deg = best
    return np.exp(p(t)), {"log_polynomial_degree": deg, "chi2_per_dof": chi2}


def add_grid(gj: dict, sched: Schedule, name: str, n_fine: int = 2001, ks=GRID_KS) -> dict:
    """Add grid 'opt1' (best for the posterior's variances), 'opt2' (best for the fitted variances of
    latent coding version 2) or 'opt3' (as opt2, on the smoothed curve) to a grids.json dict, from its
    stored curve alone: M is interpolated log-linearly onto n_fine points for the DP.  Existing grids are
    never changed (they are frozen).  The cost table's entries for opt3 ('opt3_bpd', 'uniform_smooth_bpd')
    are on the smoothed curve."""
    if name in gj["grids"]:
        raise ValueError(f"grid {name!r} exists and is frozen")
    fitted, smooth = GRID_NAMES[name]
    tc, m = np.array(gj["curve"]["t"]), np.array(gj["curve"]["mse_per_dim"])
    if smooth:
        m, gj["curve"]["smooth"] = smooth_curve(tc, m, np.array(gj["curve"]["se"]))
    tf = np.linspace(0.0, 1.0, n_fine)
    mf = np.exp(np.interp(tf, tc, np.log(np.maximum(m, 1e-30))))
    grids = optimal_grids(sched, tf, mf, [k for k in ks if k < n_fine], fitted)
    for k in ks:
        if k >= n_fine:
            grids[k] = np.linspace(0.0, 1.0, k + 1)
    ln2 = np.log(2.0)
    table = gj.setdefault("expected_diffusion_bpd", {})
    suffix = "_smooth" if smooth else "_fitted" if fitted else ""
    for k in ks:
        row = table.setdefault(str(k), {})
        row["uniform" + suffix + "_bpd"] = grid_cost(sched, tf, mf, np.linspace(0, 1, k + 1), fitted) / ln2
        row[name + "_bpd"] = grid_cost(sched, tf, mf, grids[k], fitted) / ln2
    if not smooth:
        gj.setdefault("continuous_diffusion_bpd", grid_cost(sched, tf, mf, tf) / ln2)
    gj["grids"][name] = {str(k): [float(v) for v in grids[k]] for k in ks}
    return gj
