"""Exponential moving average of model parameters, used for sampling and evaluation.

shadow <- d_t * shadow + (1 - d_t) * param after every optimiser step (Polyak
averaging; as used for DDPM, arXiv:2006.11239), with the warm-up
d_t = min(decay, (1 + t) / (10 + t)) of TensorFlow's ExponentialMovingAverage: without it
a short run's average is still mostly the random initial weights (after 355 steps at
decay 0.999, 70% of the shadow is the initialisation). Buffers (e.g. BatchNorm statistics) are
not averaged: the live model's buffers are used as they are, which is the same as copying
them into the EMA model.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn


class EMA:
    """Shadow copies of every parameter of ``model``.

    Args:
        model: the (unwrapped) model whose parameters are averaged.
        decay: in (0, 1), e.g. 0.999.
    """

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.shadow: dict[str, Tensor] = {
            name: p.detach().clone() for name, p in model.named_parameters()}

    def decay_at(self, step: int) -> float:
        """Effective decay for the update after optimiser step ``step`` (1-based)."""
        return min(self.decay, (1.0 + step) / (10.0 + step))

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Fold the live parameters in after optimiser step ``step`` (1-based)."""
        weight = 1.0 - self.decay_at(step)
        for name, p in model.named_parameters():
            self.shadow[name].lerp_(p.detach(), weight)

    @contextmanager
    def swapped(self, model: nn.Module) -> Iterator[nn.Module]:
        """Temporarily put the EMA weights into ``model``; the raw ones come back exactly."""
        params = dict(model.named_parameters())
        backup = {name: p.detach().clone() for name, p in params.items()}
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(self.shadow[name])
        try:
            yield model
        finally:
            with torch.no_grad():
                for name, p in params.items():
                    p.copy_(backup[name])

    def state_tensors(self) -> dict[str, Tensor]:
        return dict(self.shadow)

    def load_state_tensors(self, tensors: dict[str, Tensor]) -> None:
        missing = sorted(set(self.shadow) - set(tensors))
        if missing:
            raise KeyError(f"EMA state lacks {missing[:3]}")
        with torch.no_grad():
            for name, t in self.shadow.items():
                t.copy_(tensors[name])


class ShadowEMA:
    """EMA into a shadow network that the model keeps in its own state dict (a GAN's
    G_ema, from ``GenerativeModel.ema_pair``): same update and warm-up as :class:`EMA`,
    nothing of its own to checkpoint, and sampling reads the shadow directly.

    Buffers are not copied: the shadow keeps its own (BatchNorm statistics belong to its
    weights, not to the live ones: copied over they cost G_ema ~4 FID points in a short
    MNIST run); :meth:`refresh_buffers` updates them with one forward pass.
    """

    def __init__(self, live: nn.Module, shadow: nn.Module, decay: float):
        self.live, self.shadow_module, self.decay = live, shadow, decay

    def decay_at(self, step: int) -> float:
        """0 (a copy) when the run's decay is 0; else the warm-up of :class:`EMA`."""
        return min(self.decay, (1.0 + step) / (10.0 + step)) if self.decay > 0 else 0.0

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        weight = 1.0 - self.decay_at(step)
        for pe, p in zip(self.shadow_module.parameters(), self.live.parameters(), strict=True):
            pe.lerp_(p, weight)

    @torch.no_grad()
    def refresh_buffers(self, inputs: tuple) -> None:
        """One training-mode forward pass of the shadow on ``inputs`` (running stats)."""
        was = self.shadow_module.training
        self.shadow_module.train()
        self.shadow_module(*inputs)
        self.shadow_module.train(was)

    @contextmanager
    def swapped(self, model: nn.Module) -> Iterator[nn.Module]:
        yield model  # the model samples from its shadow itself

    def state_tensors(self) -> dict[str, Tensor]:
        return {}  # the shadow is part of the model's state dict

    def load_state_tensors(self, tensors: dict[str, Tensor]) -> None:
        pass
