"""Frozen copies of the pixel likelihoods as they were before :mod:`genvision.distributions`.

Kept verbatim (from ``models/vae.py`` and ``models/pixel_heads.py`` at commit 7879fe0) so
``tests/test_distributions.py`` can show the shared implementations give the same numbers
and draw the same samples from the same generator.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def vae_bernoulli_log_prob(params: Tensor, x: Tensor) -> Tensor:
    return x * params - F.softplus(params)


def vae_discretized_logistic_log_prob(x: Tensor, mean: Tensor, log_scale: Tensor) -> Tensor:
    log_scale = log_scale.clamp(min=-7.0)
    inv_s = torch.exp(-log_scale)
    a = (x - mean + 0.5 / 255) * inv_s  # upper edge
    b = (x - mean - 0.5 / 255) * inv_s  # lower edge
    d = inv_s / 255  # a - b > 0
    log_expm1_d = d + torch.log(-torch.expm1(-d))  # log(e^d - 1), stable for all d > 0
    interior = b - F.softplus(a) - F.softplus(b) + log_expm1_d
    lowest = F.logsigmoid(a)  # P(X <= upper edge of bin 0)
    highest = -F.softplus(b)  # P(X >= lower edge of bin 255) = 1 - sigmoid(b)
    return torch.where(x < 0.5 / 255, lowest, torch.where(x > 1 - 0.5 / 255, highest, interior))


def _noise(like: Tensor, generator: torch.Generator | None, kind: str) -> Tensor:
    fn = torch.rand if kind == "rand" else torch.randn
    dev = generator.device if generator is not None else like.device
    return fn(like.shape, generator=generator, device=dev, dtype=like.dtype).to(like.device)


def vae_draw(likelihood: str, params: Tensor, generator: torch.Generator | None,
             mean: bool) -> Tensor:
    if likelihood == "bernoulli":
        p = torch.sigmoid(params)
        return p if mean else (_noise(p, generator, "rand") < p).to(p.dtype)
    mu, log_s = params.chunk(2, dim=1)
    if not mean:
        u = _noise(mu, generator, "rand").clamp(1e-5, 1 - 1e-5)
        mu = mu + log_s.clamp(min=-7.0).exp() * (u.log() - (-u).log1p())
    return (mu.clamp(0, 1) * 255).round() / 255


def head_bernoulli_log_prob_map(params: Tensor, x: Tensor) -> Tensor:
    return -F.binary_cross_entropy_with_logits(params, x, reduction="none")


def head_bernoulli_sample(params: Tensor, generator: torch.Generator | None) -> Tensor:
    u = torch.rand(params.shape[0], generator=generator, device=params.device)
    return (u < torch.sigmoid(params[:, 0])).to(params.dtype)


def head_categorical_log_prob_map(params: Tensor, x: Tensor, levels: int) -> Tensor:
    n, cp, h, w = params.shape
    split = params.view(n, x.shape[1], cp // x.shape[1], h, w)
    index = torch.round(x * (levels - 1)).long().clamp_(0, levels - 1)
    logp = F.log_softmax(split, dim=2)
    return logp.gather(2, index.unsqueeze(2)).squeeze(2)


def head_categorical_sample(params: Tensor, generator: torch.Generator | None,
                            levels: int) -> Tensor:
    probs = torch.softmax(params.double(), dim=1)
    u = torch.rand(params.shape[0], 1, generator=generator, device=params.device,
                   dtype=torch.float64)
    k = (probs.cumsum(1) < u).sum(1).clamp_(max=levels - 1)
    return k.to(params.dtype) / (levels - 1)


def head_mixture_log_prob_map(params: Tensor, x: Tensor, n_mix: int, levels: int) -> Tensor:
    n, cp, h, w = params.shape
    p = params.view(n, x.shape[1], cp // x.shape[1], h, w)
    m = n_mix
    logits, mu, log_s = p[:, :, :m], torch.sigmoid(p[:, :, m:2 * m]), \
        p[:, :, 2 * m:].clamp(min=-7.0)
    xe = x.unsqueeze(2)
    half = 0.5 / (levels - 1)
    inv_s = torch.exp(-log_s)
    upper = (xe + half - mu) * inv_s
    lower = (xe - half - mu) * inv_s
    log_cdf_upper = F.logsigmoid(upper)
    log_one_minus_cdf_lower = F.logsigmoid(-lower)
    gap = -torch.expm1(F.logsigmoid(lower) - log_cdf_upper)
    mid = log_cdf_upper + torch.log(gap.clamp_min(1e-12))
    first, last = xe < half, xe > 1 - half
    log_bin = torch.where(first, log_cdf_upper, torch.where(last, log_one_minus_cdf_lower, mid))
    return torch.logsumexp(F.log_softmax(logits, dim=2) + log_bin, dim=2)


def head_mixture_sample(params: Tensor, generator: torch.Generator | None, n_mix: int,
                        levels: int) -> Tensor:
    m = n_mix
    logits, mu, log_s = params[:, :m], torch.sigmoid(params[:, m:2 * m]), \
        params[:, 2 * m:].clamp(min=-7.0)
    n = params.shape[0]
    u = torch.rand(n, 2, generator=generator, device=params.device,
                   dtype=torch.float64).clamp_(1e-9, 1 - 1e-9)
    probs = torch.softmax(logits.double(), dim=1)
    comp = (probs.cumsum(1) < u[:, :1]).sum(1).clamp_(max=m - 1)
    pick = comp[:, None]
    v = mu.double().gather(1, pick)[:, 0] + torch.exp(log_s.double().gather(1, pick)[:, 0]) \
        * (torch.log(u[:, 1]) - torch.log1p(-u[:, 1]))
    k = torch.round(v.clamp(0, 1) * (levels - 1))
    return (k / (levels - 1)).to(params.dtype)
