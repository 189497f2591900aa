"""SRResNet and SRGAN (Ledig et al. 2017, https://arxiv.org/abs/1609.04802), CPU-sized.

The generator (:class:`genvision.nn.srresnet.SRNet`) follows SRResNet: a convolutional
head, residual blocks, a long skip over
them, pixel-shuffle up-sampling (Shi et al. 2016, https://arxiv.org/abs/1609.05158: x2 and
x3 in one step, x4 as two x2 steps) and a convolutional tail. Departures, each for
short CPU training:

* no BatchNorm in the residual blocks (EDSR, Lim et al. 2017,
  https://arxiv.org/abs/1707.02921, found it lowers PSNR; it also makes tiles depend on
  batch statistics);
* 3x3 head and tail instead of 9x9, and 32 channels x 8 blocks by default instead of 64 x 16;
* ``upsampler="espcn"`` by default: one sub-pixel convolution at low resolution instead of
  the x2 stages and the full-resolution tail (``upsampler="srresnet"`` keeps those);
* ``global_skip``: the network predicts the residual over the bicubic up-sampling (VDSR,
  Kim et al. 2016, https://arxiv.org/abs/1511.04587), with the tail initialised to zero,
  so training starts exactly at the bicubic baseline and only has to learn the detail.

SRGAN fine-tunes that generator from a trained SRResNet against the patch discriminator
(:class:`~genvision.nn.patchgan.PatchDiscriminator`) with
``pixel_weight * L1 + perceptual_weight * feature L1 + adv_weight * BCE`` (the form of
ESRGAN's loss, Wang et al. 2018, https://arxiv.org/abs/1809.00219; feature spaces in
:mod:`.perceptual`). Defaults 0.1 / 1 / 5e-3: at the start of a run from a trained
SRResNet the three weighted terms were then of one size (~3e-3 each, measured with the
discriminator's features), so neither the pixel loss nor the GAN drowns the others.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import torch
from torch import Tensor, nn

from ..data.degrade import downscale, upscale_bicubic
from ..nn import perceptual as perc
from ..nn.adversarial import d_objective, g_objective
from ..nn.patchgan import PatchDiscriminator
from ..nn.srresnet import SRNet
from .base import CHANNELS, DEPTH, IMAGE_SIDE, NONNEG, WIDTH, ModelConfig, bounds
from .image_to_image import ImageTaskModel, task_model
from .protocol import OptimizerSpec, Phase, PhaseLoss, StepContext

#: ReLU outputs of VGG19 a perceptual loss can compare (keys of perceptual.VGG19_RELUS)
VGGLayer = Literal["relu1_2", "relu2_2", "relu3_4", "relu4_4", "relu5_4"]


@dataclasses.dataclass
class SRResNetConfig(ModelConfig):
    """SRResNet options; ``image_size`` is the high-resolution training patch."""

    channels: int = dataclasses.field(default=3, metadata={"cli": False, **CHANNELS})
    image_size: tuple[int, int] = dataclasses.field(default=(64, 64), metadata={"cli": False,
                                                                                **IMAGE_SIDE})
    data_kind: str = dataclasses.field(default="rgb8", metadata={"cli": False})
    scale: int = dataclasses.field(default=4, metadata={"cli": False, **bounds(1, 16)})
    width: int = dataclasses.field(default=32, metadata={"help": "channels of the generator",
                                                         **WIDTH})
    blocks: int = dataclasses.field(default=8, metadata={"help": "residual blocks", **DEPTH})
    global_skip: bool = dataclasses.field(
        default=True, metadata={"help": "predict the residual over bicubic up-sampling"})
    upsampler: Literal["espcn", "srresnet"] = dataclasses.field(default="espcn", metadata={
        "help": "espcn (one sub-pixel conv at low resolution, fast) or srresnet (the "
                "paper's x2 stages and a full-resolution conv)"})
    pixel_loss: Literal["l1", "mse"] = dataclasses.field(default="l1", metadata={
        "help": "pixel loss: l1 or mse (the SRResNet paper's)"})

    def __post_init__(self) -> None:
        if self.pixel_loss not in ("l1", "mse"):
            raise ValueError(f"pixel_loss must be l1 or mse, got {self.pixel_loss!r}")
        if self.upsampler not in ("espcn", "srresnet"):
            raise ValueError(f"upsampler must be espcn or srresnet, got {self.upsampler!r}")
        if self.width < 1 or self.blocks < 0:
            raise ValueError("width must be >= 1 and blocks >= 0")


def batch_psnr(pred: Tensor, target: Tensor) -> Tensor:
    """Mean over the batch of per-image RGB PSNR (dB, float, no border crop): a training
    monitor, not the evaluation metric (see :mod:`genvision.tasks.common.metrics`)."""
    mse = (pred.clamp(0, 1) - target).pow(2).flatten(1).mean(1).clamp_min(1e-10)
    return (-10.0 * torch.log10(mse)).mean()


class _SRBase(ImageTaskModel):
    """What SRResNet and SRGAN share: the generator, the degradation and the pixel loss."""

    def __init__(self, config: SRResNetConfig):
        super().__init__(config)
        self.generator = SRNet(config.scale, config.width, config.blocks, config.global_skip,
                               config.upsampler)

    @property
    def scale(self) -> int:
        return self.config.scale

    @property
    def receptive_radius(self) -> int:
        return self.generator.receptive_radius

    @torch.no_grad()
    def upscale(self, lr: Tensor) -> Tensor:
        """LR [N, 3, h, w] in [0, 1] -> SR [N, 3, s*h, s*w] clipped to [0, 1]."""
        return self.generator(lr).clamp(0.0, 1.0)

    def pixel_terms(self, hr: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """SR of the degraded ``hr`` and the pixel-loss terms (``pixel``, ``psnr``, gain)."""
        lr = downscale(hr, self.scale)
        sr = self.generator(lr)
        diff = sr - hr
        pixel = diff.abs().mean() if self.config.pixel_loss == "l1" else diff.pow(2).mean()
        with torch.no_grad():
            psnr = batch_psnr(sr, hr)
            gain = psnr - batch_psnr(upscale_bicubic(lr, self.scale), hr)
        return sr, {"pixel": pixel, "psnr": psnr, "psnr_gain": gain}

    def loss(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        """Pixel loss of the SR of ``x``'s degradation; ``x`` are HR patches [N, 3, H, W]."""
        _, terms = self.pixel_terms(x)
        return {"loss": terms["pixel"], **terms}


@task_model("srresnet")
class SRResNet(_SRBase):
    """SRResNet trained with a pixel loss (L1 by default, MSE in the paper)."""

    config_class = SRResNetConfig


@dataclasses.dataclass
class SRGANConfig(SRResNetConfig):
    """SRGAN options: the generator's (from the SRResNet it starts from) plus the GAN's."""

    disc_width: int = dataclasses.field(default=32, metadata={
        "help": "channels of the patch discriminator's first layer", **WIDTH})
    disc_layers: int = dataclasses.field(default=3, metadata={
        "help": "stride-2 layers of the discriminator (3: 70x70 patches)", **DEPTH})
    pixel_weight: float = dataclasses.field(default=0.1, metadata={
        "help": "weight of the pixel loss (low, so the GAN terms can sharpen)", **NONNEG})
    perceptual_weight: float = dataclasses.field(default=1.0, metadata={
        "help": "weight of the perceptual (feature) loss", **NONNEG})
    adv_weight: float = dataclasses.field(default=5e-3, metadata={
        "help": "weight of the adversarial loss", **NONNEG})
    perceptual: str = dataclasses.field(default="disc", metadata={
        "cli": False, "help": "disc, none or vgg19:PATH"})
    perceptual_layer: VGGLayer = dataclasses.field(default="relu5_4", metadata={
        "help": "VGG19 layer of --perceptual vgg19:PATH (relu5_4 = the paper's VGG54)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        perc.parse_spec(self.perceptual)


@task_model("srgan")
class SRGAN(_SRBase):
    """SRResNet generator + patch discriminator, adversarial and perceptual losses."""

    config_class = SRGANConfig
    family = "image-to-image (GAN)"

    def __init__(self, config: SRGANConfig):
        super().__init__(config)
        self.discriminator = PatchDiscriminator(3, config.disc_width, config.disc_layers)
        self._vgg: list[nn.Module] = []  # a list: frozen, never in the state dict or the EMA
        self.perceptual_info: dict[str, Any] | None = None

    def prepare_perceptual(self) -> str:
        """Load the perceptual network (a VGG19 file is read here) and describe it."""
        kind, path = perc.parse_spec(self.config.perceptual)
        if kind == "vgg19" and not self._vgg:
            net, self.perceptual_info = perc.load_vgg19(path, self.config.perceptual_layer)
            self._vgg.append(perc.VGGLoss(net).to(self.device))
        return perc.describe(self.config.perceptual, self.perceptual_info)

    def phases(self, train: Any) -> list[Phase]:
        """A discriminator phase, then a generator phase on the same SR images (one Adam
        each at the run's ``--lr`` and betas; the loop clips, scales and steps both)."""
        spec = OptimizerSpec("adam", train.lr, (train.beta1, train.beta2))
        return [Phase("discriminator", self.discriminator.parameters(), spec, self._d_phase),
                Phase("generator", self.generator.parameters(), spec, self._g_phase,
                      frozen=(self.discriminator,))]

    def _d_phase(self, hr: Tensor, y: Tensor | None, ctx: StepContext) -> PhaseLoss:
        """Non-saturating D loss on HR patches [N, 3, H, W] against their SR."""
        sr, terms = self.pixel_terms(hr)
        ctx.scratch.update(sr=sr, terms=terms)
        real, fake = self.discriminator(hr), self.discriminator(sr.detach())
        d_loss = d_objective("ns", real, fake)
        return d_loss, {"d_loss": d_loss.detach(), "d_real": torch.sigmoid(real).mean().detach(),
                        "d_fake": torch.sigmoid(fake).mean().detach()}

    def _g_phase(self, hr: Tensor, y: Tensor | None, ctx: StepContext) -> PhaseLoss:
        """pixel_weight * pixel + perceptual_weight * content + adv_weight * adversarial."""
        cfg, sr, terms = self.config, ctx.scratch["sr"], ctx.scratch["terms"]
        logits, feats = self.discriminator.forward_with_features(sr)
        adv = g_objective("ns", logits)
        content = self._perceptual(sr, hr, feats)
        g_loss = cfg.pixel_weight * terms["pixel"] + cfg.perceptual_weight * content \
            + cfg.adv_weight * adv
        return g_loss, {"loss": g_loss.detach(), **{k: v.detach() for k, v in terms.items()},
                        "perceptual": content.detach(), "adv": adv.detach()}

    def _perceptual(self, sr: Tensor, hr: Tensor, feats: list[Tensor]) -> Tensor:
        kind, _ = perc.parse_spec(self.config.perceptual)
        if kind == "none":
            return sr.new_zeros(())
        if kind == "disc":
            with torch.no_grad():
                _, target = self.discriminator.forward_with_features(hr)
            return perc.disc_feature_loss(feats, target)
        if not self._vgg:
            self.prepare_perceptual()
        vgg = self._vgg[0].to(sr.device)
        return vgg(sr, hr)


def srgan_from_srresnet(srresnet: SRResNet, **gan_options: Any) -> SRGAN:
    """An SRGAN whose generator is a copy of a trained SRResNet's."""
    base = {f.name: getattr(srresnet.config, f.name)
            for f in dataclasses.fields(SRResNetConfig)}
    model = SRGAN(SRGANConfig(**{**base, **gan_options}))
    model.generator.load_state_dict(srresnet.generator.state_dict())
    return model
