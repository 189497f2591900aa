"""Categorical over ``levels`` equally spaced values of [0, 1]."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import sum_image, uniform


class Categorical:
    """Softmax over ``levels = logits.shape[dim]`` values; value k / (levels - 1) is class k.

    Args:
        logits: e.g. [N, C, L, H, W] with ``dim=2`` for images, or [N, L] with ``dim=1``
            for one channel of one pixel.
        dim: the dimension that holds the ``L`` classes.
    """

    def __init__(self, logits: Tensor, dim: int = -1):
        self.logits, self.dim = logits, dim
        self.levels = logits.shape[dim]

    def index(self, x: Tensor) -> Tensor:
        """Class of each value in [0, 1]: int64, the shape of x."""
        return torch.round(x * (self.levels - 1)).long().clamp_(0, self.levels - 1)

    def log_prob_map(self, x: Tensor) -> Tensor:
        """log p(x) elementwise: x has ``logits``' shape without ``dim``."""
        logp = F.log_softmax(self.logits, dim=self.dim)
        return logp.gather(self.dim, self.index(x).unsqueeze(self.dim)).squeeze(self.dim)

    def log_prob(self, x: Tensor) -> Tensor:
        """Nats per image: sum of :meth:`log_prob_map` over the last three dims of x."""
        return sum_image(self.log_prob_map(x))

    def from_uniform(self, u: Tensor) -> Tensor:
        """Inverse-CDF draw: u float64 [..., 1] (batch shape + 1) -> values [...] in [0, 1].

        The CDF is accumulated in float64 so the same uniform gives the same class on any
        machine (cheaper than multinomial and bit-stable).
        """
        probs = torch.softmax(self.logits.double(), dim=self.dim).movedim(self.dim, -1)
        k = (probs.cumsum(-1) < u).sum(-1).clamp_(max=self.levels - 1)
        return k.to(self.logits.dtype) / (self.levels - 1)

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        """A draw, ``logits``' shape without ``dim``; one float64 uniform per value."""
        shape = self.logits.movedim(self.dim, -1).shape[:-1] + (1,)
        return self.from_uniform(uniform(shape, generator, self.logits.device, torch.float64))
