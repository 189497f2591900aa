"""Noise schedules of Gaussian diffusion, written in log signal-to-noise ratio.

A diffusion corrupts data x (scaled to [-1, 1]) into ``z_t = alpha_t x + sigma_t eps`` for
t in [0, 1]. Following Kingma et al. 2021 (VDM, https://arxiv.org/abs/2107.00630) every
schedule here is given by its log-SNR ``lambda(t) = log(alpha_t^2 / sigma_t^2)``, strictly
decreasing from ``lambda_max`` (almost clean) at t = 0 to ``lambda_min`` (almost pure
noise) at t = 1. Everything else follows from lambda:

* variance preserving (DDPM) coordinates: ``alpha^2 = sigmoid(lambda)``,
  ``sigma^2 = sigmoid(-lambda)``;
* the network sees lambda itself (not t), so samplers, the likelihood bound and the
  flow-matching model all work in one coordinate.

Schedules (each truncated to [lambda_min, lambda_max] by an affine map of t, so the
endpoints are exactly those values):

* ``linear``: the continuous-time DDPM schedule (Ho et al. 2020,
  https://arxiv.org/abs/2006.11239; beta from 0.1 to 20 in the VP-SDE form of Song et al.
  2021, https://arxiv.org/abs/2011.13456): ``alpha_bar(t) = exp(-(0.1 t + 9.95 t^2))``;
* ``cosine``: Nichol & Dhariwal 2021 (https://arxiv.org/abs/2102.09672),
  ``alpha_bar = cos^2(pi t / 2)``, i.e. ``lambda = -2 log tan(pi t / 2)``;
* ``rectified``: the straight path of rectified flow / flow matching (Liu et al. 2022,
  https://arxiv.org/abs/2209.03003; Lipman et al. 2022, https://arxiv.org/abs/2210.02747),
  ``z = (1 - t) x + t eps``, i.e. ``lambda = 2 log((1 - t) / t)``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

__all__ = ["NoiseSchedule", "SCHEDULES", "alpha_sigma"]

ScheduleName = Literal["linear", "cosine", "rectified"]
SCHEDULES: tuple[str, ...] = ("linear", "cosine", "rectified")

_BETA0, _BETA1 = 0.1, 20.0  # the VP-SDE's linear beta(t), = DDPM's 1e-4..0.02 over 1000 steps


def _lam_raw(name: str, t: Tensor) -> Tensor:
    """The untruncated log-SNR of schedule ``name`` at t in (0, 1), float64."""
    if name == "linear":
        integral = _BETA0 * t + 0.5 * (_BETA1 - _BETA0) * t ** 2  # -log alpha_bar
        return -torch.log(torch.expm1(integral))
    if name == "cosine":
        return -2.0 * torch.log(torch.tan(0.5 * math.pi * t))
    if name == "rectified":
        return 2.0 * (torch.log1p(-t) - torch.log(t))
    raise ValueError(f"unknown schedule {name!r}")


def _t_raw(name: str, lam: Tensor) -> Tensor:
    """The inverse of :func:`_lam_raw`: t in (0, 1) with log-SNR ``lam``, float64."""
    if name == "linear":
        q = torch.nn.functional.softplus(-lam)  # log(1 + e^-lam) = -log alpha_bar
        delta = _BETA1 - _BETA0
        return (torch.sqrt(_BETA0 ** 2 + 2.0 * delta * q) - _BETA0) / delta
    if name == "cosine":
        return torch.atan(torch.exp(-0.5 * lam)) * (2.0 / math.pi)
    if name == "rectified":
        return torch.sigmoid(-0.5 * lam)
    raise ValueError(f"unknown schedule {name!r}")


def alpha_sigma(lam: Tensor) -> tuple[Tensor, Tensor]:
    """Variance-preserving ``(alpha, sigma)`` of log-SNR ``lam`` (any shape)."""
    return torch.sigmoid(lam).sqrt(), torch.sigmoid(-lam).sqrt()


class NoiseSchedule:
    """A truncated schedule: t in [0, 1] -> log-SNR in [lambda_min, lambda_max].

    Args:
        name: ``linear``, ``cosine`` or ``rectified`` (module docstring).
        lambda_min: log-SNR at t = 1 (the prior end; -10 leaves alpha^2 ~ 4.5e-5).
        lambda_max: log-SNR at t = 0 (the data end; 10 leaves sigma ~ 0.0067).
    """

    def __init__(self, name: ScheduleName = "cosine", lambda_min: float = -10.0,
                 lambda_max: float = 10.0):
        if name not in SCHEDULES:
            raise ValueError(f"unknown schedule {name!r}; choose one of {SCHEDULES}")
        if not lambda_min < lambda_max:
            raise ValueError(f"lambda_min {lambda_min} must be below lambda_max {lambda_max}")
        self.name, self.lambda_min, self.lambda_max = name, float(lambda_min), float(lambda_max)
        ends = _t_raw(name, torch.tensor([lambda_max, lambda_min], dtype=torch.float64))
        self._t0, self._t1 = float(ends[0]), float(ends[1])

    def __repr__(self) -> str:
        return (f"NoiseSchedule({self.name!r}, lambda_min={self.lambda_min}, "
                f"lambda_max={self.lambda_max})")

    def _raw_t(self, t: Tensor) -> Tensor:
        return self._t0 + t.double() * (self._t1 - self._t0)

    def log_snr(self, t: Tensor) -> Tensor:
        """lambda(t) for t in [0, 1] (any shape), in t's dtype; exact at both ends."""
        lam = _lam_raw(self.name, self._raw_t(t))
        return lam.clamp(self.lambda_min, self.lambda_max).to(t.dtype)

    def t_of(self, lam: Tensor) -> Tensor:
        """The inverse: t in [0, 1] whose log-SNR is ``lam``."""
        raw = _t_raw(self.name, lam.double().clamp(self.lambda_min, self.lambda_max))
        return ((raw - self._t0) / (self._t1 - self._t0)).clamp(0, 1).to(lam.dtype)

    def dlog_snr_dt(self, t: Tensor) -> Tensor:
        """d lambda / d t (negative) by autograd, float64; the bound's weight."""
        with torch.enable_grad():
            tt = t.detach().double().requires_grad_(True)
            lam = _lam_raw(self.name, self._raw_t(tt))
            (grad,) = torch.autograd.grad(lam.sum(), tt)
        return grad

    def grid(self, steps: int, device: torch.device | str = "cpu") -> Tensor:
        """``steps + 1`` log-SNRs from lambda_min to lambda_max (a sampler's path from
        noise to data), equally spaced in t."""
        t = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64, device=device)
        return self.log_snr(t)
