"""The patch discriminator of SRGAN and pix2pix, sized for a CPU.

A PatchGAN (Isola et al. 2017, https://arxiv.org/abs/1611.07004) classifies every
overlapping patch of its input as real or generated instead of the whole image: a stack
of 4x4 convolutions, stride 2 except the last two, LeakyReLU(0.2), ending in one logit per
patch. With ``layers = 3`` each logit sees 70x70 input pixels, pix2pix's default; SRGAN's
discriminator (Ledig et al. 2017, https://arxiv.org/abs/1609.04802) is the same idea with
a dense head. No normalisation layers: batches of a few CPU patches make BatchNorm
statistics noisy, and without them the logits of one patch do not depend on the others.

The image-to-image tasks' discriminator (superres, colorize); the unconditional GANs of
``genvision.models`` use :mod:`genvision.nn.gan_nets`.
"""

from __future__ import annotations

from torch import Tensor, nn


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
