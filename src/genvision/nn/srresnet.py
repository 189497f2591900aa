"""The SRResNet generator (Ledig et al. 2017, https://arxiv.org/abs/1609.04802), CPU-sized.

A convolutional head, residual blocks, a long skip over them, pixel-shuffle up-sampling
(Shi et al. 2016, https://arxiv.org/abs/1609.05158: x2 and x3 in one step, x4 as two x2
steps) and a convolutional tail. The departures from the paper (no BatchNorm, 3x3 head and
tail, ESPCN up-sampling by default, a global bicubic skip) and why are described in
:mod:`genvision.tasks.superres.models`, which trains it.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["SRNet", "SRResidualBlock", "upscale_bicubic"]


def upscale_bicubic(lr: Tensor, scale: int) -> Tensor:
    """Antialiased bicubic up-sampling (torch, a = -0.5 as Pillow / MATLAB), clipped to [0, 1].

    [N, C, h, w] -> [N, C, scale*h, scale*w]: the super-resolution baseline, and what
    :class:`SRNet` with ``global_skip`` adds its output to.
    """
    h, w = lr.shape[-2:]
    up = F.interpolate(lr, size=(h * scale, w * scale), mode="bicubic", antialias=True,
                       align_corners=False)
    return up.clamp(0.0, 1.0)


class SRResidualBlock(nn.Module):
    """EDSR-style residual block without BatchNorm: x + conv(PReLU(conv(x))), [N, C, H, W].

    (Not :class:`genvision.nn.blocks.ResBlock`, the pre-activation SiLU block of the VAE,
    nor the causal block of PixelCNN: a different block with its own parameter names.)
    """

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
        self.body = nn.Sequential(*[SRResidualBlock(width) for _ in range(blocks)])
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
