"""The one adversarial objective module: every model with a discriminator uses it.

The GAN family (``dcgan``, ``wgan-gp``, ``sngan``), SRGAN and the pix2pix colorizer take
their D and G losses from here; kept apart from the networks and the models (as
NVlabs/edm keeps its loss). ``kind`` is
``ns`` (non-saturating, Goodfellow et al. 2014), ``hinge`` (Lim & Ye 2017; Miyato et al.
2018), ``ls`` (least squares, Mao et al. 2017, https://arxiv.org/abs/1611.04076, as
CycleGAN uses it: D's loss is halved there) or ``wgan-gp`` (Gulrajani et al. 2017,
https://arxiv.org/abs/1704.00028). Scores are
D's real-valued outputs (logits for ``ns``), of any shape (a PatchGAN's [N, 1, h, w]
patch logits too): losses are means over every score. ``ns`` on logits is the binary
cross-entropy against 1 (real) and 0 (fake) of pix2pix and SRGAN, in its softplus form.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["d_objective", "g_objective", "gradient_penalty"]


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor,
                     eps: Tensor | None = None) -> Tensor:
    """WGAN-GP penalty E[(||grad_x D(x_hat)||_2 - 1)^2], x_hat = eps x + (1 - eps) x_fake.

    Args:
        critic: images [N, C, H, W] -> scores [N].
        real, fake: [N, C, H, W]. eps: [N] mixing weights (default U(0, 1), global RNG).

    Returns:
        Scalar penalty, differentiable w.r.t. the critic's parameters (double backward).
    """
    if eps is None:
        eps = torch.rand(real.shape[0], device=real.device, dtype=real.dtype)
    eps = eps.view(-1, 1, 1, 1)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1).pow(2).mean()


def d_objective(kind: str, real: Tensor, fake: Tensor) -> Tensor:
    """D's adversarial loss from its scores on real [N] and generated [N] images."""
    if kind == "ns":
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    if kind == "ls":
        return (real - 1).pow(2).mean() + fake.pow(2).mean()
    return fake.mean() - real.mean()  # wgan-gp (the drift term is added as a penalty)


def g_objective(kind: str, fake: Tensor) -> Tensor:
    """G's loss from D's scores [N] on generated images."""
    if kind == "ls":
        return (fake - 1).pow(2).mean()
    return F.softplus(-fake).mean() if kind == "ns" else -fake.mean()
