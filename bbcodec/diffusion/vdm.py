"""VDM probability math (Kingma et al. 2021), kept apart from the network.

Every function takes the network (an eps-predictor `net(z, gamma) -> eps_hat`) as an
argument or works on its outputs. Pixels k in {0..255} live in model space as
s(k) = 2 (k + 0.5) / 256 - 1.  Units are stated per function: nats or bits, per image or per
dimension.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from . import exact
from .schedule import Schedule

LN2 = math.log(2.0)
NUM_VALUES = 256


def pixel_to_model(x: torch.Tensor) -> torch.Tensor:
    """uint8 (or integer-valued) pixels -> s(x) in (-1, 1)."""
    return 2.0 * (x.to(torch.float32) + 0.5) / NUM_VALUES - 1.0


def pixel_to_model_np(x: np.ndarray) -> np.ndarray:
    return 2.0 * (x.astype(np.float64) + 0.5) / NUM_VALUES - 1.0


def recon_logits(z0: torch.Tensor, alpha0: torch.Tensor, sigma0: torch.Tensor) -> torch.Tensor:
    """Logits of p(x | z_0): a categorical over the 256 values per subpixel.  # [..., 256]

    logit_k = -(z_0/alpha_0 - s(k))^2 / (2 sigma_0^2 / alpha_0^2)
    """
    levels = pixel_to_model(torch.arange(NUM_VALUES, device=z0.device))
    diff = (z0 / alpha0).unsqueeze(-1) - levels
    return -0.5 * diff.square() / (sigma0 / alpha0).square()


def recon_probs_np(z0: np.ndarray, alpha0: float, sigma0: float, exact_math: bool = False) -> np.ndarray:
    """float64 probabilities of p(x | z_0) for the coder.  z0: [N] -> [N, 256].  exact_math: the same
    bits on every machine (`exact`, format version 3); else numpy's exp and sum (versions 1-2)."""
    levels = pixel_to_model_np(np.arange(NUM_VALUES))
    logits = -0.5 * np.square(z0[:, None] / alpha0 - levels[None, :]) / (sigma0 / alpha0) ** 2
    logits -= logits.max(axis=1, keepdims=True)
    if exact_math:
        p = exact.exp(logits)
        return p / exact.row_sum(p)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class CodingSteps:
    """The K reverse steps of one coding setting, as the discrete-time loss `vdm_loss(coding=...)`
    trains for them: times t_0 = 0 < ... < t_K = 1 (float64 [K+1]) and, per step i = 1..K
    (arrays [K]), c_x, the posterior's variance var_q = s_p^2 and the variance var_p that the reverse
    model p(z_{t_{i-1}} | z_{t_i}) has (latent coding version 2: `fitted_push_var`; version 1: var_q).
    Built by `coding_steps` from the frozen schedule; the schedule is not trained along with them."""
    steps: int
    grid: str
    times: np.ndarray
    c_x: np.ndarray
    var_q: np.ndarray
    var_p: np.ndarray

    def to_json(self) -> dict:
        return {"steps": self.steps, "grid": self.grid,
                **{k: [float(v) for v in getattr(self, k)] for k in ("times", "c_x", "var_q", "var_p")}}

    @classmethod
    def from_json(cls, d: dict) -> "CodingSteps":
        return cls(d["steps"], d["grid"], *(np.array(d[k], dtype=np.float64) for k in ("times", "c_x", "var_q", "var_p")))


def coding_steps(sched: Schedule, times: np.ndarray, grid: str, mse_curve: tuple | None = None) -> CodingSteps:
    """The steps a coder pays on grid `times`: with mse_curve (the model's error curve, grids.json),
    the variances latent coding version 2 pushes (`fitted_push_var`: the effective variance of its bin
    masses, before the coder takes the binning's delta^2/12 back out of the Gaussian); without, version 1's."""
    times = np.asarray(times, dtype=np.float64)
    _, c_x, s_p = reverse_coefficients(sched, times[:-1], times[1:])
    var_p = s_p ** 2 if mse_curve is None else fitted_push_var(sched, times, mse_curve)
    return CodingSteps(len(times) - 1, grid, times, c_x, s_p ** 2, var_p)


def coding_step_rows(coding: list[CodingSteps], u: torch.Tensor) -> dict[str, torch.Tensor]:
    """Which setting and step each image of a batch pays for: image b at setting b mod len(coding), at
    step 1 + floor(u_b K). With u stratified over a batch of n len(coding) images, each setting's steps
    are stratified too. float64 [B] rows: the step's time t, c_x, var_q, var_p, K, and the setting."""
    b = len(u)
    which = torch.arange(b) % len(coding)
    rows = {k: torch.empty(b, dtype=torch.float64) for k in ("t", "c_x", "var_q", "var_p", "K")}
    uu = u.detach().cpu().double()
    for j, cs in enumerate(coding):
        sel = which == j
        i = torch.clamp((uu[sel] * cs.steps).long(), max=cs.steps - 1)  # step i + 1
        rows["t"][sel] = torch.from_numpy(cs.times[1:])[i]
        for k in ("c_x", "var_q", "var_p"):
            rows[k][sel] = torch.from_numpy(getattr(cs, k))[i]
        rows["K"][sel] = float(cs.steps)
    rows["setting"] = which
    return rows


def _coded_diffusion(net, gamma_fn, f: torch.Tensor, coding: list[CodingSteps], u: torch.Tensor) -> torch.Tensor:
    """K KL(q(z_s | z_t, x) || p(z_s | z_t)) in nats per image, at the step `coding_step_rows` gives each
    image: an unbiased estimate of its setting's diffusion term. x_hat is clipped to [-1, 1] as the coder
    clips it; the variance terms of the KL are computed in float64."""
    b = f.shape[0]
    dev = f.device
    rows = coding_step_rows(coding, u)
    g_t = gamma_fn(rows["t"].float().to(dev))
    a_t = torch.sqrt(torch.sigmoid(-g_t)).view(b, 1, 1, 1)
    s_t = torch.sqrt(torch.sigmoid(g_t)).view(b, 1, 1, 1)
    eps = torch.randn_like(f)
    z_t = a_t * f + s_t * eps
    x_hat = torch.clamp((z_t - s_t * net(z_t, g_t)) / a_t, -1.0, 1.0)
    err = (f - x_hat).square().flatten(1).sum(1)
    r = rows["var_q"] / rows["var_p"]
    const = (0.5 * f[0].numel() * (r - 1.0 - torch.log(r)) * rows["K"]).float().to(dev)
    scale = (0.5 * rows["c_x"].square() / rows["var_p"] * rows["K"]).float().to(dev)
    return scale * err + const


def vdm_loss(net, gamma_fn, x: torch.Tensor, t: torch.Tensor | None = None,
             discrete_steps: int = 0, recon_subset: int = 0,
             coding: list[CodingSteps] | None = None) -> dict[str, torch.Tensor]:
    """The three VDM loss terms, each in bits per dimension, per image.  x: uint8 [B, C, H, W].

    Continuous time (discrete_steps == 0): diffusion = 1/2 gamma'(t) ||eps - eps_hat||^2.
    K discrete steps: diffusion = 1/2 K expm1(gamma_t - gamma_s) ||eps - eps_hat||^2, s = t - 1/K,
    the same per-step KLs the coder pays.  t is antithetic over the batch when not given.
    gamma_fn must be linear in t (its slope is taken from the endpoints).
    coding (settings of the coder, `coding_steps`): diffusion is what the coder pays at those steps and
    variances, each image at one of the settings in turn (`_coded_diffusion`); the batch's mean is then
    the settings' mean NELBO_K. t is ignored.
    recon_subset > 0 estimates the (tiny, costly: 256 logits per subpixel) reconstruction term
    on the first images only; the returned per-image recon is then that subset's mean, broadcast.
    """
    if coding and discrete_steps:
        raise ValueError("vdm_loss: coding settings have their own steps; discrete_steps must be 0 with them")
    b = x.shape[0]
    d = x[0].numel()
    f = pixel_to_model(x)
    if t is None:
        u = torch.rand((), device=x.device)
        t = torch.remainder(u + torch.arange(b, device=x.device) / b, 1.0)
    if discrete_steps:
        t = torch.ceil(t * discrete_steps) / discrete_steps
        t = torch.clamp(t, min=1.0 / discrete_steps)

    g0 = gamma_fn(torch.zeros((), device=x.device))
    g1 = gamma_fn(torch.ones((), device=x.device))
    # Reconstruction: E_q(z0|x)[-log p(x|z0)], one sample.
    a0, s0 = torch.sqrt(torch.sigmoid(-g0)), torch.sqrt(torch.sigmoid(g0))
    xr, fr = (x[:recon_subset], f[:recon_subset]) if recon_subset else (x, f)
    z0 = a0 * fr + s0 * torch.randn_like(fr)
    logp = F.log_softmax(recon_logits(z0, a0, s0), dim=-1)
    recon = -torch.gather(logp, -1, xr.long().unsqueeze(-1)).squeeze(-1).flatten(1).sum(1)
    if recon_subset:
        recon = recon.mean().expand(b)
    # Prior: KL(q(z1|x) || N(0, I)).
    a1sq, s1sq = torch.sigmoid(-g1), torch.sigmoid(g1)
    prior = 0.5 * (s1sq + a1sq * f.square() - torch.log(s1sq) - 1.0).flatten(1).sum(1)
    scale = 1.0 / (d * LN2)
    if coding:
        return {"recon": recon * scale, "prior": prior * scale,
                "diffusion": _coded_diffusion(net, gamma_fn, f, coding, t) * scale}
    # Diffusion term.
    g_t = gamma_fn(t)
    a_t = torch.sqrt(torch.sigmoid(-g_t)).view(b, 1, 1, 1)
    s_t = torch.sqrt(torch.sigmoid(g_t)).view(b, 1, 1, 1)
    eps = torch.randn_like(f)
    z_t = a_t * f + s_t * eps
    eps_hat = net(z_t, g_t)
    mse = (eps - eps_hat).square().flatten(1).sum(1)
    if discrete_steps:
        g_s = gamma_fn(t - 1.0 / discrete_steps)
        diffusion = 0.5 * discrete_steps * torch.expm1(g_t - g_s) * mse
    else:
        diffusion = 0.5 * (g1 - g0) * mse
    return {"recon": recon * scale, "prior": prior * scale, "diffusion": diffusion * scale}


# ---- float64 coefficients for the coder -------------------------------------------------

def reverse_coefficients(sched: Schedule, s: np.ndarray, t: np.ndarray):
    """p(z_s | z_t) = N(c_z z_t + c_x x_hat, std^2) for s < t (arrays over steps).

    c_z = alpha_{t|s} sigma_s^2 / sigma_t^2, c_x = alpha_s sigma_{t|s}^2 / sigma_t^2,
    std^2 = sigma_{t|s}^2 sigma_s^2 / sigma_t^2.
    """
    a_s, s_s = sched.alpha_sigma(s)
    _, s_t = sched.alpha_sigma(t)
    a_ts, s_ts = sched.transition(s, t)
    c_z = a_ts * s_s**2 / s_t**2
    c_x = a_s * s_ts**2 / s_t**2
    std = s_ts * s_s / s_t
    return c_z, c_x, std


def fitted_push_var(sched: Schedule, times: np.ndarray, mse_curve: tuple) -> np.ndarray:
    """Reverse variances that minimise the expected KL of each step for a network whose error is
    M(t) = E (s(x) - x_hat(z_t))^2 per dimension (Bao et al. 2022): s_p^2 + c_x^2 M(t).  float [K]
    (The coder's version 2 pushes this less delta^2/12, the binning's own widening: diffusion/codec.py.)"""
    _, c_x, s_p = reverse_coefficients(sched, times[:-1], times[1:])
    interp = exact.interp if sched.exact else np.interp
    return s_p ** 2 + c_x ** 2 * interp(times[1:], mse_curve[0], mse_curve[1])


def step_kl_bits(snr_s: float, snr_t: float, f: np.ndarray, x_hat: np.ndarray) -> np.ndarray:
    """KL(q(z_s|z_t,x) || p(z_s|z_t)) in bits per dimension (elementwise):
    1/2 (SNR_s - SNR_t) (s(x) - x_hat)^2, with SNR = exp(-gamma)."""
    return 0.5 * (snr_s - snr_t) * np.square(f - x_hat) / LN2


def gaussian_kl_bits(mean_diff_sq, var_q, var_p) -> np.ndarray:
    """KL(N(m_q, var_q) || N(m_p, var_p)) in bits (elementwise), given (m_q - m_p)^2:
    1/2 (log(var_p / var_q) + (var_q + (m_q - m_p)^2) / var_p - 1) / ln 2."""
    r = np.asarray(var_q, dtype=np.float64) / var_p
    return 0.5 * (mean_diff_sq / var_p + r - 1.0 - np.log(r)) / LN2


def step_kl_var_bits(c_x, var_q, var_p, f: np.ndarray, x_hat: np.ndarray) -> np.ndarray:
    """KL(q(z_s|z_t,x) || N(mean_p, var_p)) in bits per dimension (elementwise), for a reverse step
    pushed with mean_p = c_z z_t + c_x x_hat and a variance var_p of its own (e.g. `fitted_push_var`);
    q has the posterior variance var_q = s_p^2 and mean_q - mean_p = c_x (s(x) - x_hat).  Both the mean
    term and the variance terms count.  With var_p = var_q it is `step_kl_bits`, since
    c_x^2 / s_p^2 = SNR_s - SNR_t."""
    return gaussian_kl_bits(np.square(c_x) * np.square(f - x_hat), var_q, var_p)


def prior_kl_bits(alpha1: float, sigma1: float, f: np.ndarray) -> np.ndarray:
    """KL(q(z_1|x) || N(0, 1)) in bits per dimension (elementwise)."""
    return 0.5 * (sigma1**2 + alpha1**2 * np.square(f) - np.log(sigma1**2) - 1.0) / LN2


@torch.no_grad()
def nelbo_k_bits(net, sched: Schedule, x: np.ndarray, times: np.ndarray, sampled_steps: int | None = None,
                 seed: int = 0, batch: int = 50, mask: np.ndarray | None = None,
                 pad: np.ndarray | None = None, stratified: bool = False,
                 push_vars: list | None = None) -> np.ndarray:
    """The model's discrete-time NELBO_K in bits per image, independent of any coder.  x: uint8 [B, C, H, W].

    recon (one z_0 sample) + KL(q(z_1|x) || N(0, I)) + sum_i 1/2 (SNR_{i-1} - SNR_i) ||s(x) - x_hat(z_{t_i})||^2
    with fresh continuous z_{t_i} ~ q(z_{t_i}|x) and x_hat clipped to [-1, 1] as the coder clips it.
    With sampled_steps = m < K, each image uses m of the K steps drawn without replacement, scaled
    by K/m: an unbiased estimate at m/K of the network cost.  With stratified, steps 1..K are split
    into m contiguous runs of near-equal length and one step is drawn from each, weighted by its
    run's length: also unbiased, and far less noisy, because a step's cost varies mostly with t.
    With push_vars (a list whose entries are None, the posterior's variances, or float [K], step i's
    reverse variance, e.g. `fitted_push_var` of latent coding version 2), the result is [len, B]: one
    NELBO_K per reverse model, all from the same draws and network evaluations.
    With mask (bool, x's shape), only the True subpixels count; the others are held at the
    fixed noise sigma_t * pad (pad: float [C, H, W]), as the coder holds uncoded subpixels.
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    K = len(times) - 1
    m = K if sampled_steps is None else min(K, sampled_steps)
    f = pixel_to_model_np(x)
    B = len(x)
    a, s = sched.alpha_sigma(times)
    g = sched.gamma(times)
    snr = np.exp(-g)
    w = np.ones(f.shape) if mask is None else mask.astype(np.float64)
    variances = [None] if push_vars is None else list(push_vars)
    total = np.zeros((len(variances), B))
    # recon + prior
    z0 = a[0] * f + s[0] * rng.standard_normal(f.shape)
    for lo in range(0, B, 8):  # 256 probabilities per subpixel: a few images at a time
        p0 = recon_probs_np(z0[lo:lo + 8].reshape(-1), a[0], s[0])
        xs = x[lo:lo + 8].reshape(-1)
        nll = -np.log2(np.maximum(p0[np.arange(len(xs)), xs], 1e-300)).reshape(-1, f[0].size)
        total[:, lo:lo + 8] += (nll * w[lo:lo + 8].reshape(nll.shape)).sum(1)
    total += (prior_kl_bits(a[K], s[K], f) * w).reshape(B, -1).sum(1)
    if stratified:
        runs = np.array_split(np.arange(1, K + 1), m)
        steps = np.stack([[rng.choice(r) for r in runs] for _ in range(B)])  # [B, m]
        weight = np.array([len(r) for r in runs], dtype=np.float64)
    else:
        steps = np.stack([rng.choice(np.arange(1, K + 1), size=m, replace=False) for _ in range(B)])  # [B, m]
        weight = np.full(m, K / m)
    _, c_x, s_p = reverse_coefficients(sched, times[:-1], times[1:])
    c_x, v0 = (np.concatenate([[np.nan], arr]) for arr in (c_x, s_p ** 2))  # index = step
    for j in range(m):
        for lo in range(0, B, batch):
            idx = np.arange(lo, min(B, lo + batch))
            st = steps[idx, j]
            eps = rng.standard_normal(f[idx].shape)
            al, si = a[st][:, None, None, None], s[st][:, None, None, None]
            z = al * f[idx] + si * eps
            if mask is not None:
                z = np.where(mask[idx], z, si * pad)
            e_hat = net(torch.from_numpy(z.astype(np.float32)), torch.from_numpy(g[st].astype(np.float32)))
            x_hat = np.clip((z - si * e_hat.double().numpy()) / al, -1.0, 1.0)
            for row, var in enumerate(variances):
                if var is None:
                    kl = step_kl_bits(snr[st - 1][:, None, None, None], snr[st][:, None, None, None], f[idx], x_hat)
                else:  # KL(N(mu_q, v0) || N(mu_p, v)) with mu_q - mu_p = c_x (s(x) - x_hat): the coder's statistic
                    v = np.concatenate([[np.nan], var])
                    cx, vq, vv = (arr[st][:, None, None, None] for arr in (c_x, v0, v))
                    kl = step_kl_var_bits(cx, vq, vv, f[idx], x_hat)
                total[row, idx] += (kl * w[idx]).reshape(len(idx), -1).sum(1) * weight[j]
    return total[0] if push_vars is None else total
