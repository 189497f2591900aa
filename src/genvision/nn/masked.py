"""Causal (masked) convolutions over pixels *and* the channels within a pixel.

PixelCNN-style models (van den Oord et al. 2016, https://arxiv.org/abs/1601.06759, sec. 3.4)
order the values of an image as pixels in raster order and, within a pixel, channels
R -> G -> B. A convolution stays causal when its kernel is masked:

* spatially: every tap above the centre row and left of the centre is visible; taps right
  of the centre and below it are not;
* at the centre tap, by channel group: feature channels are split into ``data_channels``
  contiguous groups (group g "belongs" to data channel g). An output in group g may see
  input groups < g (mask type ``"A"``, the first layer, whose inputs are the raw values) or
  <= g (type ``"B"``, later layers, whose group-g features are already causal for channel g).

With ``data_channels=1`` this is the usual spatial PixelCNN mask. The network's last layer
maps group g's features to the parameters of data channel g, so a 3-channel image gets
p(R | x_<i) p(G | R, x_<i) p(B | R, G, x_<i) at every pixel i.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["CausalConv2d", "causal_mask", "channel_groups"]

MaskType = Literal["A", "B"]


def channel_groups(channels: int, data_channels: int) -> Tensor:
    """Group index of each of ``channels`` feature channels: [channels] int64.

    Contiguous blocks of ``channels / data_channels`` channels; ``channels`` must be a
    multiple of ``data_channels`` (or equal to it, for the raw image).
    """
    if channels % data_channels:
        raise ValueError(f"{channels} feature channels cannot be split into {data_channels} "
                         "equal channel groups; use a multiple of the image's channels")
    return torch.arange(channels) // (channels // data_channels)


def centre_channel_mask(in_channels: int, out_channels: int, data_channels: int,
                        mask_type: MaskType) -> Tensor:
    """[out, in] 0/1 mask of which input channels an output channel sees at the centre tap."""
    if mask_type not in ("A", "B"):
        raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
    g_in = channel_groups(in_channels, data_channels)
    g_out = channel_groups(out_channels, data_channels)
    allowed = g_in[None, :] < g_out[:, None] if mask_type == "A" else \
        g_in[None, :] <= g_out[:, None]
    return allowed.float()


def causal_mask(kernel_size: tuple[int, int], in_channels: int, out_channels: int,
                data_channels: int = 1, mask_type: MaskType = "B") -> Tensor:
    """The [out, in, kh, kw] mask of a causal convolution whose centre is (kh//2, kw//2).

    Args:
        kernel_size: (kh, kw), both odd.
        in_channels, out_channels: feature channels (multiples of ``data_channels``).
        data_channels: channels of the image (1 grey / binary, 3 RGB).
        mask_type: ``"A"`` (centre excludes the output's own channel group) or ``"B"``.
    """
    kh, kw = kernel_size
    if kh % 2 != 1 or kw % 2 != 1:
        raise ValueError(f"causal convolutions need odd kernel sizes, got {kh}x{kw}")
    ch, cw = kh // 2, kw // 2
    mask = torch.zeros(out_channels, in_channels, kh, kw)
    mask[:, :, :ch, :] = 1           # rows above the centre
    mask[:, :, ch, :cw] = 1          # the centre row, left of the centre
    mask[:, :, ch, cw] = centre_channel_mask(in_channels, out_channels, data_channels,
                                             mask_type)
    return mask


class CausalConv2d(nn.Conv2d):
    """A convolution masked by :func:`causal_mask`; [N, in, H, W] -> [N, out, H, W].

    Args:
        in_channels, out_channels: feature channels (multiples of ``data_channels``).
        kernel_size: odd ``k`` or (kh, kw); "same" padding keeps H and W.
        data_channels: channels of the image, for the within-pixel R -> G -> B order.
        mask_type: ``"A"`` for the first layer (sees the raw image), ``"B"`` after it.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 data_channels: int = 1, mask_type: MaskType = "B", bias: bool = True):
        ks = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        super().__init__(in_channels, out_channels, ks, padding=(ks[0] // 2, ks[1] // 2),
                         bias=bias)
        self.mask_type = mask_type
        self.data_channels = data_channels
        self.register_buffer("mask", causal_mask(ks, in_channels, out_channels, data_channels,
                                                 mask_type), persistent=False)
        with torch.no_grad():  # masked taps start (and stay, via the mask) at zero
            self.weight.mul_(self.mask)

    def masked_weight(self) -> Tensor:
        return self.weight * self.mask

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.masked_weight(), self.bias, padding=self.padding)
