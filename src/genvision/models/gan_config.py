"""Hyper-parameters of the GANs (:mod:`genvision.models.gan`): one config for every
objective, and the per-variant defaults that the registered ``dcgan``, ``wgan-gp`` and
``sngan`` models use (each default with the measurement that chose it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import field
from typing import Any, Literal

from ..errors import UserError
from ..nn.diffaugment import parse_policy
from .base import (
    MAX_CLASSES,
    MAX_DEPTH,
    MAX_K,
    MAX_WIDTH,
    NONNEG,
    POSITIVE,
    UNIT,
    WIDTH,
    ModelConfig,
    bounds,
)
from .gan_watch import D_WIN_LOSS

__all__ = ["DCGANConfig", "GANConfig", "SNGANConfig", "WGANGPConfig"]

@dataclasses.dataclass
class GANConfig(ModelConfig):
    """Hyper-parameters of every GAN; the registered variants change the defaults.

    Sizes were chosen for minutes of CPU: in 3-minute MNIST-5k trials on a shared 2-core
    machine (G 64 / D 64 channels: 808 DCGAN steps, FID 33-41; G 32 / D 32: 1,533 steps,
    FID 35) the larger nets reached a similar score in half the steps, so they were kept
    for longer budgets (FIDs in genvision's MNIST feature space, 10,000 samples against
    the official test digits). Per-variant defaults: see
    :class:`DCGANConfig`, :class:`WGANGPConfig`, :class:`SNGANConfig`.
    """

    loss: Literal["ns", "wgan-gp", "hinge"] = field(
        default="ns", metadata={"cli": False, "help": "adversarial objective (set by the model "
                                                      "name: dcgan, wgan-gp, sngan)"})
    latent_dim: int = field(default=64, metadata={"help": "size of the latent code z", **WIDTH})
    g_width: int = field(default=64, metadata={"help": "generator channels (its first stage "
                                                       "has twice as many)",
                                               **bounds(2, MAX_WIDTH)})
    d_width: int = field(default=64, metadata={"help": "discriminator channels (its later "
                                                       "stages have twice as many)", **WIDTH})
    label_dim: int = field(default=16, metadata={"help": "label embedding size in G "
                                                         "(conditional)", **WIDTH})
    spectral_norm: bool = field(default=False, metadata={"help": "spectral normalisation of "
                                                                 "every D weight"})
    lr_g: float = field(default=2e-4, metadata={"help": "generator Adam learning rate", **POSITIVE})
    lr_d: float = field(default=2e-4, metadata={"help": "discriminator Adam learning rate "
                                                        "(TTUR: may differ from --lr-g)",
                                                **POSITIVE})
    adam_betas: tuple[float, ...] = field(default=(0.5, 0.999),
                                          metadata={"help": "Adam beta1 beta2 of both networks",
                                                    **UNIT})
    n_critic: int = field(default=1, metadata={"help": "D updates per G update (each on the "
                                                       "step's real batch, fresh z)",
                                               **bounds(1, MAX_DEPTH)})
    gp_weight: float = field(default=10.0, metadata={"help": "gradient-penalty weight lambda "
                                                             "(wgan-gp only)", **NONNEG})
    r1_gamma: float = field(default=0.0, metadata={"help": "R1 penalty gamma/2 E||grad D(x)||^2 "
                                                           "on real images (0 = off)", **NONNEG})
    diffaug: str = field(default="", metadata={"help": "DiffAugment policy: comma list of "
                                                       "color,translation,cutout ('' = off)"})
    truncation: float = field(default=0.0, metadata={"help": "sample z from a normal truncated "
                                                             "at +-this (0 = off)", **NONNEG})
    info_codes: int = field(default=0, metadata={
        "help": "InfoGAN: give G a uniform categorical code with this many values besides z "
                "and train D's Q head to recover it, so G can keep separate modes apart "
                "without labels (0 = off; unconditional models only)", **bounds(0, MAX_CLASSES)})
    info_weight: float = field(default=1.0, metadata={
        "help": "weight lambda of the InfoGAN code-recovery term, for D/Q and G", **NONNEG})
    self_condition: int = field(default=0, metadata={
        "help": "self-conditioned GAN: k-means the training images into this many clusters "
                "before training, condition G and D on each image's cluster and sample "
                "clusters at their data frequencies; no labels used (0 = off; unconditional "
                "models only)", **bounds(0, MAX_K)})
    watch_every: int = field(default=100, metadata={"help": "check for collapsed samples every "
                                                            "N steps (before step 5N only a "
                                                            "fall from diverse samples "
                                                            "warns; 0 = off)",
                                                    **NONNEG})
    collapse_ratio: float = field(
        default=0.2, metadata={"help": "warn when fixed-latent samples differ by less than "
                                       "this fraction of the real images' pairwise distance",
                               **UNIT})
    d_win_steps: int = field(
        default=200, metadata={"help": f"warn when D's loss stays below {D_WIN_LOSS} this many "
                                       "steps in a row (0 = off; not for wgan-gp)", **NONNEG})

    def __post_init__(self) -> None:
        betas = tuple(self.adam_betas)
        checks = [(self.latent_dim >= 1 and self.label_dim >= 1, "latent_dim, label_dim >= 1"),
                  (self.g_width >= 2 and self.d_width >= 1, "g_width >= 2 and d_width >= 1"),
                  (self.lr_g > 0 and self.lr_d > 0, "lr_g and lr_d must be positive"),
                  (len(betas) == 2 and all(0 <= b < 1 for b in betas),
                   "adam_betas needs two values in [0, 1)"),
                  (self.n_critic >= 1, "n_critic must be >= 1"),
                  (self.info_codes >= 0 and self.info_weight >= 0,
                   "info_codes and info_weight must be >= 0"),
                  (not (self.info_codes and self.num_classes),
                   "--info-codes is for unconditional models (a conditional model has labels)"),
                  (self.self_condition >= 0, "self_condition must be >= 0"),
                  (not (self.self_condition and self.num_classes),
                   "--self-condition is for unconditional models (a conditional model has "
                   "labels)"),
                  (not (self.self_condition and self.info_codes),
                   "--self-condition and --info-codes are two ways to the same end: "
                   "pick one"),
                  (min(self.gp_weight, self.r1_gamma, self.truncation) >= 0,
                   "gp_weight, r1_gamma and truncation must be >= 0"),
                  (self.watch_every >= 0 and self.d_win_steps >= 0,
                   "watch_every and d_win_steps must be >= 0"),
                  (0 <= self.collapse_ratio < 1, "collapse_ratio must be in [0, 1)")]
        for ok, msg in checks:
            if not ok:
                raise UserError(f"invalid GAN config: {msg}", "change the option value")
        try:
            parse_policy(self.diffaug)
        except ValueError as exc:
            raise UserError(str(exc), "pass e.g. --diffaug translation,cutout") from None


def _default(name: str, value: Any) -> Any:
    """A GANConfig field with another default (same help text)."""
    return field(default=value, metadata=GANConfig.__dataclass_fields__[name].metadata)


@dataclasses.dataclass
class DCGANConfig(GANConfig):
    """DCGAN defaults: non-saturating loss, Adam 2e-4 with beta1 0.5 (Radford et al.), and
    R1 (gamma 1): without it G stayed collapsed on small data (8x8 digits: 64 fixed-latent
    samples at 0.05 of the real images' spread after 400 steps; 0.31 with it)."""

    r1_gamma: float = _default("r1_gamma", 1.0)


@dataclasses.dataclass
class WGANGPConfig(GANConfig):
    """WGAN-GP defaults: lambda 10, Adam betas (0.5, 0.9) as in Gulrajani et al.'s MNIST
    code, but 2 critic steps per G step and 2e-4 rates (not 5 and 1e-4): a CPU budget of
    minutes buys few G steps, and these settings train stably on MNIST-5k."""

    loss: Literal["ns", "wgan-gp", "hinge"] = _default("loss", "wgan-gp")
    adam_betas: tuple[float, ...] = _default("adam_betas", (0.5, 0.9))
    n_critic: int = _default("n_critic", 2)


@dataclasses.dataclass
class SNGANConfig(GANConfig):
    """SNGAN defaults: hinge loss, spectral norm in D, TTUR rates 2e-4 (G) / 4e-4 (D) with
    Adam betas (0, 0.9) (the SAGAN / BigGAN recipe for one D step per G step, with G's rate
    doubled for short budgets: in 3,964-step MNIST-5k runs, G at 2e-4 instead of 1e-4
    lowered the binarised-protocol FID from 9.88 to 6.95 unconditional and from 1.24 to 0.39
    class-conditional)."""

    loss: Literal["ns", "wgan-gp", "hinge"] = _default("loss", "hinge")
    spectral_norm: bool = _default("spectral_norm", True)
    lr_g: float = _default("lr_g", 2e-4)
    lr_d: float = _default("lr_d", 4e-4)
    adam_betas: tuple[float, ...] = _default("adam_betas", (0.0, 0.9))
