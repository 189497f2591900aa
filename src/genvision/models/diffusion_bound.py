"""The variational bound of a diffusion model on the likelihood of discrete images.

For data x scaled to [-1, 1] and the variance-preserving latents ``z_lam = alpha x +
sigma eps`` (log-SNR lam in [lambda_min, lambda_max]), the negative log-likelihood of
the discrete image x is bounded by three terms (Kingma et al. 2021, VDM,
https://arxiv.org/abs/2107.00630, eq. 11 and 17), each in nats per image:

``-log P(x) <= prior + diffusion + decoder``

* **prior** ``KL(q(z_min | x) || N(0, I))``, closed form, >= 0 (tiny when lambda_min is
  very negative);
* **diffusion** the continuous-time loss ``1/2 int_{lambda_min}^{lambda_max}
  ||eps - eps_hat(z_lam, lam)||^2 d lam``, estimated by Monte Carlo over t with the
  schedule's weight ``-d lam / d t`` (an unbiased estimate of a non-negative integral);
  its discrete-time counterpart with T steps (VDM eq. 13) is
  ``T / 2 E_i[expm1(lam_{i-1} - lam_i) ||eps - eps_hat||^2]`` and tends to it as T grows;
* **decoder** ``-E log p(x | z_max)`` with VDM's discrete decoder: each pixel's value v
  among the data's levels (2 for binary, 256 for 8-bit) has probability proportional to
  ``exp(-(z - alpha v)^2 / (2 sigma^2))``, so it is a proper distribution over the
  discrete values (>= 0 nats) and the whole is a bound on the *discrete* likelihood.

The bound depends on the schedule only through its end points (VDM's invariance result);
the schedule's shape changes only the variance of the Monte Carlo estimate.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .diffusion_schedule import NoiseSchedule, alpha_sigma
from .sampling import SampleRNG

__all__ = ["levels", "prior_kl", "decoder_nll", "diffusion_loss", "diffusion_loss_discrete",
           "decoder_logits_binary"]


def levels(data_kind: str) -> int:
    """How many values a pixel can take: 2 for binary data, 256 for 8-bit data."""
    if data_kind == "binary":
        return 2
    if data_kind in ("grey8", "rgb8"):
        return 256
    raise ValueError(f"the diffusion bound needs discrete data, not {data_kind!r}")


def to_signed(x: Tensor) -> Tensor:
    """Images in [0, 1] -> [-1, 1] (binary {0, 1} -> {-1, 1}; 8-bit k/255 -> 2k/255 - 1)."""
    return 2.0 * x - 1.0


def _per_image(v: Tensor) -> Tensor:
    return v.flatten(1).sum(1)


def prior_kl(x: Tensor, lambda_min: float) -> Tensor:
    """KL(N(alpha x, sigma^2) || N(0, 1)) summed over pixels: x [N, ...] in [-1, 1] -> [N]."""
    lam = torch.tensor(lambda_min, dtype=torch.float64)
    alpha, sigma = alpha_sigma(lam)
    var = sigma ** 2
    kl = 0.5 * (alpha ** 2 * x.double() ** 2 + var - 1.0 - torch.log(var))
    return _per_image(kl).to(x.dtype)


def decoder_logits_binary(z: Tensor, lam: float) -> Tensor:
    """logit p(x = 1 | z) of the binary decoder: ``2 alpha z / sigma^2`` (values +-1)."""
    alpha, sigma = alpha_sigma(torch.tensor(lam, dtype=torch.float64))
    return (2.0 * alpha / sigma ** 2).to(z.dtype) * z


def decoder_log_probs(z: Tensor, lam: float, n_levels: int) -> Tensor:
    """log p(v | z) for every level v: z [N, C, H, W] -> [N, C, H, W, n_levels]."""
    alpha, sigma = alpha_sigma(torch.tensor(lam, dtype=torch.float64))
    values = torch.linspace(-1.0, 1.0, n_levels, dtype=torch.float64, device=z.device)
    logits = -(z.double()[..., None] - alpha * values) ** 2 / (2.0 * sigma ** 2)
    return torch.log_softmax(logits, dim=-1)


def decoder_nll(x: Tensor, z: Tensor, lam: float, n_levels: int) -> Tensor:
    """-log p(x | z) of the discrete decoder, per image: x in [-1, 1] on the levels,
    z [N, C, H, W] drawn at log-SNR ``lam`` -> [N]."""
    if n_levels == 2:
        logit = decoder_logits_binary(z.double(), lam)
        target = (x > 0).double()
        nll = torch.nn.functional.binary_cross_entropy_with_logits(logit, target,
                                                                   reduction="none")
        return _per_image(nll).to(x.dtype)
    index = torch.round((x.double() + 1.0) * 0.5 * (n_levels - 1)).long()
    logp = decoder_log_probs(z, lam, n_levels).gather(-1, index[..., None])[..., 0]
    return -_per_image(logp).to(x.dtype)


def _draw_t(rng: SampleRNG, k: int, device: torch.device) -> Tensor:
    """k stratified times per image in (0, 1): (j + u) / k, one u per image -> [N, k]."""
    u = rng.rand(1, dtype=torch.float64, device=device)
    return (torch.arange(k, dtype=torch.float64, device=device) + u) / k


def diffusion_loss(eps_hat: Callable[[Tensor, Tensor], Tensor], x: Tensor,
                   schedule: NoiseSchedule, rng: SampleRNG, k: int) -> Tensor:
    """Monte Carlo estimate of the continuous-time diffusion term, per image [N].

    ``k`` stratified times per image (each with fresh noise); the estimate of each image
    is the mean over its k draws of ``-1/2 d lam / d t ||eps - eps_hat||^2``.
    """
    t = _draw_t(rng, k, x.device)
    total = torch.zeros(len(x), dtype=torch.float64, device=x.device)
    for j in range(k):
        tj = t[:, j]
        lam = schedule.log_snr(tj)
        total += -0.5 * schedule.dlog_snr_dt(tj) * _sq_err(eps_hat, x, lam, rng)
    return (total / k).to(x.dtype)


def diffusion_loss_discrete(eps_hat: Callable[[Tensor, Tensor], Tensor], x: Tensor,
                            schedule: NoiseSchedule, rng: SampleRNG, steps: int,
                            k: int) -> Tensor:
    """The T-step discrete-time diffusion term (VDM eq. 13), Monte Carlo over k step
    indices per image (stratified), per image [N]. Tends to :func:`diffusion_loss` as
    ``steps`` grows; a finite T gives a bound of its own (a coarser one)."""
    u = _draw_t(rng, k, x.device)
    total = torch.zeros(len(x), dtype=torch.float64, device=x.device)
    for j in range(k):
        i = torch.clamp(torch.floor(u[:, j] * steps), max=steps - 1) + 1  # 1..T
        lam_t = schedule.log_snr(i / steps)
        lam_s = schedule.log_snr((i - 1) / steps)
        weight = 0.5 * steps * torch.expm1(lam_s - lam_t)
        total += weight * _sq_err(eps_hat, x, lam_t, rng)
    return (total / k).to(x.dtype)


def _sq_err(eps_hat: Callable[[Tensor, Tensor], Tensor], x: Tensor, lam: Tensor,
            rng: SampleRNG) -> Tensor:
    """||eps - eps_hat(z_lam, lam)||^2 per image, float64 [N]."""
    eps = rng.randn(*x.shape[1:], dtype=x.dtype, device=x.device)
    alpha, sigma = alpha_sigma(lam.to(x.dtype).reshape(-1, 1, 1, 1))
    z = alpha * x + sigma * eps
    return _per_image((eps - eps_hat(z, lam.to(x.dtype))).double() ** 2)
