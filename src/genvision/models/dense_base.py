"""Shared machinery of the dense fully visible models, NADE and MADE.

Both treat an image as one vector of D = C*H*W values and factorise
p(x) = prod_d p(x_d | x_<d) in a fixed order, with a dense network in place of
PixelCNN's convolutions. The vector is laid out in the **natural order** of the
convolutional fully visible models: pixels in raster order, the C channel values of a pixel
one after another (R, G, B). With that layout :meth:`DenseAutoregressive.params` returns
the per-pixel parameter map of :class:`~genvision.models.pixel_base.PixelAutoregressive`,
so its exact likelihood, reference (naive) sampler, completion and report figures apply
unchanged, and the output heads (Bernoulli, categorical, logistic mixture) are shared.

A subclass implements :meth:`DenseAutoregressive.conditionals`: per-dimension head
parameters [N, D, P] where row d depends only on the values before d in the model's order
(tests check it with autograd), and usually a faster :meth:`sample_cached`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .pixel_base import PixelAutoregressive

__all__ = ["DenseAutoregressive"]


class DenseAutoregressive(PixelAutoregressive):
    """Base class of NADE and MADE; see the module docstring."""

    # ----- to implement ----------------------------------------------------------------------
    def conditionals(self, x: Tensor, y: Tensor | None = None, mask: int = 0) -> Tensor:
        """Head parameters of every conditional p(x_d | x_<d): x [N, C, H, W] -> [N, D, P].

        Dimension d is indexed in the natural order (:meth:`flatten`); P is the head's
        parameters per value (1 logit for Bernoulli, ``levels`` logits for categorical).
        ``mask`` selects one of several orderings (MADE); models with one order ignore it.
        """
        raise NotImplementedError

    def ranks(self, mask: int = 0) -> Tensor:
        """Position of every natural-order dimension in the model's ordering: [D] long.

        ``ranks[d] = 0`` is generated first; the conditional of d may use dimension j only
        if ``ranks[j] < ranks[d]``. Default: the natural order itself.
        """
        return torch.arange(self.config.dims, device=self.device)

    # ----- layout ----------------------------------------------------------------------------
    def flatten(self, x: Tensor) -> Tensor:
        """[N, C, H, W] -> [N, D] in the natural order (raster pixels, channels within)."""
        return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)

    def unflatten(self, v: Tensor) -> Tensor:
        """[N, D] natural-order values -> [N, C, H, W] images."""
        c, h, w = self.config.shape
        return v.reshape(-1, h, w, c).permute(0, 3, 1, 2).contiguous()

    def params(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Head parameters as a pixel map [N, C*P, H, W] (channel-group major, as every
        pixel model lays them out), from :meth:`conditionals` with the first ordering."""
        logits = self.conditionals(x, y)
        n, _, p = logits.shape
        c, h, w = self.config.shape
        return logits.view(n, h, w, c, p).permute(0, 3, 4, 1, 2).reshape(n, c * p, h, w)

    def dim_log_prob(self, logits: Tensor, xf: Tensor) -> Tensor:
        """log p(x_d | x_<d) per dimension: logits [N, D, P], values xf [N, D] -> [N, D].

        The head sees the vector as a one-channel D x 1 image: heads act value by value.
        """
        lp = self.head.log_prob_map(logits.transpose(1, 2).unsqueeze(-1), xf[:, None, :, None])
        return lp[:, 0, :, 0]

    def _start(self, n: int, x: Tensor | None, keep: Tensor | None
               ) -> tuple[Tensor, Tensor, Tensor]:
        """Sampler state: values [n, D] (zeros or the given image), keep [n, D] and skip [D].

        ``skip[d]`` is True where every image keeps its whole pixel: like the base class's
        reference sampler, no random numbers are drawn for such pixels, so a cached sampler
        that follows this rule draws exactly the same values from the same generator.
        """
        shape = self.config.shape
        x = torch.zeros(n, *shape, device=self.device) if x is None else x.to(self.device)
        keep = (torch.zeros(n, *shape, dtype=torch.bool, device=self.device) if keep is None
                else keep.to(self.device).expand(n, *shape))
        kf = self.flatten(keep)
        c = shape[0]
        skip = kf.view(n, -1, c).all(dim=2).all(dim=0).repeat_interleave(c)
        return self.flatten(x).clone().to(self.weight_dtype), kf, skip

    @property
    def weight_dtype(self) -> torch.dtype:
        """The floating dtype of the weights (float32, or float64 after ``.double()``)."""
        return next(self.parameters()).dtype
