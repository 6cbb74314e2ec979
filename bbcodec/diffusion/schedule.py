"""The noise schedule gamma(t) (VDM notation: alpha_t^2 = sigmoid(-gamma_t), sigma_t^2 = sigmoid(gamma_t)).

Two views of the same schedule:
- `LearnedLinearSchedule`, a torch module whose endpoints are trained with the model;
- `Schedule`, a frozen float64 copy that the coder uses, so that encoder and decoder derive
  every grid and coefficient from the two endpoint numbers stored with the weights, in
  float64 on the CPU, whatever device runs the network.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from . import exact


class LearnedLinearSchedule(nn.Module):
    """gamma(t) = gamma_min + (gamma_max - gamma_min) t with both endpoints learned."""

    def __init__(self, gamma_min: float = -13.3, gamma_max: float = 5.0):
        super().__init__()
        self.gamma_min = nn.Parameter(torch.tensor(float(gamma_min)))
        self.gamma_max = nn.Parameter(torch.tensor(float(gamma_max)))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.gamma_min + (self.gamma_max - self.gamma_min) * t

    def frozen(self) -> "Schedule":
        return Schedule(float(self.gamma_min.detach()), float(self.gamma_max.detach()))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.where(x >= 0, 1.0 / (1.0 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1.0 + np.exp(-np.abs(x))))


@dataclass(frozen=True)
class Schedule:
    """Frozen linear schedule evaluated in float64 (numpy).

    exact: its transcendentals from `exact` (the same bits on every machine: what format version 3
    codes with) instead of numpy's (versions 1 and 2, whose files were coded with them)."""

    gamma_min: float
    gamma_max: float
    exact: bool = False

    def exp(self, x) -> np.ndarray:
        return exact.exp(x) if self.exact else np.exp(x)

    def gamma(self, t) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        return self.gamma_min + (self.gamma_max - self.gamma_min) * t

    def alpha_sigma(self, t) -> tuple[np.ndarray, np.ndarray]:
        g = self.gamma(t)
        sig = exact.sigmoid if self.exact else _sigmoid
        return np.sqrt(sig(-g)), np.sqrt(sig(g))

    def transition(self, s, t) -> tuple[np.ndarray, np.ndarray]:
        """alpha_{t|s} and sigma_{t|s} of q(z_t | z_s) for s < t.

        sigma_{t|s}^2 = sigma_t^2 - alpha_{t|s}^2 sigma_s^2 = sigma_t^2 * (-expm1(gamma_s - gamma_t)),
        written with expm1 so that small steps keep their precision.
        """
        gs, gt = self.gamma(s), self.gamma(t)
        a_s, _ = self.alpha_sigma(s)
        a_t, s_t = self.alpha_sigma(t)
        return a_t / a_s, s_t * np.sqrt(-(exact.expm1 if self.exact else np.expm1)(gs - gt))
