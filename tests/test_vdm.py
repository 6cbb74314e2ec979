import numpy as np
import torch

from bbcodec.diffusion.net import VDM
from bbcodec.diffusion.schedule import Schedule
from bbcodec.diffusion.vdm import reverse_coefficients, vdm_loss

from conftest import TINY


def test_transition_matches_definition():
    sc = Schedule(-13.3, 5.0)
    s, t = np.array([0.0, 0.3, 0.9]), np.array([0.01, 0.5, 1.0])
    a_s, s_s = sc.alpha_sigma(s)
    a_t, s_t = sc.alpha_sigma(t)
    a_ts, s_ts = sc.transition(s, t)
    assert np.allclose(a_ts, a_t / a_s)
    assert np.allclose(s_ts**2, s_t**2 - a_ts**2 * s_s**2, rtol=1e-9, atol=1e-15)
    assert np.allclose(a_s**2 + s_s**2, 1.0)


def test_reverse_step_is_the_posterior():
    sc = Schedule(-10.0, 4.0)
    s, t = np.array([0.2]), np.array([0.25])
    c_z, c_x, std = reverse_coefficients(sc, s, t)
    a_s, s_s = sc.alpha_sigma(s)
    a_t, s_t = sc.alpha_sigma(t)
    # the coefficients of z_t and x must reproduce alpha_s for z_t = alpha_t x (noise-free)
    assert np.allclose(c_z * a_t + c_x, a_s)
    a_ts, s_ts = sc.transition(s, t)
    # posterior variance: 1 / (1/sigma_s^2 + alpha_ts^2 / sigma_ts^2)
    assert np.allclose(std**2, 1.0 / (1.0 / s_s**2 + a_ts**2 / s_ts**2))


def test_loss_terms_and_discrete_limit():
    torch.manual_seed(0)
    m = VDM(TINY)
    x = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    t = torch.rand(8)
    cont = vdm_loss(m.net, m.gamma, x, t=t)
    for v in cont.values():
        assert v.shape == (8,) and torch.isfinite(v).all()
    # an untrained eps-net predicts ~0: the diffusion term is about (gamma_max - gamma_min) / (2 ln 2)
    assert abs(float(cont["diffusion"].mean().detach()) - 18.3 / (2 * np.log(2))) < 0.5
    torch.manual_seed(1)
    disc = vdm_loss(m.net, m.gamma, x, t=t, discrete_steps=100000)
    torch.manual_seed(1)
    cont2 = vdm_loss(m.net, m.gamma, x, t=t)
    assert torch.allclose(disc["diffusion"], cont2["diffusion"], rtol=1e-3)


def test_loss_trains_the_schedule_endpoints():
    torch.manual_seed(0)
    m = VDM(TINY)
    x = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    loss = sum(vdm_loss(m.net, m.gamma, x).values()).mean()
    loss.backward()
    assert m.gamma.gamma_min.grad is not None and m.gamma.gamma_max.grad is not None


def test_sampled_step_estimates_are_unbiased():
    """Random and stratified step sampling both estimate the full K-step sum (fixed seeds, 4 SE)."""
    from bbcodec.diffusion.vdm import nelbo_k_bits
    sc = Schedule(-10.0, 4.0)
    net = lambda z, g: torch.zeros_like(z)  # x_hat = z / alpha: a step's cost then varies strongly with t
    x = np.tile(np.random.default_rng(0).integers(0, 256, (1, 3, 4, 4), dtype=np.uint8), (600, 1, 1, 1))
    t = np.linspace(0, 1, 17)
    full = nelbo_k_bits(net, sc, x, t, seed=1)
    for stratified in (False, True):
        est = nelbo_k_bits(net, sc, x, t, sampled_steps=4, seed=2, stratified=stratified)
        se = np.hypot(est.std() / np.sqrt(len(x)), full.std() / np.sqrt(len(x)))
        assert abs(est.mean() - full.mean()) < 4 * se, (stratified, est.mean(), full.mean(), se)
    strat = nelbo_k_bits(net, sc, x, t, sampled_steps=4, seed=2, stratified=True)
    rand = nelbo_k_bits(net, sc, x, t, sampled_steps=4, seed=2)
    assert strat.std() < rand.std()


def test_push_variance_nelbo():
    """The posterior's own variance reproduces the standard NELBO_K; the fitted variances never cost more."""
    from bbcodec.diffusion.vdm import fitted_push_var, nelbo_k_bits, reverse_coefficients
    sc = Schedule(-10.0, 4.0)
    net = lambda z, g: 0.9 * z  # a poor denoiser: its mean is far off, so fitted variances must help
    x = np.random.default_rng(0).integers(0, 256, (20, 3, 4, 4), dtype=np.uint8)
    t = np.linspace(0, 1, 9)
    std = nelbo_k_bits(net, sc, x, t, seed=3)
    _, _, s_p = reverse_coefficients(sc, t[:-1], t[1:])
    assert np.allclose(nelbo_k_bits(net, sc, x, t, seed=3, push_vars=[s_p ** 2])[0], std)
    m = np.full(2, 0.5)  # a flat error curve
    both = nelbo_k_bits(net, sc, x, t, seed=3, push_vars=[None, fitted_push_var(sc, t, (np.array([0.0, 1.0]), m))])
    assert np.array_equal(both[0], std)  # one pass gives every reverse model, on the same draws
    fitted = both[1]
    assert fitted.mean() < std.mean()
