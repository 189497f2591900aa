"""The small convolutional generator and discriminator shared by every GAN variant.

One implementation, composed into DCGAN / WGAN-GP / SNGAN by options (the guide's
"compose variants, do not copy them"):

* :class:`Generator` -- DCGAN-style (Radford et al. 2015, https://arxiv.org/abs/1511.06434):
  a dense layer to a (H/4 x W/4) feature map, two stride-2 transposed convolutions with
  BatchNorm + ReLU, a 3x3 output convolution and a sigmoid, so images land in [0, 1].
  Class-conditional generators concatenate a learned label embedding to z.
* :class:`Discriminator` -- two stride-2 4x4 convolutions with LeakyReLU(0.2) (the classic
  small MNIST discriminator) and no normalisation (BatchNorm would break the per-sample
  gradient penalties), then a linear score. Optional spectral normalisation of every
  weight (Miyato et al. 2018, https://arxiv.org/abs/1802.05957) and, for class-conditional
  models, the projection term <embed(y), phi(x)> (Miyato & Koyama 2018, https://arxiv.org/abs/1802.05637).

Both need image sides that are multiples of 4 (two factor-2 stages); any such size works.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

__all__ = ["Discriminator", "Generator"]


class Generator(nn.Module):
    """z [N, D] (+ labels [N]) -> images [N, C, H, W] in [0, 1].

    Args:
        latent_dim: size of z. channels, height, width: image shape (sides multiples of 4).
        width: channels of the last hidden stage (the first has ``2 * width``).
        num_classes: 0 = unconditional. label_dim: size of the label embedding.
    """

    def __init__(self, latent_dim: int, channels: int, height: int, width_px: int, width: int,
                 num_classes: int = 0, label_dim: int = 16):
        super().__init__()
        self.low = (2 * width, height // 4, width_px // 4)
        self.embed = nn.Embedding(num_classes, label_dim) if num_classes else None
        d_in = latent_dim + (label_dim if num_classes else 0)
        c0, h0, w0 = self.low
        self.fc = nn.Linear(d_in, c0 * h0 * w0)
        self.net = nn.Sequential(
            nn.BatchNorm2d(c0), nn.ReLU(),
            nn.ConvTranspose2d(c0, width, 4, stride=2, padding=1), nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.ConvTranspose2d(width, width // 2, 4, stride=2, padding=1),
            nn.BatchNorm2d(width // 2), nn.ReLU(),
            nn.Conv2d(width // 2, channels, 3, padding=1), nn.Sigmoid())

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        if self.embed is not None:
            if y is None:
                raise ValueError("a class-conditional generator needs labels")
            z = torch.cat([z, self.embed(y)], 1)
        return self.net(self.fc(z).view(-1, *self.low))


class Discriminator(nn.Module):
    """Images [N, C, H, W] (+ labels [N]) -> one real-valued score per image, [N].

    Args:
        channels: image channels. height, width_px: image sides (multiples of 4).
        width: channels of the first stage (then ``2 * width``).
        num_classes: 0 = unconditional, else a projection discriminator.
        spectral: spectral-normalise every weight (SNGAN).
        codes: > 0 adds InfoGAN's Q head (Chen et al. 2016,
            https://arxiv.org/abs/1606.03657): logits [N, codes] of the categorical code G
            was given, read from D's features (see :meth:`code_logits`).
    """

    def __init__(self, channels: int, height: int, width_px: int, width: int,
                 num_classes: int = 0, spectral: bool = False, codes: int = 0):
        super().__init__()
        sn = spectral_norm if spectral else (lambda m: m)
        self.net = nn.Sequential(
            sn(nn.Conv2d(channels, width, 4, stride=2, padding=1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(width, 2 * width, 4, stride=2, padding=1)), nn.LeakyReLU(0.2),
            nn.Flatten())
        feat = 2 * width * (height // 4) * (width_px // 4)
        self.out = sn(nn.Linear(feat, 1))
        self.embed = sn(nn.Embedding(num_classes, feat)) if num_classes else None
        # Q is not spectrally normalised: it is a classifier, not a critic
        self.q = nn.Linear(feat, codes) if codes else None

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return self.score_and_codes(x, y)[0]

    def score_and_codes(self, x: Tensor, y: Tensor | None = None
                        ) -> tuple[Tensor, Tensor | None]:
        """Scores [N] and, with a Q head, code logits [N, codes] (else None) from one pass."""
        phi = self.net(2 * x - 1)  # centre the [0, 1] pixels
        score = self.out(phi).squeeze(1)
        if self.embed is not None and y is not None:
            score = score + (self.embed(y) * phi).sum(1)  # projection term
        return score, (self.q(phi) if self.q is not None else None)
