"""Conditioning vectors for a denoising network: noise level (and optionally a class).

The noise level is embedded with sinusoidal features (Vaswani et al. 2017, as DDPM, Ho et
al. 2020, https://arxiv.org/abs/2006.11239, embeds its timestep) of the log-SNR mapped to
[0, 1000], followed by a two-layer MLP. A class label adds a learned vector; index
``num_classes`` is the *null* label of classifier-free guidance (Ho & Salimans 2022,
https://arxiv.org/abs/2207.12598), the label the network sees when training drops the
real one.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["sinusoidal", "NoiseLevelEmbedding"]


def sinusoidal(v: Tensor, dim: int) -> Tensor:
    """[N] values -> [N, dim] features ``sin(v f_i), cos(v f_i)`` with geometric
    frequencies f_i from 1 to 1/10000 (dim must be even)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=v.device,
                                                         dtype=torch.float32) / half)
    angles = v.float()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class NoiseLevelEmbedding(nn.Module):
    """log-SNR [N] (and labels [N] or None) -> conditioning vector [N, dim].

    Args:
        dim: output size (even).
        lambda_min, lambda_max: the log-SNR range mapped to [0, 1000] before the features.
        num_classes: 0 for an unconditional network; otherwise K classes plus the null
            label K (``labels=None`` means "all null").
    """

    def __init__(self, dim: int, lambda_min: float, lambda_max: float, num_classes: int = 0):
        super().__init__()
        if dim % 2:
            raise ValueError(f"embedding size must be even, got {dim}")
        self.dim, self.lo, self.hi = dim, float(lambda_min), float(lambda_max)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.SiLU(), nn.Linear(2 * dim, dim))
        self.num_classes = num_classes
        self.label = nn.Embedding(num_classes + 1, dim) if num_classes else None

    def forward(self, lam: Tensor, labels: Tensor | None = None) -> Tensor:
        level = 1000.0 * (lam - self.lo) / (self.hi - self.lo)
        out = self.mlp(sinusoidal(level, self.dim))
        if self.label is not None:
            if labels is None:
                labels = torch.full((len(lam),), self.num_classes, device=lam.device,
                                    dtype=torch.long)
            out = out + self.label(labels)
        return out
