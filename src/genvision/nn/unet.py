"""A small U-Net (Ronneberger et al. 2015, https://arxiv.org/abs/1505.04597), CPU-sized.

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
    """

    def __init__(self, width: int = 32, depth: int = 3, in_channels: int = 1,
                 out_channels: int = 2, *, input_offset: float = 0.5,
                 output: Literal["tanh", "linear"] = "tanh", cond_dim: int = 0):
        super().__init__()
        chans = [min(width * 2 ** i, width * 8) for i in range(depth + 1)]
        self.inc = _block(in_channels, chans[0])
        self.downs = nn.ModuleList(_block(chans[i], chans[i + 1], 2) for i in range(depth))
        self.ups = nn.ModuleList(_block(chans[i + 1] + chans[i], chans[i])
                                 for i in reversed(range(depth)))
        self.out = nn.Conv2d(chans[0], out_channels, 3, 1, 1)
        nn.init.zeros_(self.out.weight)  # start at output(0): the grey image, not random colours
        nn.init.zeros_(self.out.bias)
        self.multiple = 2 ** depth
        self.input_offset, self.output, self.cond_dim = input_offset, output, cond_dim
        if cond_dim:  # one bias projection per block: inc, downs, ups in forward order
            outs = [chans[0], *chans[1:], *reversed(chans[:-1])]
            self.cond_proj = nn.ModuleList(nn.Linear(cond_dim, c) for c in outs)

    def _cond(self, h: Tensor, i: int, cond: Tensor | None) -> Tensor:
        """Add block i's conditioning bias [N, C, 1, 1] to h [N, C, H, W]."""
        if cond is None:
            return h
        return h + self.cond_proj[i](cond)[:, :, None, None]

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """x [N, in_channels, H, W] (and cond [N, cond_dim]) -> [N, out_channels, H, W]."""
        if (cond is None) != (self.cond_dim == 0):
            raise ValueError(f"this U-Net has cond_dim={self.cond_dim}; pass cond "
                             "[N, cond_dim] exactly when cond_dim > 0")
        skips = [self._cond(self.inc(x - self.input_offset), 0, cond)]
        for i, down in enumerate(self.downs, 1):
            skips.append(self._cond(down(skips[-1]), i, cond))
        h = skips.pop()
        for i, up in enumerate(self.ups, 1 + len(self.downs)):
            skip = skips.pop()
            h = up(torch.cat([F.interpolate(h, size=skip.shape[-2:], mode="nearest"), skip], 1))
            h = self._cond(h, i, cond)
        out = self.out(h)
        return torch.tanh(out) if self.output == "tanh" else out
