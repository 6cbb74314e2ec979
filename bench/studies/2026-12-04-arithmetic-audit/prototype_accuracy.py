"""Accuracy of exact_prototype against numpy on this machine (printed; recorded in README.md)."""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import exact_prototype as exact  # noqa: E402


def ulps(a, b):
    return int(np.max(np.abs(a.view(np.int64) - b.view(np.int64))))


x = np.linspace(-40, 40, 200001)
xs = np.linspace(-3, 0, 100001)
print("exp", ulps(exact.exp(x), np.exp(x)))
print("expm1", ulps(exact.expm1(xs), np.expm1(xs)), ulps(exact.expm1(xs * 1e-6), np.expm1(xs * 1e-6)))
print("sigmoid", ulps(exact.sigmoid(x), 1 / (1 + np.exp(-x))))
