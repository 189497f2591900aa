"""Samplers of Gaussian diffusion as plain functions (after NVlabs/edm's ``generate.py``).

Every sampler walks a grid of log-SNRs from ``lambda_min`` (noise) to ``lambda_max``
(data) with a *denoiser* ``eps_hat(z, lam) -> eps`` that predicts the noise in the
variance-preserving latent ``z = alpha x + sigma eps`` (shapes: z [N, C, H, W], lam [N]).
The model turns any parameterisation (epsilon, v, flow-matching velocity) into that one
callable, so one sampler serves every model.

* :func:`ddim` (Song et al. 2020, https://arxiv.org/abs/2010.02502): with ``eta = 0`` the
  deterministic DDIM step, which is also exactly the Euler step of the probability-flow
  ODE in the coordinates ``(z / alpha, sigma / alpha)`` -- for the rectified schedule
  that is the Euler step of flow matching in its own coordinates
  ``z_fm = (1 - t) x + t eps``. With ``eta = 1`` it is the ancestral DDPM step (Ho et al.
  2020, https://arxiv.org/abs/2006.11239): a draw from the posterior q(z_s | z_t, x_hat).
* :func:`heun`: the second-order Heun solver of EDM (Karras et al. 2022,
  https://arxiv.org/abs/2206.00364, Algorithm 1 without churn) on the same ODE; 2N - 1
  network evaluations for N steps.
* :func:`guided`: classifier-free guidance (Ho & Salimans 2022,
  https://arxiv.org/abs/2207.12598) ``eps_u + w (eps_c - eps_u)``: w = 0 is the
  unconditional model, w = 1 the conditional one, w > 1 guides harder.
* :func:`inpaint`: RePaint (Lugmayr et al. 2022, https://arxiv.org/abs/2201.09865):
  after every step the known pixels are replaced by a fresh draw of q(z_s | x_known) and,
  with ``resample > 1``, the step is repeated after renoising, which lets the unknown
  pixels agree with the known ones instead of only being pasted beside them.

Every random number comes from a :class:`~genvision.models.sampling.SampleRNG`, one stream
per sample, so sample k depends only on its seed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .diffusion_schedule import alpha_sigma
from .sampling import SampleRNG

__all__ = ["Denoiser", "ddim", "ddim_step", "heun", "guided", "inpaint", "renoise",
           "predict_x"]

#: eps_hat(z [N, C, H, W], lam [N]) -> eps [N, C, H, W]
Denoiser = Callable[[Tensor, Tensor], Tensor]


def _col(v: Tensor, like: Tensor) -> Tensor:
    """A per-sample scalar [N] (or a 0-d value) as [N, 1, 1, 1] in ``like``'s dtype."""
    return v.to(like.dtype).reshape(-1, *([1] * (like.dim() - 1)))


def predict_x(z: Tensor, lam: Tensor, eps: Tensor, clip: bool) -> Tensor:
    """x_hat = (z - sigma eps) / alpha, optionally clipped to the data range [-1, 1]."""
    alpha, sigma = alpha_sigma(_col(lam, z))
    x = (z - sigma * eps) / alpha
    return x.clamp(-1, 1) if clip else x


def _full(lam: Tensor, n: int) -> Tensor:
    return lam.expand(n) if lam.dim() == 0 else lam


def ddim_step(eps_hat: Denoiser, z: Tensor, lam_t: Tensor, lam_s: Tensor, eta: float,
              rng: SampleRNG | None, clip: bool) -> Tensor:
    """One step z_t -> z_s (lam_s > lam_t): DDIM with noise level ``eta`` (0: the ODE)."""
    n = len(z)
    lam_t, lam_s = _full(lam_t, n), _full(lam_s, n)
    eps = eps_hat(z, lam_t)
    x = predict_x(z, lam_t, eps, clip)
    if clip:  # keep eps consistent with the clipped x (as DDIM's reference code does)
        alpha_t, sigma_t = alpha_sigma(_col(lam_t, z))
        eps = (z - alpha_t * x) / sigma_t
    alpha_s, sigma_s = alpha_sigma(_col(lam_s, z))
    # q(z_s | z_t, x) has variance sigma_s^2 (1 - SNR_t / SNR_s)
    var = sigma_s ** 2 * -torch.expm1(_col(lam_t - lam_s, z))
    c = eta * var.clamp(min=0).sqrt()
    z_s = alpha_s * x + (sigma_s ** 2 - c ** 2).clamp(min=0).sqrt() * eps
    if eta > 0:
        if rng is None:
            raise ValueError("a stochastic step (eta > 0) needs a SampleRNG")
        z_s = z_s + c * rng.randn(*z.shape[1:], dtype=z.dtype, device=z.device)
    return z_s


def ddim(eps_hat: Denoiser, z: Tensor, grid: Tensor, *, eta: float = 0.0,
         rng: SampleRNG | None = None, clip: bool = True,
         on_step: Callable[[int, Tensor], Tensor] | None = None) -> Tensor:
    """Walk ``grid`` (log-SNRs, increasing, [steps + 1]) from z at grid[0] to grid[-1].

    ``on_step(i, z)`` (optional) may replace z after step i (inpainting uses it).
    Returns z at grid[-1], [N, C, H, W].
    """
    for i in range(len(grid) - 1):
        z = ddim_step(eps_hat, z, grid[i], grid[i + 1], eta, rng, clip)
        if on_step is not None:
            z = on_step(i, z)
    return z


def heun(eps_hat: Denoiser, z: Tensor, grid: Tensor, *,
         on_step: Callable[[int, Tensor], Tensor] | None = None) -> Tensor:
    """EDM's deterministic Heun solver of dx/ds = eps_hat in x = z / alpha,
    s = sigma / alpha = exp(-lam / 2); the last step is a plain Euler step."""
    n = len(z)
    for i in range(len(grid) - 1):
        lam_t, lam_s = grid[i].expand(n), grid[i + 1].expand(n)
        a_t, a_s = alpha_sigma(_col(lam_t, z))[0], alpha_sigma(_col(lam_s, z))[0]
        s_t, s_s = torch.exp(-0.5 * _col(lam_t, z)), torch.exp(-0.5 * _col(lam_s, z))
        x = z / a_t
        d = eps_hat(z, lam_t)
        x_next = x + (s_s - s_t) * d
        if i < len(grid) - 2:  # second-order correction with the slope at the next point
            d_next = eps_hat(x_next * a_s, lam_s)
            x_next = x + (s_s - s_t) * 0.5 * (d + d_next)
        z = x_next * a_s
        if on_step is not None:
            z = on_step(i, z)
    return z


def guided(eps_cond: Callable[[Tensor, Tensor, Tensor | None], Tensor], y: Tensor,
           weight: float) -> Denoiser:
    """Classifier-free guidance: ``eps_u + weight * (eps_c - eps_u)`` as one denoiser.

    ``eps_cond(z, lam, labels)`` with labels None meaning the null (unconditional) label.
    weight 0 and 1 evaluate only one network pass (the unconditional / conditional one).
    """
    def eps_hat(z: Tensor, lam: Tensor) -> Tensor:
        if weight == 0:
            return eps_cond(z, lam, None)
        if weight == 1:
            return eps_cond(z, lam, y)
        e_u, e_c = eps_cond(z, lam, None), eps_cond(z, lam, y)
        return e_u + weight * (e_c - e_u)

    return eps_hat


def renoise(z_s: Tensor, lam_s: Tensor, lam_t: Tensor, noise: Tensor) -> Tensor:
    """A draw of the forward step q(z_t | z_s) (lam_t < lam_s) given standard noise:
    ``z_t = (alpha_t / alpha_s) z_s + sqrt(sigma_t^2 - (alpha_t / alpha_s)^2 sigma_s^2) noise``
    (VDM eq. 3); z_s, noise [N, C, H, W], lam_s, lam_t [N]."""
    a_t, s_t = alpha_sigma(_col(lam_t, z_s))
    a_s, s_s = alpha_sigma(_col(lam_s, z_s))
    ratio = a_t / a_s
    return ratio * z_s + (s_t ** 2 - ratio ** 2 * s_s ** 2).clamp(min=0).sqrt() * noise


def inpaint(step: Callable[[Tensor, Tensor, Tensor], Tensor], z: Tensor, grid: Tensor,
            x_known: Tensor, keep: Tensor, rng: SampleRNG, resample: int = 1) -> Tensor:
    """RePaint: walk ``grid`` with ``step(z, lam_t, lam_s)`` while holding known pixels.

    Args:
        step: one sampler step z_t -> z_s.
        z: start noise [N, C, H, W] at grid[0].
        x_known: the images in [-1, 1] [N, C, H, W]; ``keep`` (bool, broadcastable) marks
            the pixels to hold.
        resample: repeats of each step (RePaint's r); the repeats renoise z_s back to
            z_t with the forward process q(z_t | z_s) before stepping again.
    """
    n = len(z)

    def noised_known(lam: Tensor) -> Tensor:
        alpha, sigma = alpha_sigma(_col(lam.expand(n), z))
        return alpha * x_known + sigma * rng.randn(*z.shape[1:], dtype=z.dtype, device=z.device)

    z = torch.where(keep, noised_known(grid[0]), z)
    for i in range(len(grid) - 1):
        lam_t, lam_s = grid[i], grid[i + 1]
        for r in range(resample):
            z_s = step(z, lam_t, lam_s)
            z_s = torch.where(keep, noised_known(lam_s), z_s)
            if r == resample - 1:
                break
            noise = rng.randn(*z.shape[1:], dtype=z.dtype, device=z.device)
            z = renoise(z_s, lam_s.expand(n), lam_t.expand(n), noise)
        z = z_s
    return z
