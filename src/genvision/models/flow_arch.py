"""Architectures of the normalizing flows: the multi-scale flow (RealNVP's factor-out,
used by Glow too) and Flow++'s variational dequantiser.

* Multi-scale architecture -- Dinh et al. 2016, https://arxiv.org/abs/1605.08803,
  section 3.6: after each scale half the values leave the flow as latents (they are
  Gaussian from there on), so deeper scales work on fewer, coarser values.
* Glow's scale -- Kingma & Dhariwal 2018, https://arxiv.org/abs/1807.03039, figure 2:
  squeeze, ``depth`` steps of (actnorm, invertible 1x1 convolution, affine coupling),
  split.
* Variational dequantisation -- Ho et al. 2019 (Flow++), https://arxiv.org/abs/1902.00275,
  section 3.1: the noise u in [0, 1)^D added to the discrete pixels comes from a flow
  q(u | x) conditioned on the image, trained jointly on the bound.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from ..errors import UserError
from ..nn.flow_layers import (
    ActNorm,
    AffineCoupling,
    FlowLayer,
    FlowSequence,
    InvConv1x1,
    LogitTransform,
    SigmoidTransform,
    Squeeze,
)

__all__ = ["MultiScaleFlow", "build_realnvp", "build_glow", "VariationalDequantizer",
           "standard_normal_log_prob"]

_LOG2PI = math.log(2 * math.pi)
Shape = tuple[int, int, int]


def standard_normal_log_prob(z: Tensor) -> Tensor:
    """log N(z; 0, I) summed over all but the first dimension: [N, ...] -> [N]."""
    return -0.5 * (z.pow(2) + _LOG2PI).flatten(1).sum(1)


class MultiScaleFlow(nn.Module):
    """Images [N, C, H, W] in [0, 1] <-> latents [N, C*H*W].

    Args:
        pre: the first layer (the logit transform).
        scales: the flow of each scale, applied in order.
        shapes: the shape (C, H, W) each scale outputs.
        splits: channels factored out after each scale (0 for the last: all of it).
    """

    def __init__(self, pre: FlowLayer, scales: list[FlowSequence], shapes: list[Shape],
                 splits: list[int]):
        super().__init__()
        if not (len(scales) == len(shapes) == len(splits)) or splits[-1] != 0 \
                or not all(splits[:-1]):
            raise ValueError("every scale but the last factors out channels")
        self.pre, self.scales = pre, nn.ModuleList(scales)
        self.shapes, self.splits = list(shapes), list(splits)
        # latent values each scale hands out: the factored-out channels, then the rest
        self.sizes = [k * h * w for k, (_, h, w) in zip(splits[:-1], shapes[:-1], strict=True)]
        self.sizes.append(math.prod(shapes[-1]))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x [N, C, H, W] -> (z [N, D], log |det dz/dx| [N])."""
        h, total = self.pre(x)
        zs = []
        for flow, k in zip(self.scales, self.splits, strict=True):
            h, ld = flow(h)
            total = total + ld
            if k:
                zs.append(h[:, :k].flatten(1))
                h = h[:, k:]
        zs.append(h.flatten(1))
        return torch.cat(zs, 1), total

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """z [N, D] -> (x [N, C, H, W], log |det dx/dz| [N])."""
        chunks = z.split(self.sizes, 1)
        n = z.shape[0]
        h = chunks[-1].reshape(n, *self.shapes[-1])
        total = z.new_zeros(n)
        for i in reversed(range(len(self.scales))):
            if self.splits[i]:
                _, hh, ww = self.shapes[i]
                h = torch.cat([chunks[i].reshape(n, self.splits[i], hh, ww), h], 1)
            h, ld = self.scales[i].inverse(h)
            total = total + ld
        x, ld = self.pre.inverse(h)
        return x, total + ld


def _couplings(c: int, mask: Literal["checkerboard", "channel"], count: int, width: int,
               blocks: int) -> list[FlowLayer]:
    """``count`` couplings with alternating masks (every value gets transformed)."""
    return [AffineCoupling(c, mask, j % 2, width, blocks) for j in range(count)]


def build_realnvp(shape: Shape, levels: int, depth: int, width: int, blocks: int,
                  alpha: float) -> MultiScaleFlow:
    """RealNVP (section 3.6): per scale ``depth`` checkerboard couplings, a squeeze,
    ``depth`` channel couplings, half the channels out; ``depth + 1`` checkerboard
    couplings at the last scale. Masks alternate so every value is transformed."""
    c, h, w = shape
    scales, shapes, splits = [], [], []
    for _ in range(levels):
        layers = _couplings(c, "checkerboard", depth, width, blocks)
        layers.append(Squeeze())
        c, h, w = 4 * c, h // 2, w // 2
        layers += _couplings(c, "channel", depth, width, blocks)
        scales.append(FlowSequence(layers))
        shapes.append((c, h, w))
        splits.append(c // 2)
        c -= c // 2
    scales.append(FlowSequence(_couplings(c, "checkerboard", depth + 1, width, blocks)))
    shapes.append((c, h, w))
    splits.append(0)
    return MultiScaleFlow(LogitTransform(alpha), scales, shapes, splits)


def _glow_steps(c: int, depth: int, width: int, blocks: int) -> list[FlowLayer]:
    """``depth`` Glow steps. The coupling always transforms the second half of the
    channels (the 1x1 convolutions mix them between steps); a 1-channel input (only
    without squeezes) has no halves, so it alternates checkerboard masks instead."""
    out: list[FlowLayer] = []
    for j in range(depth):
        coupling = AffineCoupling(c, "channel", 0, width, blocks) if c >= 2 else \
            AffineCoupling(c, "checkerboard", j % 2, width, blocks)
        out += [ActNorm(c), InvConv1x1(c), coupling]
    return out


def build_glow(shape: Shape, levels: int, depth: int, width: int, blocks: int,
               alpha: float) -> MultiScaleFlow:
    """Glow (figure 2): per scale a squeeze and ``depth`` steps, half the channels out
    after every scale but the last (no squeeze at all when ``levels`` is 0)."""
    c, h, w = shape
    scales, shapes, splits = [], [], []
    for i in range(max(levels, 1)):
        layers: list[FlowLayer] = []
        if levels:
            layers.append(Squeeze())
            c, h, w = 4 * c, h // 2, w // 2
        layers += _glow_steps(c, depth, width, blocks)
        scales.append(FlowSequence(layers))
        shapes.append((c, h, w))
        last = i == max(levels, 1) - 1
        splits.append(0 if last else c // 2)
        c -= 0 if last else c // 2
    return MultiScaleFlow(LogitTransform(alpha), scales, shapes, splits)


class VariationalDequantizer(nn.Module):
    """q(u | x): noise u in (0, 1)^D for an image x, by a conditional flow (Flow++).

    eps ~ N(0, I) [N, C, H, W] passes ``depth`` affine couplings whose networks also see
    features of x, then a sigmoid; ``log q(u | x) = log N(eps) - log |det du/deps|``.
    """

    def __init__(self, shape: Shape, width: int, depth: int):
        super().__init__()
        c, h, w = shape
        if h * w == 1 and c == 1:
            raise UserError("variational dequantisation needs images of more than one value",
                            "use --dequantization uniform")
        self.features = nn.Sequential(nn.Conv2d(c, width, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(width, width, 3, padding=1), nn.ReLU())
        layers: list[FlowLayer] = []
        for j in range(depth):
            if h * w > 1:
                layers.append(AffineCoupling(c, "checkerboard", j % 2, width, 0, width))
            else:
                layers.append(AffineCoupling(c, "channel", j % 2, width, 0, width))
        layers.append(SigmoidTransform())
        self.flow = FlowSequence(layers)

    def forward(self, eps: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        """eps [N, C, H, W] standard normal, x [N, C, H, W] in [0, 1] ->
        (u [N, C, H, W] in (0, 1), log q(u | x) [N])."""
        u, ld = self.flow(eps, self.features(2 * x - 1))
        return u, standard_normal_log_prob(eps) - ld
