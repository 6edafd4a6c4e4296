"""DEIS's multistep weights ("tAB" form), as ComfyUI computes them for its ``deis`` sampler.

DEIS integrates eps, interpolated as a polynomial in time through the last few steps, against
d(sigma)/dt. ComfyUI (after diff-solvers' ``gits-main/solver_utils.py``) takes "time" from a VP
schedule fitted to EDM's sigma range (0.002..80) and integrates with a 10 000-point Riemann sum;
both are reproduced so our weights are ComfyUI's, not merely close to the exact integral.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

_EPSILON_S, _SIGMA_MIN, _SIGMA_MAX = 1e-3, 0.002, 80.0
_BETA_D = 2 * (math.log(_SIGMA_MIN**2 + 1) / _EPSILON_S - math.log(_SIGMA_MAX**2 + 1)) / (_EPSILON_S - 1)
_BETA_MIN = math.log(_SIGMA_MAX**2 + 1) - 0.5 * _BETA_D


def vp_time(sigma: np.ndarray) -> np.ndarray:
    """The VP time t with sigma(t) = sqrt(exp(beta_d t² / 2 + beta_min t) - 1) (inverse of that map)."""
    sigma = np.asarray(sigma, dtype=np.float64)
    return (np.sqrt(_BETA_MIN**2 + 2 * _BETA_D * np.log(sigma**2 + 1)) - _BETA_MIN) / _BETA_D


def _dsigma_dt(t: np.ndarray) -> np.ndarray:
    """d(sigma)/dt, written as ComfyUI does: -½ d(log alpha)/dt / sqrt(alpha (1 - alpha))."""
    alpha = np.exp(-0.5 * t**2 * _BETA_D - t * _BETA_MIN)
    dlog_alpha = -t * _BETA_D - _BETA_MIN
    return -0.5 * dlog_alpha / np.sqrt(alpha * (1 - alpha))


def deis_coefficients(sigmas: Sequence[float], max_order: int = 3, points: int = 10000) -> list[list[float]]:
    """Per step i, the weights of ``[d_i, d_(i-1), …]`` (empty where the step is first order)."""
    t_steps = vp_time(np.asarray(sigmas, dtype=np.float64))
    out: list[list[float]] = []
    for i in range(len(t_steps) - 1):
        order = min(i + 1, max_order)
        if order == 1 or sigmas[i + 1] <= 0:  # the last step to 0 is an Euler step (and t = 0 is singular)
            out.append([])
            continue
        t_cur, t_next = t_steps[i], t_steps[i + 1]
        taus = np.linspace(t_cur, t_next, points)
        dtau = (t_next - t_cur) / points
        weight = _dsigma_dt(taus)
        past = [t_steps[i - k] for k in range(order)]
        row = []
        for j in range(order):
            basis = np.ones_like(taus)
            for k in range(order):
                if k != j:
                    basis *= (taus - past[k]) / (past[j] - past[k])
            row.append(float(np.sum(weight * basis) * dtau))
        out.append(row)
    return out
