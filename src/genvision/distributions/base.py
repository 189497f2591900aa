"""Helpers shared by the pixel distributions."""

from __future__ import annotations

import torch
from torch import Tensor


def uniform(shape: tuple[int, ...] | torch.Size, generator: torch.Generator | None,
            device: torch.device, dtype: torch.dtype = torch.float32) -> Tensor:
    """U(0, 1) noise of ``shape`` drawn on the generator's device, then moved to ``device``.

    Drawing where the generator lives lets a CPU generator seed a CUDA model, so a seed
    gives the same images on any device; with no generator the global RNG of ``device``
    is used. One ``torch.rand`` call per draw: callers rely on that to keep RNG streams
    unchanged.
    """
    dev = generator.device if generator is not None else device
    return torch.rand(tuple(shape), generator=generator, device=dev, dtype=dtype).to(device)


def sum_image(lp: Tensor) -> Tensor:
    """Sum elementwise log-probabilities [..., C, H, W] over each image -> [...]."""
    return lp.flatten(-3).sum(-1)


def to_levels(v: Tensor, levels: int) -> Tensor:
    """Clamp continuous values to [0, 1] and round them onto ``k / (levels - 1)``."""
    return torch.round(v.clamp(0, 1) * (levels - 1)) / (levels - 1)
