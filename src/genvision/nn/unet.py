"""A small U-Net (Ronneberger et al. 2015, https://arxiv.org/abs/1505.04597), CPU-sized.

Two kinds of block (``block``): ``plain`` (the colorizer's: two convolutions, no
normalisation) and ``residual`` (a residual block with GroupNorm, Wu & He 2018, whose
conditioning bias enters between its two convolutions, as in DDPM's U-Net; the
denoiser of the diffusion models).

``depth`` stride-2 levels of ``width * 2**i`` channels (capped at ``8 * width``),
nearest up-sampling + 3x3 convolutions (no checkerboard artefacts), skip connections by
concatenation, and no normalisation layers (so a whole image and a patch are treated
alike). The output convolution starts at zero, so an untrained network outputs
``output(0)`` everywhere (the colorizer: ab = 0, the grey input).

Used by the pix2pix colorizer (``genvision.tasks.colorize``). Built to be shared: a later
model that needs a conditioned U-Net (e.g. diffusion, with a time and / or class embedding)
passes ``cond_dim > 0`` and a vector ``cond`` [N, cond_dim] to :meth:`UNet.forward`; each
block then adds a learned per-channel bias ``Linear(cond)`` to its output (the way DDPM,
Ho et al. 2020, https://arxiv.org/abs/2006.11239, injects its time embedding). Embedding
time or labels into that vector is the caller's job. With ``cond_dim = 0`` no extra
parameters exist, so state dicts are those of the unconditioned network.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["UNet"]


def _block(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    """conv (3x3, or 4x4 stride 2 going down) -> LeakyReLU -> conv 3x3 -> LeakyReLU."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3 if stride == 1 else 4, stride, 1),
                         nn.LeakyReLU(0.2, inplace=True),
                         nn.Conv2d(c_out, c_out, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True))


class _ResBlock(nn.Module):
    """conv -> GroupNorm -> SiLU (+ conditioning bias) -> conv -> GroupNorm, added to a
    (projected) skip of the input, then SiLU. Stride 2 halves the size (4x4 conv, and a
    2x2 stride-2 projection on the skip path)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, cond_dim: int = 0):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3 if stride == 1 else 4, stride, 1)
        self.norm1 = nn.GroupNorm(math.gcd(8, c_out), c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.norm2 = nn.GroupNorm(math.gcd(8, c_out), c_out)
        self.cond = nn.Linear(cond_dim, c_out) if cond_dim else None
        if stride == 1 and c_in == c_out:
            self.skip: nn.Module = nn.Identity()
        else:
            self.skip = nn.Conv2d(c_in, c_out, 1 if stride == 1 else 2, stride)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        h = F.silu(self.norm1(self.conv1(x)))
        if self.cond is not None and cond is not None:
            h = h + self.cond(cond)[:, :, None, None]
        return F.silu(self.norm2(self.conv2(h)) + self.skip(x))


class UNet(nn.Module):
    """[N, in_channels, H, W] -> [N, out_channels, H, W]; H, W need not be multiples of
    ``2**depth`` (up-sampling matches each skip's size) but are best so (``multiple``).

    Args:
        width: channels at full resolution.
        depth: stride-2 levels.
        in_channels, out_channels: image channels in and out (colorizer: L -> ab).
        input_offset: subtracted from the input first (0.5 centres [0, 1] data).
        output: ``"tanh"`` for outputs in (-1, 1) (the colorizer's ab), ``"linear"`` for
            unbounded ones (e.g. a noise prediction).
        cond_dim: size of an optional conditioning vector (0: none; see the module doc).
        block: ``plain`` or ``residual`` (see the module doc).
    """

    def __init__(self, width: int = 32, depth: int = 3, in_channels: int = 1,
                 out_channels: int = 2, *, input_offset: float = 0.5,
                 output: Literal["tanh", "linear"] = "tanh", cond_dim: int = 0,
                 block: Literal["plain", "residual"] = "plain"):
        super().__init__()
        chans = [min(width * 2 ** i, width * 8) for i in range(depth + 1)]
        self.residual = block == "residual"

        def make(c_in: int, c_out: int, stride: int = 1) -> nn.Module:
            if self.residual:
                return _ResBlock(c_in, c_out, stride, cond_dim)
            return _block(c_in, c_out, stride)

        self.inc = make(in_channels, chans[0])
        self.downs = nn.ModuleList(make(chans[i], chans[i + 1], 2) for i in range(depth))
        self.ups = nn.ModuleList(make(chans[i + 1] + chans[i], chans[i])
                                 for i in reversed(range(depth)))
        self.out = nn.Conv2d(chans[0], out_channels, 3, 1, 1)
        nn.init.zeros_(self.out.weight)  # start at output(0): the grey image, not random colours
        nn.init.zeros_(self.out.bias)
        self.multiple = 2 ** depth
        self.input_offset, self.output, self.cond_dim = input_offset, output, cond_dim
        if cond_dim and not self.residual:  # one bias per block: inc, downs, ups in order
            outs = [chans[0], *chans[1:], *reversed(chans[:-1])]
            self.cond_proj = nn.ModuleList(nn.Linear(cond_dim, c) for c in outs)

    def _run(self, block: nn.Module, h: Tensor, i: int, cond: Tensor | None) -> Tensor:
        """Block i on h [N, C, H, W] with its conditioning: inside a residual block, as a
        bias [N, C, 1, 1] after a plain one."""
        if self.residual:
            return block(h, cond)
        h = block(h)
        return h if cond is None else h + self.cond_proj[i](cond)[:, :, None, None]

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """x [N, in_channels, H, W] (and cond [N, cond_dim]) -> [N, out_channels, H, W]."""
        if (cond is None) != (self.cond_dim == 0):
            raise ValueError(f"this U-Net has cond_dim={self.cond_dim}; pass cond "
                             "[N, cond_dim] exactly when cond_dim > 0")
        skips = [self._run(self.inc, x - self.input_offset, 0, cond)]
        for i, down in enumerate(self.downs, 1):
            skips.append(self._run(down, skips[-1], i, cond))
        h = skips.pop()
        for i, up in enumerate(self.ups, 1 + len(self.downs)):
            skip = skips.pop()
            h = torch.cat([F.interpolate(h, size=skip.shape[-2:], mode="nearest"), skip], 1)
            h = self._run(up, h, i, cond)
        out = self.out(h)
        return torch.tanh(out) if self.output == "tanh" else out
