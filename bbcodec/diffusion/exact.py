"""Float64 functions whose results are the same on every machine: the coder's transcendentals.

numpy's exp, expm1 and log differ in the last bits with its CPU dispatch (AVX-512 loops or not), with
glibc's variants and across platforms (bench/studies/2026-12-04-arithmetic-audit: 1-4 ulp in
ChainSpec's coefficients and in p(x|z_0)), and a compiled loop may fuse a multiply and an add on one
platform and not on another. The coder's probabilities must not depend on any of that. Everything
here is built from numpy ufuncs that IEEE 754 defines to the bit, each applied as its own pass over
the array (so nothing can be fused): +, -, *, /, sqrt, rint, ldexp, comparisons and selection. The
same inputs give the same bits on any IEEE machine, any numpy, any SIMD width. Accuracy: within a few
ulp of the true values, which is all the coder needs (it needs agreement, not the last ulp).

Format versions 1 and 2 were coded with numpy's functions and keep them (`Schedule.exact`).
"""
from __future__ import annotations

import numpy as np

# Cody-Waite split of ln 2 (fdlibm's constants): k * LN2_HI is exact for |k| < 2^20.
LN2_HI = 6.93147180369123816490e-01
LN2_LO = 1.90821492927058770002e-10
INV_LN2 = 1.44269504088896338700e+00
# 1/n! for n = 2..13: Taylor coefficients of exp on |r| <= ln(2)/2, where the degree-13 remainder is
# below 1e-17 relative.
_INV_FACT = [1.0 / float(np.prod(np.arange(1, n + 1, dtype=np.float64))) for n in range(2, 14)]


def _expm1_small(r: np.ndarray) -> np.ndarray:
    """exp(r) - 1 for |r| <= ln(2)/2, by Horner on r (r + r^2/2! + ... + r^13/13!)."""
    p = np.full_like(r, _INV_FACT[-1])
    for c in reversed(_INV_FACT[:-1]):
        p = p * r + c
    p = p * r + 1.0
    return p * r


def exp(x) -> np.ndarray:
    """e^x, float64, the same bits everywhere (0 below -745.2, inf above 709.8)."""
    x = np.asarray(x, dtype=np.float64)
    xc = np.clip(x, -746.0, 710.0)
    k = np.rint(xc * INV_LN2)
    r = (xc - k * LN2_HI) - k * LN2_LO
    with np.errstate(over="ignore"):
        y = np.ldexp(_expm1_small(r) + 1.0, k.astype(np.int64))
    y = np.where(x < -745.2, 0.0, y)
    return np.where(x > 709.8, np.inf, y)


def expm1(x) -> np.ndarray:
    """e^x - 1, precise for small |x| as numpy's, the same bits everywhere."""
    x = np.asarray(x, dtype=np.float64)
    small = np.abs(x) <= 0.34657359027997264  # ln(2)/2
    return np.where(small, _expm1_small(np.where(small, x, 0.0)), exp(x) - 1.0)


def sigmoid(x) -> np.ndarray:
    """1 / (1 + e^-x) without overflow, the same bits everywhere."""
    x = np.asarray(x, dtype=np.float64)
    e = exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def interp(x, xp, fp) -> np.ndarray:
    """np.interp's piecewise-linear interpolation (constant beyond the ends), one ufunc per step."""
    x, xp, fp = (np.asarray(a, dtype=np.float64) for a in (x, xp, fp))
    i = np.clip(np.searchsorted(xp, x, side="right") - 1, 0, len(xp) - 2)
    x0, x1, f0, f1 = xp[i], xp[i + 1], fp[i], fp[i + 1]
    w = (x - x0) / (x1 - x0)
    y = f0 + w * (f1 - f0)
    return np.where(x <= xp[0], fp[0], np.where(x >= xp[-1], fp[-1], y))


def row_sum(a: np.ndarray) -> np.ndarray:
    """Sums of the rows of a 2-D array in a fixed pairwise order (halves added elementwise), instead
    of numpy's reduction, whose order follows its SIMD loops. [N, M] -> [N, 1]"""
    a = np.asarray(a, dtype=np.float64)
    while a.shape[1] > 1:
        half = a.shape[1] // 2
        head = a[:, :half] + a[:, half:2 * half]
        a = np.concatenate([head, a[:, 2 * half:]], axis=1) if a.shape[1] % 2 else head
    return a


# pi/2 in three parts (fdlibm's): k * PIO2_1 and k * PIO2_2 are exact for |k| < 2^20.
PIO2_1 = 1.57079632673412561417e+00
PIO2_2 = 6.07710050630396597660e-11
PIO2_3 = 2.02226624871116645580e-21
TWO_OVER_PI = 6.36619772367581382433e-01
# 1/n! for the Taylor polynomials of sin and cos on |r| <= pi/4 (remainder below 1e-19)
_INV_FACT_ALL = [1.0 / float(np.prod(np.arange(1, n + 1, dtype=np.float64))) for n in range(0, 20)]


def _horner(r2: np.ndarray, coefs: list) -> np.ndarray:
    p = np.full_like(r2, coefs[-1])
    for c in reversed(coefs[:-1]):
        p = p * r2 + c
    return p


def sin_cos(x) -> tuple[np.ndarray, np.ndarray]:
    """(sin x, cos x), float64, the same bits everywhere, for |x| < 2^19 (the network's embeddings
    stay below 10^3). Cody-Waite reduction by pi/2, Taylor polynomials on |r| <= pi/4."""
    x = np.asarray(x, dtype=np.float64)
    if np.any(np.abs(x) >= 2.0 ** 19):
        raise ValueError("sin_cos: argument out of range")
    k = np.rint(x * TWO_OVER_PI)
    r = ((x - k * PIO2_1) - k * PIO2_2) - k * PIO2_3
    r2 = r * r
    s = r * _horner(r2, [(-1) ** i * _INV_FACT_ALL[2 * i + 1] for i in range(9)])
    c = _horner(r2, [(-1) ** i * _INV_FACT_ALL[2 * i] for i in range(10)])
    q = np.mod(k.astype(np.int64), 4)
    sin = np.select([q == 0, q == 1, q == 2], [s, c, -s], -c)
    cos = np.select([q == 0, q == 1, q == 2], [c, -s, -c], s)
    return sin, cos
