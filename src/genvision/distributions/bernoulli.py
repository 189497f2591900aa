"""Bernoulli pixels parameterised by logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import sum_image, uniform


class Bernoulli:
    """p(x = 1) = sigmoid(logits), independently per value.

    Args:
        logits: any shape, e.g. [N, C, H, W] (or [..., C, H, W] for ``log_prob``).
    """

    def __init__(self, logits: Tensor):
        self.logits = logits

    @property
    def mean(self) -> Tensor:
        """sigmoid(logits), the shape of ``logits``."""
        return torch.sigmoid(self.logits)

    def log_prob_map(self, x: Tensor) -> Tensor:
        """log p(x) elementwise: x in {0, 1} (or [0, 1]) broadcastable with ``logits``.

        Written as x log sigmoid(l) + (1 - x) log sigmoid(-l): no cancellation for large
        |l| (unlike x l - softplus(l)), and the gradient is exactly x - sigmoid(l) at l = 0.
        """
        lg = self.logits
        return x * F.logsigmoid(lg) + (1 - x) * F.logsigmoid(-lg)

    def log_prob(self, x: Tensor) -> Tensor:
        """Nats per image: sum of :meth:`log_prob_map` over the last three dims, [...]."""
        return sum_image(self.log_prob_map(x))

    def from_uniform(self, u: Tensor) -> Tensor:
        """Values from uniforms ``u`` (the shape of ``logits``): 1 where u < p, else 0."""
        return (u < self.mean).to(self.logits.dtype)

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        """A draw, the shape of ``logits``; one ``torch.rand`` of that shape."""
        lg = self.logits
        return self.from_uniform(uniform(lg.shape, generator, lg.device, lg.dtype))
