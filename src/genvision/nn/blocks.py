"""Small convolutional building blocks shared by the model families.

* :class:`ResBlock` -- pre-activation residual block (He et al. 2016,
  https://arxiv.org/abs/1603.05027), shape preserving.
* :class:`MaskedConv2d` -- PixelCNN masked convolution (van den Oord et al. 2016,
  https://arxiv.org/abs/1601.06759): output pixel (i, j) sees only pixels before (i, j) in
  raster order (type ``"A"``) or also itself (type ``"B"``).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["MaskedConv2d", "ResBlock", "pad_to_multiple"]


class ResBlock(nn.Module):
    """``x + conv(act(conv(act(x))))`` with 3x3 convolutions; [N, C, H, W] -> same.

    Args:
        channels: number of input and output channels.
        hidden: channels of the inner convolution (default ``channels``).
        dropout: dropout probability between the two convolutions (regularises small data).
    """

    def __init__(self, channels: int, hidden: int | None = None, dropout: float = 0.0):
        super().__init__()
        hidden = hidden or channels
        self.net = nn.Sequential(
            nn.SiLU(), nn.Conv2d(channels, hidden, 3, padding=1),
            nn.SiLU(), nn.Dropout(dropout), nn.Conv2d(hidden, channels, 3, padding=1))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.net(x)


class MaskedConv2d(nn.Conv2d):
    """A 2-D convolution whose kernel only looks at earlier pixels in raster order.

    The mask is spatial only (every input channel of an allowed position is visible), so
    channels of one pixel are conditionally independent given earlier pixels -- a valid
    autoregressive factorisation over pixels for any channel count.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: odd kernel size ``k``; padding ``k // 2`` keeps the spatial shape.
        mask_type: ``"A"`` excludes the centre pixel (first layer, sees raw pixels),
            ``"B"`` includes it (later layers, whose centre features are already causal).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 mask_type: Literal["A", "B"] = "B"):
        if kernel_size % 2 != 1:
            raise ValueError(f"MaskedConv2d needs an odd kernel size, got {kernel_size}")
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        c = kernel_size // 2
        mask = torch.ones(kernel_size, kernel_size)
        mask[c, c + (mask_type == "B"):] = 0  # the centre row from the centre (A) / after it (B)
        mask[c + 1:] = 0  # every row below the centre
        self.register_buffer("mask", mask[None, None], persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Zero-pad [N, C, H, W] on the bottom/right so H and W are multiples of ``multiple``."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    return F.pad(x, (0, pw, 0, ph)) if (ph or pw) else x
