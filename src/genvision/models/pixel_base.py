"""Shared machinery of the convolutional fully visible models (PixelCNN, Gated PixelCNN,
Row LSTM): config fields, the output head, exact likelihood, naive sampling and completion.

p(x) = prod_i prod_c p(x_{i,c} | x_{<i}, x_{i,<c}) over pixels i in raster order and channels
c within a pixel (van den Oord et al. 2016, https://arxiv.org/abs/1601.06759). A subclass
provides only ``params(x, y) -> [N, C*P, H, W]``: every output at (i, c) must depend on the
input values before (i, c) alone (tests check this with gradients). Training is exact
maximum likelihood: the loss is the mean negative log-likelihood in nats per image.

Sampling draws the H*W*C values one at a time. The naive path (:meth:`sample_naive`)
recomputes the whole network per value; subclasses may override :meth:`sample_cached` with
an incremental path that must give identical samples from the same per-sample streams
(:class:`~.sampling.SampleRNG`: image k draws from its own generator only).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from ..distributions.units import bits_per_dim
from ..errors import UserError
from .base import GenerativeModel, ModelConfig, bounds
from .pixel_heads import PixelHead, make_head
from .sampling import SampleRNG, SamplerOptions, as_sample_rng, resolve_sampler

__all__ = ["PixelModelConfig", "PixelAutoregressive", "PixelSampler", "draw_channel"]


@dataclasses.dataclass(frozen=True)
class PixelSampler(SamplerOptions):
    """Ancestral sampling, one value at a time in the model's order."""

    name: ClassVar[str] = "ancestral"
    #: the incremental sampler (same images as the naive reference, much faster)
    cached: bool = True


def draw_channel(head: PixelHead, params: Tensor, rng: SampleRNG, keep: Tensor,
                 current: Tensor) -> Tensor:
    """New values [N] of one channel of one pixel: kept rows (``keep`` [N] True) keep
    ``current`` [N] and draw nothing, the others draw from ``head`` with their own streams,
    so a row's draws depend only on its own keep mask, never on the rest of the batch.

    Args:
        params: head parameters [N, P]. rng: the batch's per-sample streams.
    """
    if not bool(keep.any()):
        return head.sample_channel(params, rng)
    need = (~keep).nonzero()[:, 0]
    out = current.clone()
    if len(need):
        out[need] = head.sample_channel(params[need], rng[need])
    return out


@dataclasses.dataclass
class PixelModelConfig(ModelConfig):
    """Fields shared by the convolutional fully visible models."""

    head: Literal["auto", "bernoulli", "categorical", "logistic_mixture"] = dataclasses.field(
        default="auto", metadata={"help": "output distribution: auto = bernoulli for binary "
                                          "data, 256-way categorical for 8-bit data"})
    levels: int = dataclasses.field(
        default=256, metadata={"help": "grey levels of 8-bit data (256; fewer for tests)",
                               **bounds(2, 256)})
    n_mix: int = dataclasses.field(
        default=5, metadata={"help": "logistics in the logistic_mixture head", **bounds(1, 100)})


class PixelAutoregressive(GenerativeModel):
    """Base class; see the module docstring. Subclasses set ``config_class`` and implement
    :meth:`params` (and optionally :meth:`sample_cached`)."""

    family: ClassVar[str] = "fully visible (autoregressive)"
    likelihood_kind: ClassVar[str] = "exact"
    supported_data_kinds: ClassVar[tuple[str, ...]] = ("binary", "grey8", "rgb8")
    samplers: ClassVar[dict[str, type[SamplerOptions]]] = {"ancestral": PixelSampler}

    def __init__(self, config: PixelModelConfig):
        super().__init__(config)
        try:
            self.head: PixelHead = make_head(config.data_kind, config.head, config.levels,
                                             config.n_mix)
        except ValueError as exc:
            raise UserError(str(exc), "pick --head to match the data (or --binarize)") from None

    @classmethod
    def input_kind(cls, overrides: dict[str, Any]) -> str:
        """Binary data (the MNIST-5k protocol) unless an 8-bit head is asked for."""
        head = overrides.get("head", "auto")
        return "binary" if head in ("auto", "bernoulli") else "grey8"

    # ----- to implement --------------------------------------------------------------------
    def params(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Head parameters [N, C*P, H, W] for images x [N, C, H, W] in [0, 1]."""
        raise NotImplementedError

    # ----- likelihood ----------------------------------------------------------------------
    def _check(self, x: Tensor, y: Tensor | None) -> None:
        self.check_batch(x, y)

    def log_prob(self, x: Tensor, y: Tensor | None = None, **kwargs: Any) -> Tensor:
        """Exact log p(x) in nats per image, [N]."""
        self._check(x, y)
        return self.head.log_prob(self.params(x, y), x)

    def loss(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        """Mean negative log-likelihood (nats/image) and the same in bits/dim."""
        nll = -self.log_prob(x, y).mean()
        return {"loss": nll, "bits_per_dim": bits_per_dim(nll.detach(), self.config.dims)}

    def likelihood_protocol(self, **kwargs: Any) -> dict[str, Any]:
        return {"kind": "exact", "estimator": "exact", **self.head.protocol(), **kwargs}

    # ----- sampling ------------------------------------------------------------------------
    def _fill(self, x: Tensor, keep: Tensor, y: Tensor | None, rng: SampleRNG,
              params_at: Callable[[Tensor, int, int], Tensor]) -> Tensor:
        """Draw every value of ``x`` that ``keep`` does not fix, in raster/channel order.

        ``params_at(x, i, j)`` returns the head parameters [N, C*P] of pixel (i, j) given
        the current ``x``; one value is drawn per (i, j, c) with :func:`draw_channel`.
        """
        c, h, w = self.config.shape
        p = self.head.params_per_channel
        for i in range(h):
            for j in range(w):
                if bool(keep[:, :, i, j].all()):
                    continue
                for ch in range(c):
                    pc = params_at(x, i, j)[:, ch * p:(ch + 1) * p]
                    x[:, ch, i, j] = draw_channel(self.head, pc, rng, keep[:, ch, i, j],
                                                  x[:, ch, i, j])
        return x

    @torch.no_grad()
    def sample_naive(self, n: int, y: Tensor | None = None,
                     generator: torch.Generator | SampleRNG | None = None, *,
                     x: Tensor | None = None, keep: Tensor | None = None) -> Tensor:
        """Reference sampler: the whole network is recomputed for every drawn value."""
        y = self._labels_for(n, y)
        rng = as_sample_rng(generator, n)
        x = torch.zeros(n, *self.config.shape, device=self.device) if x is None else x.clone()
        keep = torch.zeros_like(x, dtype=torch.bool) if keep is None else keep.expand_as(x)
        return self._fill(x, keep, y, rng,
                          lambda cur, i, j: self.params(cur, y)[:, :, i, j])

    @torch.no_grad()
    def sample_cached(self, n: int, y: Tensor | None = None,
                      generator: torch.Generator | SampleRNG | None = None, *,
                      x: Tensor | None = None, keep: Tensor | None = None) -> Tensor:
        """Fast sampler; same samples as :meth:`sample_naive`. Default: the naive one."""
        return self.sample_naive(n, y, generator, x=x, keep=keep)

    @torch.no_grad()
    def sample(self, n: int, y: Tensor | None = None,
               generator: torch.Generator | SampleRNG | None = None,
               sampler: SamplerOptions | None = None) -> Tensor:
        """Draw ``n`` images [n, C, H, W] in [0, 1], value by value.

        Args:
            n: number of images.
            y: one label or [n] labels; a conditional model given none cycles the classes.
            generator: None, a torch.Generator (n seeds drawn from it) or a per-sample
                :class:`SampleRNG`: image k uses only its own stream.
            sampler: :class:`PixelSampler` options (None = defaults: the cached sampler,
                which gives the same images as the naive one, much faster).
        """
        opts = resolve_sampler(self, sampler)
        rng = as_sample_rng(generator, n)
        was_training = self.training
        self.eval()
        try:
            fn = self.sample_cached if opts.cached else self.sample_naive
            return fn(n, y, rng)
        finally:
            self.train(was_training)

    @torch.no_grad()
    def complete(self, x: Tensor, keep: Tensor, y: Tensor | None = None,
                 generator: torch.Generator | SampleRNG | None = None,
                 sampler: SamplerOptions | None = None) -> Tensor:
        """Fill in the values of ``x`` that ``keep`` does not fix.

        Values are drawn in the model's order, each conditioned on every value before it
        (kept or drawn); kept values after a drawn one cannot inform it (an autoregressive
        model only conditions on the past). Kept values are returned unchanged, and draw
        no random numbers, so image k's completion depends only on its own seed and mask.

        Args:
            x: [N, C, H, W] images in [0, 1] (values of the model's data kind).
            keep: bool tensor broadcastable to ``x``; True = keep.
            y: labels for a conditional model.
            generator: None, a torch.Generator or a per-sample :class:`SampleRNG`.
            sampler: :class:`PixelSampler` options (None = the cached sampler).

        Returns:
            [N, C, H, W] completed images.
        """
        if x.dim() != 4:
            raise UserError(f"complete expects images [N, C, H, W], got {list(x.shape)}",
                            "pass a batch of images")
        opts = resolve_sampler(self, sampler)
        labels = self._labels_for(x.shape[0], y)
        self._check(x.to(self.device), labels)
        keep = torch.as_tensor(keep, dtype=torch.bool, device=x.device)
        keep = keep.expand_as(x) if keep.dim() == 4 else keep.expand(x.shape)
        rng = as_sample_rng(generator, x.shape[0])
        was_training = self.training
        self.eval()
        try:
            fn = self.sample_cached if opts.cached else self.sample_naive
            return fn(x.shape[0], labels, rng, x=x.to(self.device), keep=keep)
        finally:
            self.train(was_training)

    @torch.no_grad()
    def figures(self, x: Tensor, y: Tensor | None = None,
                generator: torch.Generator | SampleRNG | None = None) -> dict[str, Tensor]:
        """Completions: 4 rows of (original | bottom half filled in, twice) for the report."""
        x = x[:8]
        n, (c, h, w) = x.shape[0], self.config.shape
        keep = torch.zeros(1, c, h, w, dtype=torch.bool, device=x.device)
        keep[:, :, : h // 2] = True
        yy = None if y is None or not self.config.num_classes else y[:n]
        a = self.complete(x, keep, yy, generator)
        b = self.complete(x, keep, yy, generator)
        shown = torch.stack([x, x * keep, a, b], dim=1).reshape(-1, c, h, w)
        return {"completions": shown}
