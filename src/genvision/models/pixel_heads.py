"""Per-pixel output distributions of the fully visible (autoregressive) image models.

A network outputs ``P`` parameters per data channel at every pixel, laid out channel-group
major: ``params[:, c*P:(c+1)*P]`` belong to data channel ``c`` (see
:mod:`genvision.nn.masked` for why that layout keeps R -> G -> B causal). A head turns them
into an exact log-likelihood and draws values one channel of one pixel at a time.

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
import torch.nn.functional as F
from torch import Tensor, nn

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
    kind = "bernoulli"
    params_per_channel = 1

    def log_prob_map(self, params: Tensor, x: Tensor) -> Tensor:
        return -F.binary_cross_entropy_with_logits(params, x, reduction="none")

    def sample_channel(self, params: Tensor,
                       rng: SampleRNG | torch.Generator | None) -> Tensor:
        rng = as_sample_rng(rng, params.shape[0])
        u = rng.rand(dtype=params.dtype, device=params.device)  # [N]
        return (u < torch.sigmoid(params[:, 0])).to(params.dtype)


class CategoricalHead(PixelHead):
    """Softmax over ``levels`` values per channel; value k/(levels-1) is class k."""

    kind = "categorical"

    def __init__(self, levels: int = 256):
        super().__init__()
        if levels < 2:
            raise ValueError(f"a categorical head needs at least 2 levels, got {levels}")
        self.levels = levels
        self.params_per_channel = levels

    def index(self, x: Tensor) -> Tensor:
        return torch.round(x * (self.levels - 1)).long().clamp_(0, self.levels - 1)

    def log_prob_map(self, params: Tensor, x: Tensor) -> Tensor:
        logp = F.log_softmax(self.split(params, x.shape[1]), dim=2)  # [N, C, L, H, W]
        return logp.gather(2, self.index(x).unsqueeze(2)).squeeze(2)

    def sample_channel(self, params: Tensor,
                       rng: SampleRNG | torch.Generator | None) -> Tensor:
        rng = as_sample_rng(rng, params.shape[0])
        # inverse-CDF with one uniform per image: cheaper than multinomial and bit-stable
        probs = torch.softmax(params.double(), dim=1)
        u = rng.rand(1, dtype=torch.float64, device=params.device)
        k = (probs.cumsum(1) < u).sum(1).clamp_(max=self.levels - 1)
        return k.to(params.dtype) / (self.levels - 1)

    def protocol(self) -> dict[str, object]:
        return {"likelihood": self.kind, "levels": self.levels}


class LogisticMixtureHead(PixelHead):
    """Discretised mixture of ``n_mix`` logistics over ``levels`` bins of [0, 1].

    Bin k covers [(k - 0.5)/(L-1), (k + 0.5)/(L-1)]; the edge bins extend to -inf / +inf,
    so the probabilities of the L values sum to exactly 1 (Salimans et al. 2017, eq. 2).
    """

    kind = "logistic_mixture"

    def __init__(self, n_mix: int = 5, levels: int = 256):
        super().__init__()
        self.n_mix, self.levels = n_mix, levels
        self.params_per_channel = 3 * n_mix

    def _parts(self, p: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """p [..., 3*M, ...] on dim 2 -> logits, means, log-scales."""
        m = self.n_mix
        logits, means, log_scales = p[:, :, :m], p[:, :, m:2 * m], p[:, :, 2 * m:]
        return logits, torch.sigmoid(means), log_scales.clamp(min=-7.0)

    def log_prob_map(self, params: Tensor, x: Tensor) -> Tensor:
        logits, mu, log_s = self._parts(self.split(params, x.shape[1]))
        xe = x.unsqueeze(2)                         # [N, C, 1, H, W]
        half = 0.5 / (self.levels - 1)
        inv_s = torch.exp(-log_s)
        upper = (xe + half - mu) * inv_s
        lower = (xe - half - mu) * inv_s
        # log(sigmoid(upper) - sigmoid(lower)) = log sigmoid(upper) + log(1 - e^(ls(lower) -
        # ls(upper))), stable for any scale; the clamp only floors bins below e^-27
        log_cdf_upper = F.logsigmoid(upper)
        log_one_minus_cdf_lower = F.logsigmoid(-lower)
        gap = -torch.expm1(F.logsigmoid(lower) - log_cdf_upper)
        mid = log_cdf_upper + torch.log(gap.clamp_min(1e-12))
        first, last = xe < half, xe > 1 - half
        log_bin = torch.where(first, log_cdf_upper, torch.where(last, log_one_minus_cdf_lower,
                                                                mid))
        return torch.logsumexp(F.log_softmax(logits, dim=2) + log_bin, dim=2)

    def sample_channel(self, params: Tensor,
                       rng: SampleRNG | torch.Generator | None) -> Tensor:
        rng = as_sample_rng(rng, params.shape[0])
        m = self.n_mix
        logits, mu, log_s = params[:, :m], torch.sigmoid(params[:, m:2 * m]), \
            params[:, 2 * m:].clamp(min=-7.0)
        u = rng.rand(2, dtype=torch.float64, device=params.device).clamp_(1e-9, 1 - 1e-9)
        probs = torch.softmax(logits.double(), dim=1)
        comp = (probs.cumsum(1) < u[:, :1]).sum(1).clamp_(max=m - 1)
        pick = comp[:, None]
        v = mu.double().gather(1, pick)[:, 0] + torch.exp(log_s.double().gather(1, pick)[:, 0]) \
            * (torch.log(u[:, 1]) - torch.log1p(-u[:, 1]))
        k = torch.round(v.clamp(0, 1) * (self.levels - 1))
        return (k / (self.levels - 1)).to(params.dtype)

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
