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
