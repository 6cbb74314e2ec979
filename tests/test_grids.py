import itertools

import numpy as np

from bbcodec.diffusion.grids import grid_cost, optimal_grids, step_costs
from bbcodec.diffusion.schedule import Schedule

SC = Schedule(-13.3, 5.0)


def _curve(t):
    return 1e-6 * np.exp(13.0 * t)  # grows with noise, like a real model's x_hat error


def test_dp_matches_brute_force():
    t = np.linspace(0, 1, 9)
    m = _curve(t)
    L = step_costs(SC, t, m)
    for k in (2, 3, 4):
        best = min((sum(L[a, b] for a, b in zip((0,) + c, c + (8,))), c)
                   for c in itertools.combinations(range(1, 8), k - 1))
        g = optimal_grids(SC, t, m, [k])[k]
        got = sum(L[np.searchsorted(t, a), np.searchsorted(t, b)] for a, b in zip(g[:-1], g[1:]))
        assert np.isclose(got, best[0])


def test_optimal_never_worse_than_uniform():
    t = np.linspace(0, 1, 401)
    m = _curve(t)
    grids = optimal_grids(SC, t, m, [4, 8, 16, 50, 100])
    for k, g in grids.items():
        assert len(g) == k + 1 and g[0] == 0 and g[-1] == 1 and np.all(np.diff(g) > 0)
        assert grid_cost(SC, t, m, g) <= grid_cost(SC, t, m, np.linspace(0, 1, k + 1)) + 1e-12


def test_fitted_grids_opt2():
    """opt2 minimises the fitted-variance cost 1/2 log(1 + dSNR M): never worse than uniform or opt1
    under it, and that cost never exceeds the posterior-variance one. Frozen grids are not rebuilt."""
    import pytest
    from bbcodec.diffusion.grids import add_grid
    tc = np.linspace(0, 1, 41)
    gj = {"curve": {"t": tc.tolist(), "mse_per_dim": _curve(tc).tolist()}, "grids": {}}
    ks = (4, 8, 16, 32)
    add_grid(gj, SC, "opt1", n_fine=401, ks=ks)
    add_grid(gj, SC, "opt2", n_fine=401, ks=ks)
    tf = np.linspace(0, 1, 401)
    mf = np.exp(np.interp(tf, tc, np.log(_curve(tc))))
    for k in ks:
        row = gj["expected_diffusion_bpd"][str(k)]
        o1, o2 = (np.array(gj["grids"][n][str(k)]) for n in ("opt1", "opt2"))
        assert row["opt2_bpd"] <= row["uniform_fitted_bpd"] + 1e-12
        assert grid_cost(SC, tf, mf, o2, fitted=True) <= grid_cost(SC, tf, mf, o1, fitted=True) + 1e-12
        assert row["opt2_bpd"] <= row["opt1_bpd"] and row["uniform_fitted_bpd"] <= row["uniform_bpd"]
    with pytest.raises(ValueError, match="frozen"):
        add_grid(gj, SC, "opt1", n_fine=401, ks=ks)


def _noisy_curve(tc, rel=0.05, seed=0):
    """A smooth 'true' curve and a measurement of it with `rel` relative noise, as grids.json stores it."""
    true = 1e-6 * np.exp(13.0 * tc + 1.5 * np.sin(3.0 * tc))
    noisy = true * np.exp(rel * np.random.default_rng(seed).standard_normal(len(tc)))
    return true, {"t": tc.tolist(), "mse_per_dim": noisy.tolist(), "se": (rel * noisy).tolist()}


def test_smooth_curve_recovers_the_truth():
    """The smoothing fit is far closer to the true curve than the measurement, and says what it fitted."""
    from bbcodec.diffusion.grids import smooth_curve
    tc = np.linspace(0, 1, 81)
    for seed in range(3):
        true, curve = _noisy_curve(tc, seed=seed)
        fit, info = smooth_curve(tc, np.array(curve["mse_per_dim"]), np.array(curve["se"]))
        err_raw = np.abs(np.log(np.array(curve["mse_per_dim"]) / true)).mean()
        err_fit = np.abs(np.log(fit / true)).mean()
        assert err_fit < 0.5 * err_raw
        assert 3 <= info["log_polynomial_degree"] <= 12 and 0.5 < info["chi2_per_dof"] < 2.0


def test_opt3_beats_opt2_under_the_true_curve():
    """opt2's DP chases the measurement noise; opt3 (the same DP on the smoothed curve) costs less under
    the true curve, for every K and every noise draw tried, and is recorded with its fit."""
    from bbcodec.diffusion.grids import add_grid
    tc = np.linspace(0, 1, 81)
    tf = np.linspace(0, 1, 801)
    ks = (16, 64, 128)
    for seed in range(3):
        true, curve = _noisy_curve(tc, seed=seed)
        gj = {"curve": curve, "grids": {}}
        add_grid(gj, SC, "opt2", n_fine=801, ks=ks)
        add_grid(gj, SC, "opt3", n_fine=801, ks=ks)
        assert gj["curve"]["smooth"]["log_polynomial_degree"] >= 3
        mt = np.interp(tf, tc, true)
        for k in ks:
            o2, o3 = (np.array(gj["grids"][n][str(k)]) for n in ("opt2", "opt3"))
            assert grid_cost(SC, tf, mt, o3, fitted=True) < grid_cost(SC, tf, mt, o2, fitted=True)
            row = gj["expected_diffusion_bpd"][str(k)]
            assert row["opt3_bpd"] <= row["uniform_smooth_bpd"] + 1e-12
