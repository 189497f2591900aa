"""Small convolutional building blocks shared by the model families.

* :class:`ResBlock` -- pre-activation residual block (He et al. 2016,
  https://arxiv.org/abs/1603.05027), shape preserving.
* :func:`pad_to_multiple` -- zero padding to a multiple of the down-sampling factor.

The masked (causal) convolution is :class:`genvision.nn.masked.CausalConv2d`.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ResBlock", "pad_to_multiple"]


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


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Zero-pad [N, C, H, W] on the bottom/right so H and W are multiples of ``multiple``."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    return F.pad(x, (0, pw, 0, ph)) if (ph or pw) else x
