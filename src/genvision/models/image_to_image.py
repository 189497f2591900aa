"""Base of the image-to-image task models (super-resolution, colorization).

They model p(output | input), not p(x): conditional, no density, no unconditional
sampler. ``loss(x)`` takes target images [N, C, H, W] and derives the model's input
itself (bicubic down-sampling, the L channel). They register in the one model registry
(:func:`genvision.models.base.register`), so ``genvision.load`` rebuilds them like any
model; each is trained by its task's command (``genvision superres train``), and
``genvision train`` refuses them.
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from ..errors import UserError
from .base import GenerativeModel, register


class ImageTaskModel(GenerativeModel):
    """Base of the image-to-image models: conditional, no density, no unconditional sampler.

    ``loss(x)`` takes target images [N, C, H, W] and derives the model's input itself.
    """

    family: ClassVar[str] = "image-to-image"
    likelihood_kind = "none"
    supported_data_kinds = ("rgb8",)

    def check_input(self, x: Tensor, y: Tensor | None = None) -> None:
        want = self.config.channels
        if x.dim() != 4 or x.shape[1] != want:
            raise UserError(f"{self.name} expects images [N, {want}, H, W], got {list(x.shape)}",
                            "pass colour images")


def task_model(name: str):
    """Class decorator: register an image-to-image model in the one model registry (the
    same as :func:`~genvision.models.base.register`; kept as the task models' name)."""
    return register(name)
