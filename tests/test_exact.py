"""The coder's transcendentals for format version 3 (`diffusion.exact`): close to numpy's, and the
same bits whatever numpy's CPU dispatch and glibc's libm variant, which change numpy's own results
(bench/studies/2026-12-04-arithmetic-audit)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from bbcodec.diffusion import exact


def _ulps(a, b):
    return int(np.max(np.abs(np.asarray(a).view(np.int64) - np.asarray(b).view(np.int64))))


def test_close_to_numpy_and_special_values():
    x = np.linspace(-700, 700, 100001)
    assert _ulps(exact.exp(x), np.exp(x)) <= 2
    small = np.linspace(-0.3, 0.3, 10001)
    assert _ulps(exact.expm1(small), np.expm1(small)) <= 2
    assert _ulps(exact.expm1(small * 1e-9), np.expm1(small * 1e-9)) <= 2
    assert _ulps(exact.sigmoid(x / 20), 1 / (1 + np.exp(-x / 20))) <= 4
    assert exact.exp(np.array([0.0]))[0] == 1.0 and exact.exp(np.array([-800.0]))[0] == 0.0
    assert np.isinf(exact.exp(np.array([800.0]))[0])
    xp, fp = np.linspace(0, 1, 9), np.linspace(0, 1, 9) ** 2
    q = np.array([-0.5, 0.0, 0.3, 1.0, 2.0])
    assert np.allclose(exact.interp(q, xp, fp), np.interp(q, xp, fp), rtol=0, atol=1e-15)
    a = np.random.default_rng(0).random((3, 256))
    assert np.allclose(exact.row_sum(a)[:, 0], a.sum(1), rtol=1e-14)


PROBE = """
import hashlib, json, numpy as np
from bbcodec.diffusion import exact
from bbcodec.diffusion.codec import ChainSpec, CodingParams
from bbcodec.diffusion.schedule import Schedule
from bbcodec.diffusion.vdm import recon_probs_np
out = {}
for v in (2, 3):
    spec = ChainSpec(Schedule(-12.02, 4.18), CodingParams(steps=100, format_version=v))
    z0 = np.linspace(-1.2, 1.2, 4097)
    arrays = [spec.alpha, spec.sigma, spec.snr, spec.delta, spec.push_std, spec.pop_std,
              recon_probs_np(z0, spec.alpha[0], spec.sigma[0], spec.sched.exact)]
    out[v] = hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in arrays)).hexdigest()
print(json.dumps(out))
"""


def _probe(env_extra: dict) -> dict:
    env = dict(os.environ, **env_extra)
    p = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


@pytest.mark.parametrize("env", [
    {"NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL"},
    {"NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL", "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2,-FMA"},
], ids=["numpy-baseline-loops", "numpy-baseline-and-glibc-without-fma"])
def test_version_3_coefficients_and_bin_masses_do_not_follow_numpy_or_glibc(env):
    """Each setting in its own process: version 3's arrays are the same bits as in a plain process.
    (Version 2's are numpy's, and may differ: recorded, not asserted, since it depends on the CPU.)"""
    base, other = _probe({}), _probe(env)
    assert other["3"] == base["3"]
