"""Invertible layers of normalizing flows, each with its exact log-determinant.

Every layer maps images [N, C, H, W] to tensors of the same number of values and has

* ``forward(x, cond=None) -> (y, logdet)`` with ``logdet`` [N] = log |det dy/dx|, and
* ``inverse(y, cond=None) -> (x, logdet)`` with ``logdet`` [N] = log |det dx/dy|
  (minus the forward log-determinant at that point).

``cond`` is an optional feature map [N, F, H, W] that coupling networks see beside their
input (the variational dequantiser's q(u | x) is conditioned on x that way); layers
without a network ignore it.

Layers (papers):

* :class:`AffineCoupling` -- RealNVP, Dinh et al. 2016, https://arxiv.org/abs/1605.08803:
  half the values (a checkerboard or a channel mask) pass unchanged and set a scale and
  shift of the other half, so the Jacobian is triangular.
* :class:`Squeeze` -- RealNVP's space-to-depth reshaping (2x2 blocks -> 4x channels).
* :class:`ActNorm` and :class:`InvConv1x1` -- Glow, Kingma & Dhariwal 2018,
  https://arxiv.org/abs/1807.03039: a per-channel affine layer initialised from data,
  and a learned channel permutation in LU form (its log-determinant is a sum of logs).
* :class:`LogitTransform` -- RealNVP's pre-processing of values in [0, 1] to logit space.
* :class:`SigmoidTransform` -- the last layer of Flow++'s dequantiser (Ho et al. 2019,
  https://arxiv.org/abs/1902.00275), mapping R to noise in (0, 1).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["FlowLayer", "FlowSequence", "AffineCoupling", "CouplingNet", "Squeeze", "ActNorm",
           "InvConv1x1", "LogitTransform", "SigmoidTransform", "checkerboard",
           "data_init"]


def _per_image(v: Tensor) -> Tensor:
    return v.flatten(1).sum(1)


class FlowLayer(nn.Module):
    """Base of every invertible layer (see the module docstring for the contract)."""

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        raise NotImplementedError


class FlowSequence(FlowLayer):
    """Layers applied in order; the log-determinants add up."""

    def __init__(self, layers: list[FlowLayer]):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def __iter__(self) -> Iterator[FlowLayer]:
        return iter(self.layers)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        total = x.new_zeros(x.shape[0])
        for layer in self.layers:
            x, ld = layer(x, cond)
            total = total + ld
        return x, total

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        total = y.new_zeros(y.shape[0])
        for layer in reversed(self.layers):
            y, ld = layer.inverse(y, cond)
            total = total + ld
        return y, total


# ----- coupling ---------------------------------------------------------------------------
def checkerboard(h: int, w: int, parity: int, *, device: torch.device | None = None,
                 dtype: torch.dtype | None = None) -> Tensor:
    """RealNVP's checkerboard mask [1, 1, h, w]: 1 where (row + col + parity) is even."""
    idx = torch.arange(h, device=device)[:, None] + torch.arange(w, device=device)[None, :]
    return ((idx + parity) % 2 == 0).to(dtype or torch.get_default_dtype())[None, None]


class CouplingNet(nn.Module):
    """The network inside a coupling layer: 3x3 conv, ``blocks`` residual blocks
    (ReLU, 3x3, ReLU, 1x1), ReLU, 3x3 conv to ``out_ch`` values, the last initialised
    at zero so that every coupling starts as the identity (Glow, section 3.3)."""

    def __init__(self, in_ch: int, out_ch: int, hidden: int, blocks: int):
        super().__init__()
        self.inp = nn.Conv2d(in_ch, hidden, 3, padding=1)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.ReLU(), nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(hidden, hidden, 1)) for _ in range(blocks))
        self.out = nn.Conv2d(hidden, out_ch, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor) -> Tensor:
        h = self.inp(x)
        for block in self.blocks:
            h = h + block(h)
        return self.out(F.relu(h))


class AffineCoupling(FlowLayer):
    """Affine coupling ``y_b = x_b * exp(s(x_a)) + t(x_a)``, ``y_a = x_a``.

    Args:
        channels: C of the input. mask: ``checkerboard`` (x_a = the pixels of one colour
            of a checkerboard, in every channel; the net also sees the mask) or
            ``channel`` (x_a = the first half of the channels).
        parity: 0 or 1, which half is x_a (alternate it between layers so every value
            gets transformed).
        hidden, blocks: the :class:`CouplingNet`. cond_channels: width of ``cond``.

    The log-scale is ``scale * tanh(h)`` with a learned per-channel ``scale`` (RealNVP,
    section 4.1): bounded, so one bad step cannot blow the Jacobian up.
    """

    def __init__(self, channels: int, mask: Literal["checkerboard", "channel"], parity: int,
                 hidden: int, blocks: int = 1, cond_channels: int = 0):
        super().__init__()
        if mask == "channel" and channels < 2:
            raise ValueError("a channel coupling needs at least 2 channels")
        self.mask, self.parity = mask, int(parity)
        if mask == "checkerboard":
            n_in, n_out = channels + 1, channels
        else:
            half = channels // 2
            n_in, n_out = (half, channels - half) if not parity else (channels - half, half)
        self.net = CouplingNet(n_in + cond_channels, 2 * n_out, hidden, blocks)
        self.scale = nn.Parameter(torch.ones(1, n_out, 1, 1))

    def _st(self, xa: Tensor, cond: Tensor | None) -> tuple[Tensor, Tensor]:
        h = self.net(xa if cond is None else torch.cat([xa, cond], 1))
        raw_s, t = h.chunk(2, 1)
        return self.scale * torch.tanh(raw_s), t

    def _split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        half = x.shape[1] // 2
        a, b = x[:, :half], x[:, half:]
        return (a, b) if not self.parity else (b, a)

    def _join(self, xa: Tensor, xb: Tensor) -> Tensor:
        return torch.cat([xa, xb] if not self.parity else [xb, xa], 1)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if self.mask == "checkerboard":
            b = checkerboard(*x.shape[2:], self.parity, device=x.device, dtype=x.dtype)
            s, t = self._st(torch.cat([x * b, b.expand(len(x), 1, -1, -1)], 1), cond)
            s, t = s * (1 - b), t * (1 - b)
            return x * b + (1 - b) * (x * s.exp() + t), _per_image(s)
        xa, xb = self._split(x)
        s, t = self._st(xa, cond)
        return self._join(xa, xb * s.exp() + t), _per_image(s)

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if self.mask == "checkerboard":
            b = checkerboard(*y.shape[2:], self.parity, device=y.device, dtype=y.dtype)
            s, t = self._st(torch.cat([y * b, b.expand(len(y), 1, -1, -1)], 1), cond)
            s, t = s * (1 - b), t * (1 - b)
            return y * b + (1 - b) * ((y - t) * (-s).exp()), -_per_image(s)
        ya, yb = self._split(y)
        s, t = self._st(ya, cond)
        return self._join(ya, (yb - t) * (-s).exp()), -_per_image(s)


# ----- reshaping and element-wise layers ---------------------------------------------------
class Squeeze(FlowLayer):
    """Space-to-depth: [N, C, H, W] -> [N, 4C, H/2, W/2] (H, W even); log-det 0."""

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        n, c, h, w = x.shape
        y = x.reshape(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
        return y.reshape(n, 4 * c, h // 2, w // 2), x.new_zeros(n)

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        n, c4, h, w = y.shape
        x = y.reshape(n, c4 // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
        return x.reshape(n, c4 // 4, 2 * h, 2 * w), y.new_zeros(n)


class ActNorm(FlowLayer):
    """Per-channel affine ``y = (x + bias) * exp(log_scale)`` (Glow's activation
    normalisation); log-det ``H W sum(log_scale)``.

    :func:`data_init` sets ``bias`` and ``log_scale`` so that the layer's output on a batch
    has zero mean and unit variance per channel (Glow, section 3.1); until then it is
    the identity.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.init_pending = False  # set by data_init for one forward pass (not state)

    @torch.no_grad()
    def initialize(self, x: Tensor) -> None:
        """Set the parameters from x [N, C, H, W]: output mean 0, variance 1 per channel."""
        mean = x.mean((0, 2, 3), keepdim=True)
        std = x.std((0, 2, 3), keepdim=True, unbiased=False)
        self.bias.copy_(-mean)
        self.log_scale.copy_(-torch.log(std.clamp_min(1e-6)))

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if self.init_pending:
            self.initialize(x)
            self.init_pending = False
        hw = x.shape[2] * x.shape[3]
        return (x + self.bias) * self.log_scale.exp(), (hw * self.log_scale.sum()).expand(len(x))

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        hw = y.shape[2] * y.shape[3]
        return y * (-self.log_scale).exp() - self.bias, (-hw * self.log_scale.sum()).expand(len(y))


@torch.no_grad()
def data_init(flow: nn.Module, run: Callable[[], object]) -> None:
    """Data-dependent initialisation of every :class:`ActNorm` in ``flow``: each layer
    initialises itself from its own input during one forward pass ``run()`` (in order,
    so every layer sees inputs already normalised by the layers before it)."""
    norms = [m for m in flow.modules() if isinstance(m, ActNorm)]
    if not norms:
        return
    for m in norms:
        m.init_pending = True
    try:
        run()
    finally:
        for m in norms:
            m.init_pending = False


class InvConv1x1(FlowLayer):
    """Invertible 1x1 convolution in LU form (Glow, section 3.2):
    ``W = P L (U + diag(sign * exp(log_s)))`` with P a fixed permutation, L unit lower
    and U strictly upper triangular, so ``log |det W| = sum(log_s)`` and the layer's
    log-det is ``H W sum(log_s)``. Initialised from a random rotation (global RNG).
    """

    def __init__(self, channels: int):
        super().__init__()
        q, _ = torch.linalg.qr(torch.randn(channels, channels, dtype=torch.float64))
        p, lower, upper = torch.linalg.lu(q)
        s = torch.diagonal(upper)
        self.register_buffer("perm", p.float())
        self.register_buffer("sign_s", torch.sign(s).float())
        self.register_buffer("lower_mask", torch.tril(torch.ones(channels, channels), -1))
        self.lower = nn.Parameter(lower.float())
        self.upper = nn.Parameter(torch.triu(upper, 1).float())
        self.log_s = nn.Parameter(torch.log(s.abs()).float())

    def weight(self) -> Tensor:
        """The matrix W [C, C] (out x in)."""
        eye = torch.eye(len(self.log_s), dtype=self.lower.dtype, device=self.lower.device)
        lower = self.lower * self.lower_mask + eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign_s * self.log_s.exp())
        return self.perm @ lower @ upper

    # Autocast (``--amp`` on CUDA) would run the matrix products and the convolution in
    # 16 bits, rounding every value the flow carries and making W's actual determinant
    # differ from exp(sum(log_s)); the map itself stays in the parameters' precision.
    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        hw = x.shape[2] * x.shape[3]
        with torch.autocast(x.device.type, enabled=False):
            y = F.conv2d(x.to(self.lower.dtype), self.weight()[:, :, None, None])
        return y, (hw * self.log_s.sum()).expand(len(x))

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        hw = y.shape[2] * y.shape[3]
        with torch.autocast(y.device.type, enabled=False):
            w_inv = torch.linalg.inv(self.weight())
            x = F.conv2d(y.to(self.lower.dtype), w_inv[:, :, None, None])
        return x, (-hw * self.log_s.sum()).expand(len(y))


class LogitTransform(FlowLayer):
    """RealNVP's pre-processing (section 4.1): ``y = logit(alpha + (1 - 2 alpha) x)``.

    It maps the cube [0, 1] into a bounded interval of logit space, keeping the values
    away from +-infinity; the inverse is defined on all of R and lands in the slightly
    wider interval (-alpha / (1 - 2 alpha), (1 - alpha) / (1 - 2 alpha)).
    """

    def __init__(self, alpha: float):
        super().__init__()
        if not 0 <= alpha < 0.5:
            raise ValueError(f"alpha must be in [0, 0.5), got {alpha}")
        self.alpha = float(alpha)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        p = self.alpha + (1 - 2 * self.alpha) * x
        y = torch.log(p) - torch.log1p(-p)
        # dy/dx = (1 - 2 alpha) / (p (1 - p))
        ld = math.log(1 - 2 * self.alpha) - torch.log(p) - torch.log1p(-p)
        return y, _per_image(ld)

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        p = torch.sigmoid(y)
        ld = F.logsigmoid(y) + F.logsigmoid(-y) - math.log(1 - 2 * self.alpha)
        return (p - self.alpha) / (1 - 2 * self.alpha), _per_image(ld)


class SigmoidTransform(FlowLayer):
    """``y = sigmoid(x)``: R -> (0, 1); log-det ``sum log sigmoid(x) + log sigmoid(-x)``."""

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return torch.sigmoid(x), _per_image(F.logsigmoid(x) + F.logsigmoid(-x))

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        x = torch.log(y) - torch.log1p(-y)
        return x, -_per_image(torch.log(y) + torch.log1p(-y))
