"""Cross-domain image translation: pix2pix (paired) and CycleGAN (unpaired).

* :class:`Pix2Pix` -- Isola et al. 2017, "Image-to-Image Translation with Conditional
  Adversarial Networks", https://arxiv.org/abs/1611.07004: a U-Net G(a) -> b against a
  PatchGAN that sees (a, b) pairs, loss ``BCE + l1_weight * |G(a) - b|``.
* :class:`CycleGAN` -- Zhu et al. 2017, "Unpaired Image-to-Image Translation using
  Cycle-Consistent Adversarial Networks", https://arxiv.org/abs/1703.10593: two U-Nets
  G_ab, G_ba and two PatchGANs D_a, D_b with least-squares losses, cycle consistency
  ``|G_ba(G_ab(a)) - a| + |G_ab(G_ba(b)) - b|`` (weight ``cycle_weight``), the identity
  loss ``|G_ab(b) - b| + |G_ba(a) - a|`` (weight ``identity_weight * cycle_weight``; only
  when both domains have the same channels) and a 50-image history pool per D.

Both are image-to-image models (no density, no unconditional sampler). A training batch
``x`` [N, C_a + C_b, H, W] in [0, 1] holds an image of domain A in its first ``a_channels``
channels and one of domain B in the rest: the true pair for pix2pix, any B image for
CycleGAN, whose losses are sums of terms over A images and over B images, never over
pairs. Generators end in tanh, rescaled to [0, 1].
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from ..errors import UserError
from ..nn.adversarial import d_objective, g_objective
from ..nn.image_pool import ImagePool
from ..nn.patchgan import PatchDiscriminator
from ..nn.unet import UNet
from .base import CHANNELS, DEPTH, NONNEG, WIDTH, ModelConfig, bounds
from .image_to_image import ImageTaskModel, task_model
from .protocol import OptimizerSpec, Phase, PhaseLoss, StepContext

__all__ = ["TranslationConfig", "CycleGANConfig", "Pix2Pix", "CycleGAN", "cycle_loss"]


@dataclasses.dataclass
class TranslationConfig(ModelConfig):
    """Networks of a translation model; ``channels`` = C_a + C_b of a stacked batch."""

    channels: int = dataclasses.field(default=4, metadata={"cli": False, **CHANNELS,
                                                           **bounds(2, 6)})
    a_channels: int = dataclasses.field(default=1, metadata={"cli": False, **bounds(1, 3)})
    data_kind: str = dataclasses.field(default="rgb8", metadata={"cli": False})
    width: int = dataclasses.field(default=32, metadata={"help": "U-Net channels at full size",
                                                         **WIDTH})
    depth: int = dataclasses.field(default=2, metadata={"help": "U-Net stride-2 levels",
                                                        **DEPTH})
    block: Literal["plain", "residual"] = dataclasses.field(default="plain", metadata={
        "help": "U-Net blocks: plain (conv + LeakyReLU, no normalisation) or residual "
                "(GroupNorm, the normalised generator CycleGAN uses)"})
    disc_width: int = dataclasses.field(default=32, metadata={
        "help": "channels of the PatchGAN's first layer", **WIDTH})
    disc_layers: int = dataclasses.field(default=2, metadata={
        "help": "stride-2 layers of the PatchGAN (2: 34x34 patches, 3: 70x70)", **DEPTH})
    l1_weight: float = dataclasses.field(default=100.0, metadata={
        "help": "pix2pix: weight of L1 to the true pair against the adversarial loss",
        **NONNEG})

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.a_channels < self.channels or self.b_channels > 3:
            raise ValueError(f"a_channels={self.a_channels} and channels={self.channels} "
                             "must leave 1 to 3 channels to each domain")

    @property
    def b_channels(self) -> int:
        return self.channels - self.a_channels


#: CycleGAN's cycle weight lambda (Zhu et al. 2017)
CYCLEGAN_CYCLE_WEIGHT = 10.0
#: the default cycle weight through a domain with more channels than the other
RICHER_CYCLE_WEIGHT = 1.0


@dataclasses.dataclass
class CycleGANConfig(TranslationConfig):
    """CycleGAN's loss weights and pool on top of the networks."""

    # normalised generators by default: with plain blocks the MNIST -> MNIST-M CycleGAN
    # collapsed (G_ba drew black images from step 100 on, D_a's loss fell to 0 and the
    # cycle losses never moved), with GroupNorm residual blocks both cycles fell at once
    block: Literal["plain", "residual"] = dataclasses.field(default="residual", metadata={
        "help": "U-Net blocks: residual (GroupNorm, the normalised generators CycleGAN "
                "uses) or plain (conv + LeakyReLU, no normalisation)"})
    cycle_weight: float | None = dataclasses.field(default=None, metadata={
        "help": f"weight lambda_A of the A -> B -> A cycle L1 (default: CycleGAN's "
                f"{CYCLEGAN_CYCLE_WEIGHT:g}, or {RICHER_CYCLE_WEIGHT:g} when A has more channels "
                "than B: a colour image cannot come back from grey)", **NONNEG})
    cycle_weight_b: float | None = dataclasses.field(default=None, metadata={
        "help": f"weight lambda_B of the B -> A -> B cycle L1 (default: CycleGAN's "
                f"{CYCLEGAN_CYCLE_WEIGHT:g}, or {RICHER_CYCLE_WEIGHT:g} when B has more channels "
                "than A)", **NONNEG})
    identity_weight: float = dataclasses.field(default=0.5, metadata={
        "help": "identity L1 weight, as a fraction of the cycle weights (CycleGAN: 0.5; used "
                "only when both domains have the same channels)", **NONNEG})
    pool_size: int = dataclasses.field(default=50, metadata={
        "help": "generated images kept for the discriminators (0: none)",
        **bounds(0, 10_000)})

    def __post_init__(self) -> None:
        super().__post_init__()
        # A colour image cannot be recovered from its grey translation, so a full-weight
        # cycle through the colour side pays G into the grey side to hide the colours in
        # faint extra strokes (CycleGAN's steganography, Chu et al. 2017,
        # https://arxiv.org/abs/1712.02950): on MNIST -> MNIST-M -> MNIST, ones came back
        # with a foot and read as sixes (BENCHMARKS.md, issue 19). A weak cycle on the
        # richer side keeps the shapes honest; the grey side's cycle stays at 10.
        if self.cycle_weight is None:
            self.cycle_weight = (RICHER_CYCLE_WEIGHT if self.a_channels > self.b_channels
                                 else CYCLEGAN_CYCLE_WEIGHT)
        if self.cycle_weight_b is None:
            self.cycle_weight_b = (RICHER_CYCLE_WEIGHT if self.b_channels > self.a_channels
                                   else CYCLEGAN_CYCLE_WEIGHT)


def _to01(t: Tensor) -> Tensor:
    return (t + 1) / 2


def cycle_loss(a: Tensor, b: Tensor, g_ab: Any, g_ba: Any) -> tuple[Tensor, Tensor]:
    """The two cycle terms ``|g_ba(g_ab(a)) - a|``, ``|g_ab(g_ba(b)) - b|`` (mean L1) of
    images a [N, C_a, H, W] and b [N, C_b, H, W] under generators given as callables."""
    return (g_ba(g_ab(a)) - a).abs().mean(), (g_ab(g_ba(b)) - b).abs().mean()


class _Translator(ImageTaskModel):
    """What both methods share: the stacked batch, the A -> B generator, translate()."""

    config_class: ClassVar[type[ModelConfig]] = TranslationConfig
    family = "image-to-image (translation)"
    supported_data_kinds = ("binary", "grey8", "rgb8")

    def __init__(self, config: TranslationConfig):
        super().__init__(config)
        c = config
        self.g_ab = UNet(c.width, c.depth, c.a_channels, c.b_channels, block=c.block)

    def split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """A [N, C_a, H, W] and B [N, C_b, H, W] of a stacked batch x, checked."""
        self.check_input(x)
        if x.numel() and (x.min() < 0 or x.max() > 1):
            raise UserError(f"{self.name} expects pixel values in [0, 1]",
                            "scale the images to [0, 1] (genvision data does this)")
        return x[:, :self.config.a_channels], x[:, self.config.a_channels:]

    def generate(self, net: UNet, images: Tensor) -> Tensor:
        """A generator's output in [0, 1] for images [N, C, H, W] in [0, 1]."""
        return _to01(net(images))

    @torch.no_grad()
    def translate(self, images: Tensor, direction: str = "a2b") -> Tensor:
        """Translate images [N, C, H, W] in [0, 1] of one domain into the other."""
        net = self._generator(direction)
        want = self.config.a_channels if direction == "a2b" else self.config.b_channels
        if images.dim() != 4 or images.shape[1] != want:
            raise UserError(f"{self.name} {direction} takes images [N, {want}, H, W], got "
                            f"{list(images.shape)}", "pass images of the source domain")
        return self.generate(net, images)

    def _generator(self, direction: str) -> UNet:
        if direction != "a2b":
            raise UserError(f"{self.name} translates a2b only, not {direction!r}",
                            "use a CycleGAN run for both directions")
        return self.g_ab


@task_model("pix2pix")
class Pix2Pix(_Translator):
    """pix2pix: U-Net G(a) -> b, conditional PatchGAN on (a, b), L1 to the true b."""

    config_class = TranslationConfig

    def __init__(self, config: TranslationConfig):
        super().__init__(config)
        self.d = PatchDiscriminator(config.channels, config.disc_width, config.disc_layers)

    def loss(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        """L1 of G(a) to the true b (the supervised part of the objective)."""
        a, b = self.split(x)
        l1 = (self.generate(self.g_ab, a) - b).abs().mean()
        return {"loss": l1, "l1": l1}

    def phases(self, train: Any) -> list[Phase]:
        """D on (a, b) pairs, then G (one Adam each at the run's lr and betas)."""
        spec = OptimizerSpec("adam", train.lr, (train.beta1, train.beta2))
        return [Phase("discriminator", self.d.parameters(), spec, self._d_phase),
                Phase("generator", self.g_ab.parameters(), spec, self._g_phase,
                      frozen=(self.d,))]

    def _d_phase(self, x: Tensor, y: Tensor | None, ctx: StepContext) -> PhaseLoss:
        a, b = self.split(x)
        fake = self.generate(self.g_ab, a)
        ctx.scratch.update(a=a, b=b, fake=fake)
        real_s = self.d(torch.cat([a, b], 1))
        fake_s = self.d(torch.cat([a, fake.detach()], 1))
        # pix2pix halves D's loss to slow it relative to G
        d_loss = 0.5 * d_objective("ns", real_s, fake_s)
        return d_loss, {"d_loss": d_loss.detach(),
                        "d_real": torch.sigmoid(real_s).mean().detach(),
                        "d_fake": torch.sigmoid(fake_s).mean().detach()}

    def _g_phase(self, x: Tensor, y: Tensor | None, ctx: StepContext) -> PhaseLoss:
        a, b, fake = ctx.scratch["a"], ctx.scratch["b"], ctx.scratch["fake"]
        adv = g_objective("ns", self.d(torch.cat([a, fake], 1)))
        l1 = (fake - b).abs().mean()
        g_loss = adv + self.config.l1_weight * l1
        return g_loss, {"loss": g_loss.detach(), "adv": adv.detach(), "l1": l1.detach()}


@task_model("cyclegan")
class CycleGAN(_Translator):
    """CycleGAN: G_ab, G_ba, D_a, D_b; least squares, cycle and identity L1, image pools."""

    config_class = CycleGANConfig

    def __init__(self, config: CycleGANConfig):
        super().__init__(config)
        c = config
        h, w = c.image_size
        self.g_ba = UNet(c.width, c.depth, c.b_channels, c.a_channels, block=c.block)
        self.d_a = PatchDiscriminator(c.a_channels, c.disc_width, c.disc_layers)
        self.d_b = PatchDiscriminator(c.b_channels, c.disc_width, c.disc_layers)
        self.pool_a = ImagePool(c.pool_size, (c.a_channels, h, w))
        self.pool_b = ImagePool(c.pool_size, (c.b_channels, h, w))

    @property
    def uses_identity(self) -> bool:
        """The identity loss needs G_ab to accept B images: same channel counts."""
        c = self.config
        return c.identity_weight > 0 and c.a_channels == c.b_channels

    def _generator(self, direction: str) -> UNet:
        if direction not in ("a2b", "b2a"):
            raise UserError(f"unknown direction {direction!r}", "use a2b or b2a")
        return self.g_ab if direction == "a2b" else self.g_ba

    def generator_terms(self, a: Tensor, b: Tensor) -> tuple[Tensor, dict[str, Tensor],
                                                             Tensor, Tensor]:
        """Generators' loss, its terms, and the fakes G_ab(a), G_ba(b) for the D phase."""
        c = self.config

        def ab(t: Tensor) -> Tensor:
            return self.generate(self.g_ab, t)

        def ba(t: Tensor) -> Tensor:
            return self.generate(self.g_ba, t)
        fake_b, fake_a = ab(a), ba(b)
        adv_ab = g_objective("ls", self.d_b(fake_b))
        adv_ba = g_objective("ls", self.d_a(fake_a))
        cyc_a = (ba(fake_b) - a).abs().mean()  # cycle_loss, reusing the fakes
        cyc_b = (ab(fake_a) - b).abs().mean()
        terms = {"adv_ab": adv_ab, "adv_ba": adv_ba, "cycle_a": cyc_a, "cycle_b": cyc_b}
        assert c.cycle_weight is not None and c.cycle_weight_b is not None  # __post_init__
        loss = adv_ab + adv_ba + c.cycle_weight * cyc_a + c.cycle_weight_b * cyc_b
        if self.uses_identity:
            # as CycleGAN weighs them: G_ba(a) ~ a scaled by lambda_A, G_ab(b) ~ b by lambda_B
            idt_a, idt_b = (ba(a) - a).abs().mean(), (ab(b) - b).abs().mean()
            terms.update(identity_a=idt_a, identity_b=idt_b)
            loss = loss + c.identity_weight * (c.cycle_weight * idt_a
                                               + c.cycle_weight_b * idt_b)
        return loss, terms, fake_b, fake_a

    def loss(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        """The generators' objective (adversarial + cycle + identity) and its terms."""
        a, b = self.split(x)
        loss, terms, _, _ = self.generator_terms(a, b)
        return {"loss": loss, **terms}

    def phases(self, train: Any) -> list[Phase]:
        """Both generators, then both discriminators on pooled fakes (CycleGAN's order);
        one Adam each at the run's lr and betas."""
        spec = OptimizerSpec("adam", train.lr, (train.beta1, train.beta2))
        gens = [*self.g_ab.parameters(), *self.g_ba.parameters()]
        discs = [*self.d_a.parameters(), *self.d_b.parameters()]
        return [Phase("generators", gens, spec, self._g_phase, frozen=(self.d_a, self.d_b)),
                Phase("discriminators", discs, spec, self._d_phase)]

    def _g_phase(self, x: Tensor, y: Tensor | None, ctx: StepContext) -> PhaseLoss:
        a, b = self.split(x)
        loss, terms, fake_b, fake_a = self.generator_terms(a, b)
        ctx.scratch.update(a=a, b=b, fake_a=fake_a.detach(), fake_b=fake_b.detach())
        return loss, {"loss": loss.detach(), **{k: v.detach() for k, v in terms.items()}}

    def _d_phase(self, x: Tensor, y: Tensor | None, ctx: StepContext) -> PhaseLoss:
        s = ctx.scratch
        fake_a, fake_b = self.pool_a.query(s["fake_a"]), self.pool_b.query(s["fake_b"])
        # CycleGAN halves each D's loss to slow D relative to G
        d_a = 0.5 * d_objective("ls", self.d_a(s["a"]), self.d_a(fake_a))
        d_b = 0.5 * d_objective("ls", self.d_b(s["b"]), self.d_b(fake_b))
        return d_a + d_b, {"d_a": d_a.detach(), "d_b": d_b.detach()}
