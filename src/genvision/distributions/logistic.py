"""Discretised logistic and its mixture (PixelCNN++, Salimans et al. 2017,
https://arxiv.org/abs/1701.05517, eq. 2).

Value k / (L-1) owns the bin [(k - 0.5)/(L-1), (k + 0.5)/(L-1)] of a continuous logistic;
the first bin extends to -inf and the last to +inf, so the L probabilities sum to exactly 1.
The interior bin mass sigmoid(a) - sigmoid(b) (a, b the bin's upper / lower edge in scale
units) is evaluated as exp(b - softplus(a) - softplus(b)) * expm1(a - b): stable in both
tails and for any scale, with no pdf approximation and no floor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import sum_image, to_levels, uniform

#: log-scales are floored here (PixelCNN++): a bin then still holds >= ~e^-7 of a logistic
MIN_LOG_SCALE = -7.0


def discretized_logistic_log_prob(x: Tensor, mean: Tensor, log_scale: Tensor,
                                  levels: int = 256) -> Tensor:
    """log P(x) under a discretised logistic, elementwise, in nats.

    Args:
        x: values on the ``levels`` levels of [0, 1]; broadcastable with mean / log_scale.
        mean: the logistic's location (on the [0, 1] scale).
        log_scale: log of its scale, clamped at ``MIN_LOG_SCALE``.
        levels: number of values (256 for 8-bit pixels).

    Returns:
        log-probabilities, the broadcast shape.
    """
    half = 0.5 / (levels - 1)
    log_scale = log_scale.clamp(min=MIN_LOG_SCALE)
    inv_s = torch.exp(-log_scale)
    a = (x - mean + half) * inv_s  # upper edge
    b = (x - mean - half) * inv_s  # lower edge
    d = inv_s * (2 * half)  # a - b > 0
    log_expm1_d = d + torch.log(-torch.expm1(-d))  # log(e^d - 1), stable for all d > 0
    interior = b - F.softplus(a) - F.softplus(b) + log_expm1_d
    lowest = F.logsigmoid(a)  # P(X <= upper edge of the first bin)
    highest = -F.softplus(b)  # P(X >= lower edge of the last bin) = 1 - sigmoid(b)
    return torch.where(x < half, lowest, torch.where(x > 1 - half, highest, interior))


def _logistic(mean: Tensor, log_scale: Tensor, u: Tensor) -> Tensor:
    """The logistic quantile at u: mean + s * logit(u)."""
    return mean + log_scale.clamp(min=MIN_LOG_SCALE).exp() * (u.log() - (-u).log1p())


class DiscretizedLogistic:
    """One discretised logistic per value.

    Args:
        mean, log_scale: e.g. [N, C, H, W] each (broadcastable).
        levels: number of values of [0, 1].
    """

    def __init__(self, mean: Tensor, log_scale: Tensor, levels: int = 256):
        self.loc, self.log_scale, self.levels = mean, log_scale, levels

    @property
    def mean(self) -> Tensor:
        """The location rounded onto the levels (what ``mean=True`` sampling shows)."""
        return to_levels(self.loc, self.levels)

    def log_prob_map(self, x: Tensor) -> Tensor:
        """log p(x) elementwise, the broadcast shape of x, mean and log_scale."""
        return discretized_logistic_log_prob(x, self.loc, self.log_scale, self.levels)

    def log_prob(self, x: Tensor) -> Tensor:
        """Nats per image: sum of :meth:`log_prob_map` over the last three dims, [...]."""
        return sum_image(self.log_prob_map(x))

    def from_uniform(self, u: Tensor) -> Tensor:
        """Values from uniforms u (mean's shape): the logistic quantile, rounded to levels.

        u is clamped to [1e-5, 1 - 1e-5] so the quantile stays finite.
        """
        u = u.clamp(1e-5, 1 - 1e-5)
        return to_levels(_logistic(self.loc, self.log_scale, u), self.levels)

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        """A draw, mean's shape; one ``torch.rand`` of that shape and dtype."""
        return self.from_uniform(uniform(self.loc.shape, generator, self.loc.device,
                                         self.loc.dtype))


class DiscretizedLogisticMixture:
    """A mixture of discretised logistics per value (PixelCNN++).

    Args:
        logits, means, log_scales: mixture weights' logits, locations and log-scales, all
            one shape with the ``M`` components on ``dim``: e.g. [N, C, M, H, W] with
            ``dim=2`` for images, or [N, M] with ``dim=1`` for one channel of one pixel.
        levels: number of values of [0, 1].
        dim: the component dimension.
    """

    def __init__(self, logits: Tensor, means: Tensor, log_scales: Tensor, levels: int = 256,
                 dim: int = -1):
        self.logits, self.means, self.log_scales = logits, means, log_scales
        self.levels, self.dim = levels, dim

    def log_prob_map(self, x: Tensor) -> Tensor:
        """log p(x) elementwise: x has the parameters' shape without ``dim``.

        log sum_m pi_m P_m(x), as a logsumexp over log_softmax(logits) + log P_m(x).
        """
        log_bin = discretized_logistic_log_prob(x.unsqueeze(self.dim), self.means,
                                                self.log_scales, self.levels)
        return torch.logsumexp(F.log_softmax(self.logits, dim=self.dim) + log_bin, dim=self.dim)

    def log_prob(self, x: Tensor) -> Tensor:
        """Nats per image: sum of :meth:`log_prob_map` over the last three dims of x."""
        return sum_image(self.log_prob_map(x))

    def from_uniform(self, u: Tensor) -> Tensor:
        """Values from float64 uniforms u [..., 2] (batch shape + 2), computed in float64.

        u[..., 0] picks the component by inverse CDF of the weights, u[..., 1] is the
        logistic's quantile (both clamped to [1e-9, 1 - 1e-9]).
        """
        u = u.clamp(1e-9, 1 - 1e-9)
        m = self.logits.shape[self.dim]
        probs = torch.softmax(self.logits.double(), dim=self.dim).movedim(self.dim, -1)
        pick = (probs.cumsum(-1) < u[..., :1]).sum(-1).clamp_(max=m - 1).unsqueeze(-1)
        mu = self.means.double().movedim(self.dim, -1).gather(-1, pick)[..., 0]
        log_s = self.log_scales.clamp(min=MIN_LOG_SCALE).double().movedim(self.dim, -1) \
            .gather(-1, pick)[..., 0]
        v = mu + torch.exp(log_s) * (torch.log(u[..., 1]) - torch.log1p(-u[..., 1]))
        return to_levels(v, self.levels).to(self.means.dtype)

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        """A draw, the parameters' shape without ``dim``; two float64 uniforms per value."""
        shape = self.logits.movedim(self.dim, -1).shape[:-1] + (2,)
        return self.from_uniform(uniform(shape, generator, self.logits.device, torch.float64))
