"""Frozen copies of the networks as they were inside ``tasks/`` before they moved to ``nn/``.

Verbatim from commit 7879fe0 (``tasks/colorize/models.py``, ``tasks/superres/models.py``,
``tasks/superres/degrade.py``, ``tasks/common/patchgan.py``, and ``nn/blocks.py``'s
spatial-only ``MaskedConv2d``, now ``CausalConv2d(data_channels=1)``), so ``tests/test_nn_networks.py``
can show the moved classes keep their parameter names, initialisation and outputs.
"""
# ruff: noqa

from __future__ import annotations

import torch
import torch.nn.functional as F
from typing import Literal

from torch import Tensor, nn


def upscale_bicubic(lr: Tensor, scale: int) -> Tensor:
    """The baseline: bicubic up-sampling (same kernel as :func:`downscale`), clipped to [0, 1]."""
    h, w = lr.shape[-2:]
    up = F.interpolate(lr, size=(h * scale, w * scale), mode="bicubic", antialias=True,
                       align_corners=False)
    return up.clamp(0.0, 1.0)



def _block(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3 if stride == 1 else 4, stride, 1),
                         nn.LeakyReLU(0.2, inplace=True),
                         nn.Conv2d(c_out, c_out, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True))


class UNet(nn.Module):
    """L [N, 1, H, W] -> ab [N, 2, H, W] in (-1, 1); H, W multiples of 2**depth."""

    def __init__(self, width: int = 32, depth: int = 3):
        super().__init__()
        chans = [min(width * 2 ** i, width * 8) for i in range(depth + 1)]
        self.inc = _block(1, chans[0])
        self.downs = nn.ModuleList(_block(chans[i], chans[i + 1], 2) for i in range(depth))
        self.ups = nn.ModuleList(_block(chans[i + 1] + chans[i], chans[i])
                                 for i in reversed(range(depth)))
        self.out = nn.Conv2d(chans[0], 2, 3, 1, 1)
        nn.init.zeros_(self.out.weight)  # start at ab = 0: the grey image, not random colours
        nn.init.zeros_(self.out.bias)
        self.multiple = 2 ** depth

    def forward(self, L: Tensor) -> Tensor:
        skips = [self.inc(L - 0.5)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in self.ups:
            skip = skips.pop()
            x = up(torch.cat([F.interpolate(x, size=skip.shape[-2:], mode="nearest"), skip], 1))
        return torch.tanh(self.out(x))



class ResidualBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.act = nn.PReLU(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(self.act(self.conv1(x)))


def _upsample_steps(scale: int) -> list[int]:
    return [2, 2] if scale == 4 else [scale]


class SRNet(nn.Module):
    """The SRResNet generator: LR [N, 3, h, w] in [0, 1] -> SR [N, 3, s*h, s*w] (unclipped).

    ``upsampler``: ``espcn`` (default) predicts the ``3 * s * s`` sub-pixel values of every
    LR pixel with one convolution and shuffles them into place (Shi et al. 2016): all
    convolutions run at low resolution, which made training steps ~2x faster on a 2-core
    CPU than ``srresnet``, the paper's conv + shuffle stages (x2, x2 for x4) followed by a
    convolution at full resolution.
    """

    def __init__(self, scale: int, width: int, blocks: int, global_skip: bool = True,
                 upsampler: str = "espcn"):
        super().__init__()
        self.scale, self.global_skip = scale, global_skip
        self.head = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.PReLU(width))
        self.body = nn.Sequential(*[ResidualBlock(width) for _ in range(blocks)])
        self.body_end = nn.Conv2d(width, width, 3, padding=1)
        ups: list[nn.Module] = []
        if upsampler == "srresnet":
            for s in _upsample_steps(scale):
                ups += [nn.Conv2d(width, width * s * s, 3, padding=1), nn.PixelShuffle(s),
                        nn.PReLU(width)]
            tail: nn.Module = nn.Conv2d(width, 3, 3, padding=1)
            last = tail
        else:
            last = nn.Conv2d(width, 3 * scale * scale, 3, padding=1)
            tail = nn.Sequential(last, nn.PixelShuffle(scale))
        self.upsample = nn.Sequential(*ups)
        self.tail = tail
        if global_skip:  # start at the bicubic baseline exactly
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        #: LR pixels of context an output pixel depends on (a tile overlap that makes
        #: tiled inference exact): head + 2 per block + body end + up-sampling convs + tail,
        #: at least the bicubic kernel's 2
        self.receptive_radius = max(2, 2 * blocks + 3 + len(ups) // 3)

    def forward(self, lr: Tensor) -> Tensor:
        feat = self.head(lr)
        out = self.tail(self.upsample(feat + self.body_end(self.body(feat))))
        return out + upscale_bicubic(lr, self.scale) if self.global_skip else out



class PatchDiscriminator(nn.Module):
    """Logits [N, 1, H', W'] for input images [N, in_channels, H, W].

    Args:
        in_channels: 3 for RGB (SRGAN), 1 + 2 for L + ab (pix2pix colorization).
        width: channels of the first layer, doubled per layer up to 8x.
        layers: stride-2 layers (3: a 70x70 receptive field).
    """

    def __init__(self, in_channels: int = 3, width: int = 32, layers: int = 3):
        super().__init__()
        blocks: list[nn.Module] = []
        c_in, c_out = in_channels, width
        for i in range(layers + 1):
            stride = 2 if i < layers else 1
            blocks.append(nn.Sequential(nn.Conv2d(c_in, c_out, 4, stride, 1),
                                        nn.LeakyReLU(0.2, inplace=True)))
            c_in, c_out = c_out, min(c_out * 2, width * 8)
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Conv2d(c_in, 1, 4, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            x = block(x)
        return self.head(x)

    def forward_with_features(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Logits and the activations after every block (the feature space of the
        ``disc`` perceptual loss), in one pass."""
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return self.head(x), feats


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
