"""Hyper-parameters and the sampler of the normalizing flows (:mod:`genvision.models.flow`)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import field
from typing import ClassVar, Literal

from ..errors import UserError
from .base import DEPTH, MAX_K, WIDTH, ModelConfig, bounds
from .sampling import SamplerOptions

__all__ = ["FlowConfig", "RealNVPConfig", "GlowConfig", "FlowSampler", "MAX_TEMPERATURE"]

#: the largest sampling temperature (a standard deviation multiplier of the latents)
MAX_TEMPERATURE = 10.0


@dataclasses.dataclass
class FlowConfig(ModelConfig):
    """Fields shared by :class:`~genvision.models.flow.RealNVP` and
    :class:`~genvision.models.flow.Glow`.

    Defaults are sized for a 28x28 model that learns on 2 CPU cores in minutes (narrow
    coupling networks, two scales); the papers used hundreds of channels on GPUs.
    """

    levels: int = field(default=2, metadata={
        "help": "scales of the multi-scale architecture: squeezes (2x2 -> channels), each "
                "followed by factoring out half the values; H and W must divide by "
                "2**levels", **bounds(0, 8)})
    depth: int = field(default=3, metadata={
        "help": "coupling layers per stage (RealNVP) / flow steps per scale (Glow)",
        **bounds(1, 64)})
    width: int = field(default=32, metadata={"help": "channels of each coupling network",
                                             **WIDTH})
    net_blocks: int = field(default=1, metadata={
        "help": "residual blocks inside each coupling network", **DEPTH})
    logit_alpha: float = field(default=0.05, metadata={
        "help": "pre-processing x -> logit(alpha + (1 - 2 alpha) x) (RealNVP); > 0 keeps "
                "the edge values finite", **bounds(0, 0.5, lo_open=True, hi_open=True)})
    # variational by default: on binary digits it gave a clearly tighter bound than
    # uniform noise at equal training time, although each step costs about twice as much
    # (uniform noise fills each binary pixel's half of the unit interval evenly, a
    # box-shaped density the flow must model; q(u|x) can put the noise where p is high)
    dequantization: Literal["uniform", "variational"] = field(default="variational", metadata={
        "help": "noise that turns discrete pixels into continuous values: uniform, or a "
                "learned conditional flow q(u|x) (Flow++ variational dequantisation)"})
    deq_width: int = field(default=16, metadata={
        "help": "channels of the variational dequantiser's networks", **WIDTH})
    deq_depth: int = field(default=2, metadata={
        "help": "coupling layers of the variational dequantiser", **bounds(1, 64)})
    eval_k: int = field(default=1, metadata={
        "help": "dequantisation noise samples per image of log_prob (k > 1: the "
                "importance-weighted bound)", **bounds(1, MAX_K)})
    init_images: int = field(default=256, metadata={
        "help": "training images of actnorm's data-dependent initialisation",
        **bounds(1, 100_000)})

    def __post_init__(self) -> None:
        super().__post_init__()
        h, w = self.image_size
        step = 2 ** self.levels
        if h % step or w % step:
            fits = max(k for k in range(self.levels + 1) if h % 2 ** k == 0 and w % 2 ** k == 0)
            raise UserError(f"a flow with {self.levels} levels needs image sides divisible by "
                            f"{step}, got {h}x{w}", f"use --levels {fits} or resize the data")


@dataclasses.dataclass
class RealNVPConfig(FlowConfig):
    """RealNVP: per scale ``depth`` checkerboard couplings, a squeeze, ``depth`` channel
    couplings, then half the channels factored out; ``depth + 1`` checkerboard couplings
    at the last scale."""


@dataclasses.dataclass
class GlowConfig(FlowConfig):
    """Glow: per scale a squeeze and ``depth`` steps of actnorm, invertible 1x1
    convolution and affine coupling, then half the channels factored out (not after
    the last scale)."""

    depth: int = field(default=4, metadata={
        "help": "flow steps (actnorm, 1x1 conv, coupling) per scale", **bounds(1, 64)})


@dataclasses.dataclass(frozen=True)
class FlowSampler(SamplerOptions):
    """x = f^-1(z), z ~ N(mu, (temperature * sigma)^2) of the prior, then the bin of each
    value (the discrete pixel).

    ``temperature`` scales the latents' standard deviation (Glow, section 5: values below
    1 trade diversity for cleaner images); 1 samples the model itself, 0 decodes the
    prior's mode.
    """

    name: ClassVar[str] = "ancestral"
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.temperature) and 0 <= self.temperature <= MAX_TEMPERATURE):
            raise ValueError(f"temperature must be in [0, {MAX_TEMPERATURE:g}], "
                             f"got {self.temperature}")
