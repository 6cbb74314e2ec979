"""The VDM prior as a Bit-Swap codec over K diffusion steps, for batches of tiles in flight (or,
for comparison only, the same steps in BB-ANS order: `CodingParams.order`, `bitsback.CHAINS`).

Latents live on static grids, one per time index, derived from the schedule and the coding
parameters alone (never from data), so the decoder rebuilds them from the model and the header:

    delta_i = 2^-grid_bits * min(the schedule's std of every distribution coded on grid i)

(the schedule's: q's step std and the posterior std s_p, before the pop stds are shrunk for binning
or the push stds of latent coding version 2 are fitted; see `ChainSpec`)

A latent is coded as its integer grid index n (z = n * delta_i), relative to the rounded mean of
the distribution it is coded with, over a symbol range that provably covers every value the
coder can produce (see `ChainSpec`), so no escape is ever needed.

Subpixels outside the image (padding of edge tiles, colour channels a gray image lacks) are not
coded: their latents are fixed to sigma_t * eps_pad (eps_pad a fixed pseudo-random field), known to
both sides, and only feed the network as context.
"""
from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, replace

import numpy as np
import torch

from ..bitsback import CHAINS
from ..codecs import Codec, categorical, grid_gaussian
from .schedule import Schedule
from .vdm import (fitted_push_var, pixel_to_model_np, prior_kl_bits, recon_probs_np, reverse_coefficients,
                  step_kl_bits, step_kl_var_bits)

from ..format.constants import Q_RADIUS_STDS, pad_noise
from ..format.container import VERSION

EXACT_MATH_VERSION = 3  # the first format version whose coefficients and bin masses use `exact`


def time_grid(name: str, steps: int) -> np.ndarray:
    """Times 0 = t_0 < ... < t_K = 1 for a named grid (float64 [K+1])."""
    if name == "uniform":
        return np.linspace(0.0, 1.0, steps + 1)
    raise ValueError(f"unknown time grid {name!r}")


LATENT_VERSIONS = (1, 2)


@dataclass(frozen=True)
class CodingParams:
    """steps K, time grid name, bins of 2^-grid_bits step std, and the latent coding version:
    1 pushes p(z_s | z_t) with the schedule's reverse std; 2 with the model's expected-cost-optimal
    variance, corrected for binning (see ChainSpec.push_std). order: the chain's composition,
    "bitswap" (the product) or "bbans" (every latent popped first: comparison only; `bitsback`)."""
    steps: int = 100
    grid: str = "uniform"
    grid_bits: int = 0
    latents: int = 1
    format_version: int = VERSION  # the .bbc version coded for (its pad noise: `format.constants`)
    order: str = "bitswap"


class ChainSpec:
    """Per-step coefficients, grids and symbol ranges, all float64 from (schedule, params).

    Index conventions: grid i belongs to time t_i (i = 0..K); step i (1..K) pops z_{t_i} with
    q(z_{t_i} | z_{t_{i-1}}) and pushes z_{t_{i-1}} with p(z_{t_{i-1}} | z_{t_i}).

    Range bound for the p pushes.  Let e_i = z_{t_i} - alpha_{t_i} s(x) (the accumulated noise).
    Each q pop lands within (rq_i + 1/2) delta_i of its mean, so
        |e_0| <= E_0 = (rq_0 + 1/2) delta_0,   |e_i| <= E_i = alpha_{t_i|t_{i-1}} E_{i-1} + (rq_i + 1/2) delta_i.
    With c_z alpha_t + c_x = alpha_s, the p residual is
        z_s - mean_p = c_x (s(x) - x_hat) + (sigma_{t|s}^2/sigma_t^2) e_s - c_z (z_t - alpha_{t|s} z_s),
    and |s(x) - x_hat| <= 2 because x_hat is clipped to [-1, 1]; so it is bounded by
        B_i = 2 c_x + (sigma_{t|s}^2/sigma_t^2) E_{i-1} + c_z (rq_i + 1/2) delta_i,
    and the symbol (grid index minus rounded mean) by B_i / delta_{i-1} + 1/2.  A margin of 2
    symbols absorbs float rounding.
    """

    def __init__(self, sched: Schedule, params: CodingParams, times: np.ndarray | None = None,
                 mse_curve: tuple | None = None):
        if params.steps < 1:
            raise ValueError("steps must be >= 1")
        if not 0 <= params.grid_bits <= 8:
            raise ValueError("grid_bits must be in 0..8")
        if params.latents not in LATENT_VERSIONS:
            raise ValueError(f"latent coding version must be one of {LATENT_VERSIONS}")
        if params.order not in CHAINS:
            raise ValueError(f"chain order must be one of {tuple(CHAINS)}")
        K = params.steps
        self.params = params
        # version 3 computes every coefficient with `exact` (the same bits on any machine)
        sched = replace(sched, exact=params.format_version >= EXACT_MATH_VERSION)
        self.sched = sched
        self.K = K
        t = time_grid(params.grid, K) if times is None else np.asarray(times, dtype=np.float64)
        if len(t) != K + 1 or t[0] != 0.0 or t[-1] != 1.0 or np.any(np.diff(t) <= 0):
            raise ValueError(f"invalid time grid for K={K}")
        self.t = t
        self.gamma = sched.gamma(t)
        self.alpha, self.sigma = sched.alpha_sigma(t)
        s, tt = t[:-1], t[1:]
        a_q, s_q = sched.transition(s, tt)
        c_z, c_x, s_p = reverse_coefficients(sched, s, tt)
        pad = lambda a: np.concatenate([[np.nan], a])  # index steps 1..K
        self.a_q, self.s_q, self.c_z, self.c_x, self.s_p = map(pad, (a_q, s_q, c_z, c_x, s_p))
        self.snr = sched.exp(-self.gamma)

        scale = 2.0 ** (-params.grid_bits)
        delta = np.empty(K + 1)
        delta[0] = min(self.sigma[0], self.s_p[1])
        for i in range(1, K):
            delta[i] = min(self.s_q[i], self.s_p[i + 1])
        delta[K] = min(self.s_q[K], 1.0)
        self.delta = delta * scale

        rq = np.empty(K + 1, dtype=np.int64)
        rq[0] = math.ceil(Q_RADIUS_STDS * self.sigma[0] / self.delta[0])
        for i in range(1, K + 1):
            rq[i] = math.ceil(Q_RADIUS_STDS * self.s_q[i] / self.delta[i])
        self.rq = rq
        # Pop stds shrunk so that std^2 + delta^2/12 (the rounding to the grid adds about
        # delta^2/12) equals the schedule's variance: without it every step's noise is inflated by
        # the rounding, the chain drifts noisier than the network was trained for, and bits are lost.
        # (Measured with the first CIFAR model, K = 100, grid_bits 0: 5.58 -> 5.38 bits/dim, now level
        # with the model's NELBO_K.) delta <= the step std, so the difference stays positive.
        self.pop_std0 = math.sqrt(self.sigma[0] ** 2 - self.delta[0] ** 2 / 12)
        self.pop_std = np.sqrt(self.s_q ** 2 - self.delta ** 2 / 12)
        # Push stds.  Version 1: the schedule's posterior std s_p.  Version 2: the fitted variance
        # (`vdm.fitted_push_var`, Analytic-DPM: s_p^2 + c_x^2 M(t) from the model's own error curve in
        # grids.json, frozen with the model), less delta_s^2/12, because
        # pushing bin masses on grid s already widens the Gaussian by about that much.  With an exact
        # network this is s_p^2 - delta^2/12, the pops' correction; version 1 then over-disperses by
        # ~1/12 per step (~0.002 bits per subpixel and step at bins of one std).
        self.push_std = self.s_p.copy()
        if params.latents >= 2:
            if mse_curve is None:
                raise ValueError("latent coding version 2 needs the model's mse curve (grids.json)")
            v = fitted_push_var(sched, t, mse_curve) - self.delta[:-1] ** 2 / 12
            self.push_std[1:] = np.sqrt(np.maximum(v, 0.5 * self.s_p[1:] ** 2))

        E = np.empty(K + 1)
        E[0] = (rq[0] + 0.5) * self.delta[0]
        rp = np.zeros(K + 1, dtype=np.int64)
        for i in range(1, K + 1):
            E[i] = self.a_q[i] * E[i - 1] + (rq[i] + 0.5) * self.delta[i]
            shrink = self.s_q[i] ** 2 / self.sigma[i] ** 2
            bound = 2.0 * self.c_x[i] + shrink * E[i - 1] + self.c_z[i] * (rq[i] + 0.5) * self.delta[i]
            rp[i] = math.ceil(bound / self.delta[i - 1] + 0.5) + 2
        self.rp = rp
        # z_1 = alpha_1 s(x) + e_K with |s(x)| < 1.
        self.r_top = math.ceil((self.alpha[K] + E[K]) / self.delta[K] + 0.5) + 2



_NHWC_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # net -> {(shape, device): graph}


def _channels_last_graph(net: torch.nn.Module, shape: tuple[int, ...], device: str):
    """A channels-last copy of net frozen into a TorchScript graph, traced on zeros of one item of
    `shape`; the eager copy where tracing fails (same outputs, only slower)."""
    import copy
    import warnings
    net = copy.deepcopy(net).eval().to(memory_format=torch.channels_last)
    x = torch.zeros((1, *shape), device=device).contiguous(memory_format=torch.channels_last)
    try:
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")
            return torch.jit.freeze(torch.jit.trace(net, (x, torch.zeros(1, device=device)), check_trace=False))
    except Exception:  # noqa: BLE001
        return net


class EpsFn:
    """Deterministic network evaluation: float64 latents in, float64 eps_hat out.

    An integer network (`intnet.IntUNet`, format version 4) gives the same bits on any machine and
    in any grouping of calls; the rest of this note is about float networks.

    Decoding needs the encoder's probabilities bit for bit, so a batch is always evaluated as
    one call with the same composition on both sides (the callers replay the encoder's batches).

    With nhwc (the file's `coding.nhwc`, set by CPU encoders), the network runs on a channels-last
    copy of itself, frozen into a TorchScript graph: about 1.35x faster on one CPU thread than the
    plain module, and different from it in the last bits, so the flag is part of the format. The
    graph is traced on a fixed input, never on data, and gives the eager channels-last module's
    outputs exactly whatever the batch (tested), so tracing can fall back to that module.
    """

    def __init__(self, net: torch.nn.Module, device: str = "cpu", nhwc: bool = False, call_tiles: int | None = None):
        self.net = net
        self.device = device
        self.nhwc = nhwc
        self.call_tiles = call_tiles  # an integer network's calls split into at most this many tiles each
        self._nhwc_net = None

    def _channels_last(self, shape: tuple[int, ...]):
        if self._nhwc_net is None:
            key = (shape, self.device)
            cached = _NHWC_CACHE.setdefault(self.net, {})
            if key not in cached:
                cached[key] = _channels_last_graph(self.net, shape, self.device)
            self._nhwc_net = cached[key]
        return self._nhwc_net

    @property
    def integer(self) -> bool:
        """The network is `intnet.IntUNet`: its outputs are the same on any machine, in any grouping."""
        return bool(getattr(self.net, "integer", False))

    @torch.no_grad()
    def __call__(self, z: np.ndarray, gamma: float) -> np.ndarray:
        if self.integer:  # float64 in and out: the inputs are rounded inside, exactly
            step = self.call_tiles or len(z)
            outs = []
            for lo in range(0, len(z), step):  # any split gives the same integers
                zt = torch.from_numpy(np.ascontiguousarray(z[lo:lo + step], dtype=np.float64)).to(self.device)
                g = torch.full((zt.shape[0],), float(gamma), dtype=torch.float64, device=self.device)
                outs.append(self.net(zt, g).to("cpu").numpy())
            return outs[0] if len(outs) == 1 else np.concatenate(outs)
        zt = torch.from_numpy(z.astype(np.float32)).to(self.device)
        g = torch.full((z.shape[0],), float(gamma), dtype=torch.float32, device=self.device)
        if self.nhwc:
            out = self._channels_last(z.shape[1:])(zt.contiguous(memory_format=torch.channels_last), g)
        else:
            out = self.net(zt, g)
        return out.to("cpu", torch.float64).numpy()


class ChainStats:
    """Per-tile NELBO terms (bits) of the chain actually coded; filled by the encoder only.

    diffusion sums each step's KL against the reverse model the coder pushes with (see
    `tile_batch_codec`), so that with latent coding version 2 it is the fitted variances' KL."""

    def __init__(self, batch: int):
        self.recon = np.zeros(batch)
        self.diffusion = np.zeros(batch)
        self.prior = np.zeros(batch)

    @property
    def total(self) -> np.ndarray:
        return self.recon + self.diffusion + self.prior


def tile_batch_codec(spec: ChainSpec, eps_fn, mask: np.ndarray, x_true: np.ndarray | None = None,
                     stats: ChainStats | None = None, on_step=None) -> Codec:
    """Codec for the real subpixels of a batch of tiles: symbols are uint8 values in C order of
    mask[mask] (mask: bool [B, C, H, W]).

    x_true (uint8 [B, C, H, W]) and stats are given by the encoder to record the NELBO of the
    sampled chain: recon -log2 p(x|z_0), the per-step KLs KL(q(z_s|z_t,x) || p(z_s|z_t)) and
    KL(q(z_1|x) || N(0, I)), each over real subpixels only.  The step KL is taken against the reverse
    model actually pushed: version 1, the posterior's variance s_p^2, so 1/2 (SNR_s - SNR_t)
    ||s(x) - x_hat||^2 (`step_kl_bits`); version 2, the fitted variance v = push_std^2 + delta_s^2/12
    (the pushed std plus the widening of binning it on grid s, i.e. `fitted_push_var`), the full
    Gaussian KL 1/2 (c_x^2 (s(x) - x_hat)^2 / v + s_p^2/v - 1 - log(s_p^2/v)) (`step_kl_var_bits`).
    on_step() is called after every network evaluation (progress).
    """
    B = mask.shape[0]
    real = mask.reshape(-1)
    tile_of = np.repeat(np.arange(B), mask[0].size)[real]  # tile index of each real subpixel
    eps_pad = np.broadcast_to(pad_noise(mask.shape[1:], spec.params.format_version), mask.shape).reshape(-1)
    f_true = pixel_to_model_np(x_true.reshape(-1)[real]) if x_true is not None else None

    n_real = int(real.sum())
    # the variance each step's recorded KL is taken against (statistics only: never coded)
    kl_var = None
    if spec.params.latents >= 2:
        kl_var = spec.push_std ** 2 + np.concatenate([[np.nan], spec.delta[:-1] ** 2 / 12])

    def per_tile(v: np.ndarray) -> np.ndarray:
        return np.bincount(tile_of, weights=v, minlength=B)

    def posterior0(x):
        f = pixel_to_model_np(x)
        return grid_gaussian(spec.delta[0], spec.alpha[0] * f, spec.pop_std0, int(spec.rq[0]))

    def likelihood(n0):
        probs = recon_probs_np(n0 * spec.delta[0], spec.alpha[0], spec.sigma[0], spec.sched.exact)
        if stats is not None:
            xs = x_true.reshape(-1)[real].astype(np.int64)
            stats.recon += per_tile(-np.log2(np.maximum(probs[np.arange(len(xs)), xs], 1e-300)))
        inner = categorical(probs)
        return Codec(lambda st, x: inner.push(st, x.astype(np.int32)),
                     lambda st: inner.pop(st).astype(np.uint8))

    def posterior(i, n_prev):
        z_prev = n_prev * spec.delta[i - 1]
        return grid_gaussian(spec.delta[i], spec.a_q[i] * z_prev, spec.pop_std[i], int(spec.rq[i]))

    def prior(i, n_i):
        z_i = n_i * spec.delta[i]
        z_full = spec.sigma[i] * eps_pad.copy()
        z_full[real] = z_i
        eps = eps_fn(z_full.reshape(mask.shape), spec.gamma[i]).reshape(-1)[real]
        x_hat = np.clip((z_i - spec.sigma[i] * eps) / spec.alpha[i], -1.0, 1.0)
        if stats is not None:
            if kl_var is None:
                kl = step_kl_bits(spec.snr[i - 1], spec.snr[i], f_true, x_hat)
            else:
                kl = step_kl_var_bits(spec.c_x[i], spec.s_p[i] ** 2, kl_var[i], f_true, x_hat)
            stats.diffusion += per_tile(kl)
        if on_step is not None:
            on_step()
        mean = spec.c_z[i] * z_i + spec.c_x[i] * x_hat
        return grid_gaussian(spec.delta[i - 1], mean, spec.push_std[i], int(spec.rp[i]))

    top = grid_gaussian(spec.delta[spec.K], np.zeros(n_real), 1.0, int(spec.r_top))
    if stats is not None:
        stats.prior += per_tile(prior_kl_bits(spec.alpha[spec.K], spec.sigma[spec.K], f_true))

    return CHAINS[spec.params.order](spec.K, posterior0, likelihood, posterior, prior, top)
