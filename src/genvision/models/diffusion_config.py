"""Hyper-parameters and sampler options of the diffusion models
(:mod:`genvision.models.diffusion`)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import field
from typing import Any, ClassVar, Literal

from .base import DEPTH, MAX_CLASSES, UNIT, WIDTH, ModelConfig, bounds
from .sampling import SamplerOptions

__all__ = ["DiffusionConfig", "FlowMatchingConfig", "DiffusionSampler", "DDIMSampler",
           "DDPMSampler", "HeunSampler", "EulerSampler", "MAX_STEPS"]

#: the most sampler steps (network evaluations per step: 1, Heun 2)
MAX_STEPS = 10_000
STEPS = bounds(1, MAX_STEPS)
LOG_SNR = bounds(-30, 30)


@dataclasses.dataclass
class DiffusionConfig(ModelConfig):
    """Hyper-parameters of :class:`~genvision.models.diffusion.DDPM`."""

    schedule: Literal["linear", "cosine", "rectified"] = field(
        default="cosine", metadata={"help": "noise schedule: linear (DDPM), cosine (Nichol & "
                                            "Dhariwal), rectified (flow matching's path)"})
    parameterization: Literal["auto", "eps", "v", "velocity", "logits"] = field(
        default="auto", metadata={"help": "what the network predicts: eps (noise), v "
                                          "(Salimans & Ho), velocity (flow matching), logits "
                                          "(binary data: each pixel's log-odds given the "
                                          "other noisy pixels); auto = logits for binary "
                                          "data, v otherwise"})
    width: int = field(default=32, metadata={"help": "U-Net channels at full resolution",
                                             **WIDTH})
    depth: int = field(default=2, metadata={"help": "U-Net stride-2 levels", **DEPTH})
    block: Literal["plain", "residual"] = field(
        default="residual", metadata={"help": "U-Net block: residual (GroupNorm, DDPM-style) "
                                              "or plain (two convolutions)"})
    emb_dim: int = field(default=64, metadata={"help": "noise-level / label embedding size "
                                                       "(even)", **bounds(2, 4096)})
    lambda_min: float = field(default=-10.0, metadata={
        "help": "log-SNR at the noise end (the prior's KL grows as it rises)", **LOG_SNR})
    lambda_max: float = field(default=12.0, metadata={
        "help": "log-SNR at the data end (the discrete decoder needs sigma well below the "
                "gap between levels)", **LOG_SNR})
    label_dropout: float = field(default=0.1, metadata={
        "help": "conditional models: fraction of labels replaced by the null label in "
                "training (classifier-free guidance)", **UNIT})
    self_condition: int = field(default=0, metadata={
        "help": "self-conditioned: k-means the training images into this many clusters "
                "before training, condition the denoiser on each image's cluster and sample "
                "clusters at their data frequencies; no labels used (0 = off; "
                "unconditional models only)", **bounds(0, MAX_CLASSES)})
    sample_steps: int = field(default=50, metadata={
        "help": "default sampler steps (sample/evaluate take --sampler-opt steps=N)", **STEPS})
    eval_timesteps: int = field(default=100, metadata={
        "help": "Monte Carlo timesteps per image of the likelihood bound", **STEPS})
    complete_resample: int = field(default=5, metadata={
        "help": "RePaint repeats of each step when completing images", **bounds(1, 100)})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.parameterization == "auto":  # resolved here, so a saved config says which
            # logits: the measured best on binary digits (BENCHMARKS.md, "Diffusion models")
            self.parameterization = "logits" if self.data_kind == "binary" else "v"
        if self.emb_dim % 2:
            raise ValueError(f"emb_dim must be even, got {self.emb_dim}")
        if self.self_condition and self.num_classes:
            raise ValueError("self_condition is for unconditional models (a conditional "
                             "model has labels)")
        if not self.lambda_min < self.lambda_max:
            raise ValueError(f"lambda_min ({self.lambda_min}) must be below lambda_max "
                             f"({self.lambda_max})")


@dataclasses.dataclass
class FlowMatchingConfig(DiffusionConfig):
    """Flow matching: the rectified path and a velocity target (see DiffusionConfig)."""

    schedule: Literal["linear", "cosine", "rectified"] = field(
        default="rectified", metadata={"help": "noise path (rectified: straight lines)"})
    parameterization: Literal["auto", "eps", "v", "velocity", "logits"] = field(
        default="velocity", metadata={"help": "what the network predicts"})


@dataclasses.dataclass(frozen=True)
class DiffusionSampler(SamplerOptions):
    """Options shared by every diffusion sampler."""

    name: ClassVar[str] = "?"
    #: steps from noise to data (None: the model's ``sample_steps``)
    steps: int | None = None
    #: classifier-free guidance weight of a conditional model: 0 unconditional, 1 the
    #: conditional model, > 1 guided (ignored by unconditional models)
    guidance: float = 1.0
    #: clip the predicted clean image to the data range at each step (DDIM/DDPM only)
    clip: bool = True

    def __post_init__(self) -> None:
        if self.steps is not None and not 1 <= self.steps <= MAX_STEPS:
            raise ValueError(f"steps must be in [1, {MAX_STEPS}], got {self.steps}")
        if not (math.isfinite(self.guidance) and 0 <= self.guidance <= 100):
            raise ValueError(f"guidance must be in [0, 100], got {self.guidance}")

    def resolve(self, model: Any) -> DiffusionSampler:
        if self.steps is not None:
            return self
        return dataclasses.replace(self, steps=int(model.config.sample_steps))


@dataclasses.dataclass(frozen=True)
class DDIMSampler(DiffusionSampler):
    """DDIM (Song et al. 2020): eta = 0 deterministic, eta = 1 ancestral."""

    name: ClassVar[str] = "ddim"
    eta: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.eta <= 1:
            raise ValueError(f"eta must be in [0, 1], got {self.eta}")


@dataclasses.dataclass(frozen=True)
class DDPMSampler(DiffusionSampler):
    """Ancestral DDPM sampling (Ho et al. 2020): a posterior draw at every step."""

    name: ClassVar[str] = "ddpm"


@dataclasses.dataclass(frozen=True)
class HeunSampler(DiffusionSampler):
    """EDM's second-order Heun ODE solver (Karras et al. 2022); 2 evaluations per step."""

    name: ClassVar[str] = "heun"


@dataclasses.dataclass(frozen=True)
class EulerSampler(DiffusionSampler):
    """Euler steps of the probability-flow ODE (flow matching's sampler; = DDIM eta 0
    without clipping)."""

    name: ClassVar[str] = "euler"
    clip: bool = False
