"""Colorization models: predict the ab channels of Lab from L.

* :class:`ColorizeRegression`: a U-Net trained with L1 on ab (Zhang et al. 2016,
  https://arxiv.org/abs/1603.08511, show why this washes colours out: under uncertainty
  the L1-optimal colour is a median, often a desaturated one).
* :class:`ColorizeGAN`: pix2pix (Isola et al. 2017, https://arxiv.org/abs/1611.07004): the
  same U-Net against a PatchGAN that sees (L, ab), loss ``BCE + l1_weight * L1``.

The U-Net (:class:`genvision.nn.unet.UNet`; Ronneberger et al. 2015,
https://arxiv.org/abs/1505.04597) is CPU-sized: 3
stride-2 levels of 32-128 channels, nearest up-sampling + 3x3 convs (no checkerboard), no
normalisation layers (so a whole image and a patch are treated alike), tanh output whose
convolution starts at zero, so an untrained colorizer returns the grey input (ab = 0).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..data.lab import AB_SCALE
from ..nn.adversarial import d_objective, g_objective
from ..nn.patchgan import PatchDiscriminator
from ..nn.unet import UNet
from .base import CHANNELS, DEPTH, IMAGE_SIDE, NONNEG, WIDTH, ModelConfig
from .image_to_image import ImageTaskModel, task_model
from .protocol import OptimizerSpec, Phase, PhaseLoss, StepContext


@dataclasses.dataclass
class ColorizeConfig(ModelConfig):
    """U-Net options; ``image_size`` is the training patch."""

    channels: int = dataclasses.field(default=3, metadata={"cli": False, **CHANNELS})
    image_size: tuple[int, int] = dataclasses.field(default=(64, 64), metadata={"cli": False,
                                                                                **IMAGE_SIDE})
    data_kind: str = dataclasses.field(default="rgb8", metadata={"cli": False})
    width: int = dataclasses.field(default=32, metadata={"help": "U-Net channels at full size",
                                                         **WIDTH})
    depth: int = dataclasses.field(default=3, metadata={"help": "U-Net stride-2 levels", **DEPTH})

    def __post_init__(self) -> None:
        if self.width < 1 or self.depth < 1:
            raise ValueError("width and depth must be >= 1")


def chroma(ab: Tensor) -> Tensor:
    """Mean chroma sqrt(a^2 + b^2) in Lab units of normalised ab [N, 2, H, W]."""
    return (ab * AB_SCALE).pow(2).sum(1).sqrt().mean()


class _ColorizeBase(ImageTaskModel):
    """The generator and the L1 terms shared by both colorizers; ``x`` is normalised Lab."""

    def __init__(self, config: ColorizeConfig):
        super().__init__(config)
        self.generator = UNet(config.width, config.depth)

    @torch.no_grad()
    def predict_ab(self, L: Tensor) -> Tensor:
        """Normalised L [N, 1, H, W] of any size -> normalised ab [N, 2, H, W]."""
        m = self.generator.multiple
        h, w = L.shape[-2:]
        pad = (0, (-w) % m, 0, (-h) % m)
        mode = "reflect" if min(h, w) > max(pad) else "replicate"
        return self.generator(F.pad(L, pad, mode=mode))[..., :h, :w]

    def l1_terms(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        L, ab = x[:, :1], x[:, 1:]
        pred = self.generator(L)
        terms = {"l1": (pred - ab).abs().mean(), "chroma_pred": chroma(pred.detach()),
                 "chroma_true": chroma(ab)}
        return pred, terms

    def loss(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        _, terms = self.l1_terms(x)
        return {"loss": terms["l1"], **terms}


@task_model("colorize-regression")
class ColorizeRegression(_ColorizeBase):
    """U-Net regression of ab with an L1 loss."""

    config_class = ColorizeConfig


@dataclasses.dataclass
class ColorizeGANConfig(ColorizeConfig):
    """pix2pix options on top of the U-Net's."""

    disc_width: int = dataclasses.field(default=32, metadata={
        "help": "channels of the PatchGAN's first layer", **WIDTH})
    disc_layers: int = dataclasses.field(default=3, metadata={
        "help": "stride-2 layers of the PatchGAN (3: 70x70 patches)", **DEPTH})
    l1_weight: float = dataclasses.field(default=10.0, metadata={
        "help": "weight of L1 against the adversarial loss (pix2pix: 100)", **NONNEG})


@task_model("colorize-gan")
class ColorizeGAN(_ColorizeBase):
    """pix2pix colorizer: U-Net generator, PatchGAN on (L, ab)."""

    config_class = ColorizeGANConfig
    family = "image-to-image (GAN)"

    def __init__(self, config: ColorizeGANConfig):
        super().__init__(config)
        self.discriminator = PatchDiscriminator(3, config.disc_width, config.disc_layers)

    def phases(self, train: Any) -> list[Phase]:
        """A PatchGAN phase on (L, ab) pairs, then a generator phase (one Adam each at the
        run's ``--lr`` and betas; the loop clips, scales and steps both)."""
        spec = OptimizerSpec("adam", train.lr, (train.beta1, train.beta2))
        return [Phase("discriminator", self.discriminator.parameters(), spec, self._d_phase),
                Phase("generator", self.generator.parameters(), spec, self._g_phase,
                      frozen=(self.discriminator,))]

    def _d_phase(self, x: Tensor, y: Tensor | None, ctx: StepContext) -> PhaseLoss:
        pred, terms = self.l1_terms(x)
        ctx.scratch.update(pred=pred, terms=terms)
        real = self.discriminator(x)
        fake = self.discriminator(torch.cat([x[:, :1], pred.detach()], 1))
        # pix2pix halves the discriminator's loss to slow it relative to the generator
        d_loss = 0.5 * d_objective("ns", real, fake)
        return d_loss, {"d_loss": d_loss.detach(), "d_real": torch.sigmoid(real).mean().detach(),
                        "d_fake": torch.sigmoid(fake).mean().detach()}

    def _g_phase(self, x: Tensor, y: Tensor | None, ctx: StepContext) -> PhaseLoss:
        pred, terms = ctx.scratch["pred"], ctx.scratch["terms"]
        adv = g_objective("ns", self.discriminator(torch.cat([x[:, :1], pred], 1)))
        g_loss = adv + self.config.l1_weight * terms["l1"]
        return g_loss, {"loss": g_loss.detach(), **{k: v.detach() for k, v in terms.items()},
                        "adv": adv.detach()}
