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

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...models.base import ModelConfig
from ...nn.patchgan import PatchDiscriminator
from ...nn.unet import UNet
from ...train.config import TrainConfig
from ..common.runs import ImageTaskModel, task_model
from .lab import AB_SCALE


@dataclasses.dataclass
class ColorizeConfig(ModelConfig):
    """U-Net options; ``image_size`` is the training patch."""

    channels: int = dataclasses.field(default=3, metadata={"cli": False})
    image_size: tuple[int, int] = dataclasses.field(default=(64, 64), metadata={"cli": False})
    data_kind: str = dataclasses.field(default="rgb8", metadata={"cli": False})
    width: int = dataclasses.field(default=32, metadata={"help": "U-Net channels at full size"})
    depth: int = dataclasses.field(default=3, metadata={"help": "U-Net stride-2 levels"})

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
        "help": "channels of the PatchGAN's first layer"})
    disc_layers: int = dataclasses.field(default=3, metadata={
        "help": "stride-2 layers of the PatchGAN (3: 70x70 patches)"})
    l1_weight: float = dataclasses.field(default=10.0, metadata={
        "help": "weight of L1 against the adversarial loss (pix2pix: 100)"})


@task_model("colorize-gan")
class ColorizeGAN(_ColorizeBase):
    """pix2pix colorizer: U-Net generator, PatchGAN on (L, ab)."""

    config_class = ColorizeGANConfig
    family = "image-to-image (GAN)"

    def __init__(self, config: ColorizeGANConfig):
        super().__init__(config)
        self.discriminator = PatchDiscriminator(3, config.disc_width, config.disc_layers)

    def configure_optimizers(self, cfg: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        def adam(module: nn.Module) -> torch.optim.Optimizer:
            return torch.optim.Adam(module.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))

        return {"generator": adam(self.generator), "discriminator": adam(self.discriminator)}

    def training_step(self, batch: tuple[Tensor, Tensor | None],
                      optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, Tensor]:
        """One PatchGAN step on (L, ab) pairs, then one generator step."""
        x, _ = batch
        L = x[:, :1]
        pred, terms = self.l1_terms(x)
        real, fake = self.discriminator(x), self.discriminator(torch.cat([L, pred.detach()], 1))
        # pix2pix halves the discriminator's loss to slow it relative to the generator
        d_loss = 0.5 * (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                        + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
        optimizers["discriminator"].zero_grad(set_to_none=True)
        d_loss.backward()
        optimizers["discriminator"].step()
        self.discriminator.requires_grad_(False)
        try:
            logits = self.discriminator(torch.cat([L, pred], 1))
            adv = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
            g_loss = adv + self.config.l1_weight * terms["l1"]
            optimizers["generator"].zero_grad(set_to_none=True)
            g_loss.backward()
            optimizers["generator"].step()
        finally:
            self.discriminator.requires_grad_(True)
        return {"loss": g_loss.detach(), **{k: v.detach() for k, v in terms.items()},
                "adv": adv.detach(), "d_loss": d_loss.detach(),
                "d_real": torch.sigmoid(real).mean().detach(),
                "d_fake": torch.sigmoid(fake).mean().detach()}
