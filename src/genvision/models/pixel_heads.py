"""Per-pixel output distributions of the fully visible (autoregressive) image models.

A network outputs ``P`` parameters per data channel at every pixel, laid out channel-group
major: ``params[:, c*P:(c+1)*P]`` belong to data channel ``c`` (see
:mod:`genvision.nn.masked` for why that layout keeps R -> G -> B causal). A head turns them
into an exact log-likelihood and draws values one channel of one pixel at a time; the
maths lives in :mod:`genvision.distributions` (shared with the VAE decoders).

* :class:`BernoulliHead` -- binary images, P = 1 logit.
* :class:`CategoricalHead` -- ``levels``-way softmax per channel (256 for 8-bit images,
  van den Oord et al. 2016, https://arxiv.org/abs/1601.06759).
* :class:`LogisticMixtureHead` -- discretised mixture of logistics per channel (Salimans et
  al. 2017, PixelCNN++, https://arxiv.org/abs/1701.05517), P = 3 * n_mix; channels are
  coupled through the causal channel masks rather than PixelCNN++'s linear coefficients.

Values are floats in [0, 1]: binary {0, 1}; ``levels`` levels as ``k / (levels - 1)``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..distributions import (
    Bernoulli,
    Categorical,
    DiscretizedLogisticMixture,
)
from .sampling import SampleRNG, as_sample_rng

__all__ = ["BernoulliHead", "CategoricalHead", "LogisticMixtureHead", "PixelHead", "make_head"]


class PixelHead(nn.Module):
    """Base class: ``P`` parameters per data channel -> log p(x) and per-channel draws."""

    kind: str = "?"
    params_per_channel: int = 1

    def log_prob_map(self, params: Tensor, x: Tensor) -> Tensor:
        """log p(x_c,ij | params) per value: params [N, C*P, H, W], x [N, C, H, W] -> same as x."""
        raise NotImplementedError

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        """Log-likelihood in nats per image, [N]."""
        return self.log_prob_map(params, x).flatten(1).sum(1)

    def sample_channel(self, params: Tensor,
                       rng: SampleRNG | torch.Generator | None) -> Tensor:
        """Draw one channel of one pixel: params [N, P] -> values [N] in [0, 1].

        Row k draws from ``rng``'s generator k alone (per-sample seeds; a torch.Generator
        or None first becomes N seeded streams, see ``as_sample_rng``). Every path that
        samples (naive, cached, completion) calls this with the same streams in the same
        order, so equal parameters give identical images.
        """
        raise NotImplementedError

    def protocol(self) -> dict[str, object]:
        return {"likelihood": self.kind}

    def network_input(self, x: Tensor) -> Tensor:
        """What the first layer sees: values centred on 0 (``2x - 1``)."""
        return 2 * x - 1

    @staticmethod
    def split(params: Tensor, channels: int) -> Tensor:
        """[N, C*P, H, W] -> [N, C, P, H, W]."""
        n, cp, h, w = params.shape
        return params.view(n, channels, cp // channels, h, w)


class BernoulliHead(PixelHead):
    """One logit per channel: :class:`~genvision.distributions.Bernoulli`."""

    kind = "bernoulli"
    params_per_channel = 1

    def log_prob_map(self, params: Tensor, x: Tensor) -> Tensor:
        return Bernoulli(params).log_prob_map(x)

    def sample_channel(self, params: Tensor,
                       rng: SampleRNG | torch.Generator | None) -> Tensor:
        rng = as_sample_rng(rng, params.shape[0])
        return Bernoulli(params[:, 0]).from_uniform(
            rng.rand(dtype=params.dtype, device=params.device))  # one uniform per image


class CategoricalHead(PixelHead):
    """Softmax over ``levels`` values per channel: a
    :class:`~genvision.distributions.Categorical`; value k/(levels-1) is class k."""

    kind = "categorical"

    def __init__(self, levels: int = 256):
        super().__init__()
        if levels < 2:
            raise ValueError(f"a categorical head needs at least 2 levels, got {levels}")
        self.levels = levels
        self.params_per_channel = levels

    def log_prob_map(self, params: Tensor, x: Tensor) -> Tensor:
        return Categorical(self.split(params, x.shape[1]), dim=2).log_prob_map(x)

    def sample_channel(self, params: Tensor,
                       rng: SampleRNG | torch.Generator | None) -> Tensor:
        rng = as_sample_rng(rng, params.shape[0])
        return Categorical(params, dim=1).from_uniform(
            rng.rand(1, dtype=torch.float64, device=params.device))  # [N, 1]

    def protocol(self) -> dict[str, object]:
        return {"likelihood": self.kind, "levels": self.levels}


class LogisticMixtureHead(PixelHead):
    """Discretised mixture of ``n_mix`` logistics over ``levels`` bins of [0, 1].

    Parameters per channel: ``n_mix`` weight logits, ``n_mix`` locations (through a
    sigmoid, so they start inside [0, 1]) and ``n_mix`` log-scales;
    :class:`~genvision.distributions.DiscretizedLogisticMixture` does the rest (edge bins
    open to -inf / +inf, so the L values' probabilities sum to exactly 1).
    """

    kind = "logistic_mixture"

    def __init__(self, n_mix: int = 5, levels: int = 256):
        super().__init__()
        self.n_mix, self.levels = n_mix, levels
        self.params_per_channel = 3 * n_mix

    def _mixture(self, p: Tensor, dim: int) -> DiscretizedLogisticMixture:
        """The mixture of parameters p with the 3*M parameters on ``dim``."""
        logits, means, log_scales = p.split(self.n_mix, dim=dim)
        return DiscretizedLogisticMixture(logits, torch.sigmoid(means), log_scales,
                                          self.levels, dim=dim)

    def log_prob_map(self, params: Tensor, x: Tensor) -> Tensor:
        return self._mixture(self.split(params, x.shape[1]), 2).log_prob_map(x)

    def sample_channel(self, params: Tensor,
                       rng: SampleRNG | torch.Generator | None) -> Tensor:
        rng = as_sample_rng(rng, params.shape[0])
        return self._mixture(params, 1).from_uniform(
            rng.rand(2, dtype=torch.float64, device=params.device))  # [N, 2]

    def protocol(self) -> dict[str, object]:
        return {"likelihood": self.kind, "levels": self.levels, "n_mix": self.n_mix}


def make_head(data_kind: str, head: str = "auto", levels: int = 256, n_mix: int = 5
              ) -> PixelHead:
    """The head for a data kind: ``auto`` = Bernoulli for binary data, categorical otherwise.

    Raises:
        ValueError: a head that cannot model the data kind.
    """
    if head == "auto":
        head = "bernoulli" if data_kind == "binary" else "categorical"
    if head == "bernoulli":
        if data_kind != "binary":
            raise ValueError(f"a Bernoulli head models binary data, not {data_kind}")
        return BernoulliHead()
    if data_kind == "binary":
        raise ValueError(f"the {head} head models 8-bit levels; binary data needs bernoulli")
    if head == "categorical":
        return CategoricalHead(levels)
    if head == "logistic_mixture":
        return LogisticMixtureHead(n_mix, levels)
    raise ValueError(f"unknown head {head!r}; use auto, bernoulli, categorical or "
                     "logistic_mixture")
