"""The chain statistics the encoder records (ChainStats: recon, diffusion, prior) are the rate of the
reverse model it actually codes with: pinned against closed forms, against the coded bits (both
sides) and against the bench's coder-free reference, for latent coding version 2 (the default)."""
import dataclasses
import math

import numpy as np
import pytest

from bbcodec.ans import Stack
from bbcodec.format import constants
from bbcodec.format.container import VERSION
from bbcodec.diffusion.codec import ChainSpec, ChainStats, CodingParams, tile_batch_codec
from bbcodec.diffusion.schedule import Schedule
from bbcodec.diffusion.vdm import (fitted_push_var, gaussian_kl_bits, pixel_to_model_np, step_kl_bits,
                                   step_kl_var_bits)

from conftest import chain_rate, cifar_samples


def seed_words(n):
    """The encoder's seed words in the current format, so the measured figures below are those of
    the coder's own start."""
    return constants.seed_words(n, VERSION)


def _kl_bits(m1, v1, m2, v2):
    """KL(N(m1, v1) || N(m2, v2)) in bits, written out: the closed form the library must match."""
    return 0.5 * (np.log(v2 / v1) + (v1 + (m1 - m2) ** 2) / v2 - 1.0) / math.log(2.0)


def test_gaussian_kl_closed_form():
    # KL(N(0, 1) || N(1, 2)) = 1/2 (ln 2 + 2/2 - 1) nats = exactly 1/2 bit
    assert gaussian_kl_bits(1.0, 1.0, 2.0) == pytest.approx(0.5, rel=1e-12)
    # KL(N(1, 4) || N(0, 1)) = 1/2 (ln(1/4) + 5 - 1) nats
    assert gaussian_kl_bits(1.0, 4.0, 1.0) == pytest.approx(0.5 * (4 - math.log(4)) / math.log(2), rel=1e-12)
    # equal variances: the mean term alone; equal means: the variance terms alone
    assert gaussian_kl_bits(0.09, 0.5, 0.5) == pytest.approx(0.5 * 0.09 / 0.5 / math.log(2), rel=1e-12)
    assert gaussian_kl_bits(0.0, 0.3, 0.7) == pytest.approx(_kl_bits(0.0, 0.3, 0.0, 0.7), rel=1e-12)
    assert gaussian_kl_bits(0.0, 0.3, 0.3) == 0.0
    rng = np.random.default_rng(0)
    m1, m2 = rng.normal(size=50), rng.normal(size=50)
    v1, v2 = rng.uniform(0.01, 2, 50), rng.uniform(0.01, 2, 50)
    assert np.allclose(gaussian_kl_bits((m1 - m2) ** 2, v1, v2), _kl_bits(m1, v1, m2, v2), rtol=1e-12, atol=0)


def test_step_kl_with_its_own_variance():
    """step_kl_var_bits is KL(q(z_s|z_t,x) || N(c_z z_t + c_x x_hat, v)), mean and variance terms both;
    at v = the posterior's variance it is the version 1 statistic 1/2 (SNR_s - SNR_t) (s(x) - x_hat)^2."""
    sc = Schedule(-10.0, 5.0)
    t = np.linspace(0, 1, 11)
    spec = ChainSpec(sc, CodingParams(steps=10))
    rng = np.random.default_rng(1)
    f, x_hat, z_t = rng.uniform(-1, 1, 40), rng.uniform(-1, 1, 40), rng.normal(size=40)
    for i in range(1, 11):
        c_z, c_x, v_q = spec.c_z[i], spec.c_x[i], spec.s_p[i] ** 2
        post = step_kl_bits(spec.snr[i - 1], spec.snr[i], f, x_hat)
        assert np.allclose(step_kl_var_bits(c_x, v_q, v_q, f, x_hat), post, rtol=1e-9, atol=0)
        for v_p in (0.7 * v_q, 1.9 * v_q):
            want = _kl_bits(c_z * z_t + c_x * f, v_q, c_z * z_t + c_x * x_hat, v_p)
            assert np.allclose(step_kl_var_bits(c_x, v_q, v_p, f, x_hat), want, rtol=1e-9, atol=0)
    # and the fitted variance of version 2 is what the coder's push std plus the binning's widening make
    curve = (np.array([0.0, 1.0]), np.array([0.01, 0.8]))
    v2 = ChainSpec(sc, CodingParams(steps=10, grid_bits=1, latents=2), mse_curve=curve)
    assert np.allclose(v2.push_std[1:] ** 2 + v2.delta[:-1] ** 2 / 12, fitted_push_var(sc, t, curve), rtol=1e-12)


class _Recorder:
    """A stand-in network: eps_hat = 0.4 z, recording each call's input (the latents coded)."""

    def __init__(self):
        self.calls = []

    def __call__(self, z, gamma):
        self.calls.append((z.copy(), gamma))
        return 0.4 * z


@pytest.mark.parametrize("latents", [1, 2])
def test_recorded_step_kls_are_the_closed_form_of_the_coded_chain(latents):
    """ChainStats.diffusion, per tile, is the sum over steps and real subpixels of
    KL(N(mean_q, s_p^2) || N(mean_p, v)) at the latents actually coded: v = s_p^2 for version 1 and
    v = fitted_push_var for version 2 (the full Gaussian KL, variance terms included)."""
    sc = Schedule(-9.0, 4.0)
    K = 6
    curve = (np.array([0.0, 0.5, 1.0]), np.array([0.002, 0.05, 0.6]))
    spec = ChainSpec(sc, CodingParams(steps=K, grid_bits=1, latents=latents), mse_curve=curve)
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (2, 3, 5, 4), dtype=np.uint8)
    mask = np.ones(x.shape, dtype=bool)
    mask[1, 2] = False       # a gray-like tile: one channel uncoded
    mask[1, :, 4, :] = False  # and a padded row
    net = _Recorder()
    stats = ChainStats(2)
    tile_batch_codec(spec, net, mask, x_true=x, stats=stats).push(Stack(seed_words(4000)), x[mask])
    assert len(net.calls) == K
    var_p = fitted_push_var(sc, spec.t, curve) if latents == 2 else spec.s_p[1:] ** 2
    f = pixel_to_model_np(x)
    want = np.zeros(2)
    for i, (z, gamma) in zip(range(1, K + 1), net.calls):  # step i evaluates the network at z_{t_i}
        assert gamma == spec.gamma[i]
        x_hat = np.clip((z - spec.sigma[i] * 0.4 * z) / spec.alpha[i], -1, 1)
        m_q = spec.c_z[i] * z + spec.c_x[i] * f
        m_p = spec.c_z[i] * z + spec.c_x[i] * x_hat
        kl = _kl_bits(m_q, spec.s_p[i] ** 2, m_p, var_p[i - 1])
        want += np.where(mask, kl, 0.0).reshape(2, -1).sum(1)
    assert np.allclose(stats.diffusion, want, rtol=1e-9, atol=0), (stats.diffusion, want)
    # the variance terms are not small here: the version 2 figure is not the version 1 one
    if latents == 2:
        post = sum(np.where(mask, step_kl_bits(spec.snr[i - 1], spec.snr[i], f,
                                               np.clip((z - spec.sigma[i] * 0.4 * z) / spec.alpha[i], -1, 1)),
                            0.0).reshape(2, -1).sum(1) for i, (z, _) in zip(range(1, K + 1), net.calls))
        assert np.all(np.abs(stats.diffusion / post - 1) > 0.05)


@pytest.fixture(scope="module")
def fitted_model(tiny_model):
    """The tiny model with its own error curve M(t), measured as shipped models' grids.json is (on
    the bundled CIFAR samples): latent coding version 2 with the variances it would ship with."""
    from bbcodec.diffusion.grids import mse_curve
    t = np.linspace(0, 1, 21)
    x = cifar_samples().transpose(0, 3, 1, 2).copy()
    m, _ = mse_curve(tiny_model.vdm.net, tiny_model.schedule, x, t, batch=8)
    return dataclasses.replace(tiny_model, mse_curve=(t, m))


def test_version_2_rate_matches_the_recorded_nelbo_from_both_sides(fitted_model):
    """Default latent coding (version 2, K = 100, bins of one step std): the stack's growth over four
    CIFAR tiles coded one after another (net of the seed) is within -1% / +1.5% of the NELBO_K the
    encoder recorded along that chain.

    Measured (tiny random-weight model, its own error curve): achieved / recorded 1.0047 on these
    four images; 0.9966 to 1.0099 over other sets of four (CIFAR and synthetic, bins of 1 and 1/2
    std, K = 50 and 100). The statistics this replaces (the posterior variance's KL, although the
    fitted variances are pushed) give 0.9235 here, 0.85 to 0.94 elsewhere; dropping the fitted KL's
    variance terms gives 1.103; inflating it by 3% gives 0.975: all outside the bounds."""
    x = cifar_samples()[:4].transpose(0, 3, 1, 2).copy()
    model = fitted_model
    spec = ChainSpec(model.schedule, CodingParams(steps=100, grid_bits=0, latents=2), mse_curve=model.mse_curve)
    achieved, nelbo = chain_rate(model, spec, x, seed_words)
    ratio = achieved / nelbo
    assert 0.99 <= ratio <= 1.015, (achieved, nelbo, ratio)


def test_bench_fitted_reference_agrees_with_the_encoders_statistics(fitted_model):
    """reference.model_nelbo_k(fitted=True)'s second row (fresh continuous latents, the fitted variances)
    estimates what the encoder records for version 2: the eight CIFAR samples' totals within 1.5%.
    Measured: 0.9971 (and 1.0006, 1.0003 with the reference's draws at seeds 1 and 2; per image
    0.989 to 1.006). The posterior-variance row is 37% away at K = 20, so the encoder's old
    statistics (which followed it) fail, as does a fitted KL 3% off."""
    from bbcodec import api
    from bbcodec.diffusion import reference
    from bbcodec.images import ImageData
    imgs = [ImageData(f"{i}.png", "RGB", 32, 32, np.ascontiguousarray(a.transpose(2, 0, 1)))
            for i, a in enumerate(cifar_samples())]
    params = CodingParams(steps=20, latents=2)
    _, rep = api.compress(imgs, fitted_model, params, bootstrap=None)
    enc = np.array(rep.per_image_nelbo_bits)
    post, fit = reference.model_nelbo_k(fitted_model, params, imgs, fitted=True)
    assert abs(enc.sum() / fit.sum() - 1) < 0.015, (enc.sum(), fit.sum())
    assert abs(enc.sum() / post.sum() - 1) > 0.2
