"""Synthetic labelled images from a class-conditional model trained on the same few images.

No extra data enters: the generator sees only the N real labelled images the classifier
gets, so any gain must come from what the model generalises (smooth variations of stroke
and shape), not from new information. Generated images are true model samples (binary
pixels drawn from the model's Bernoulli likelihood), the same kind of images as the
statically binarised real ones.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from ...models.base import GenerativeModel
from ..classify.generative import GenBudget, train_conditional

GENERATORS = ("vae", "gated-pixelcnn")


def balanced_labels(m: int, num_classes: int, seed: int) -> Tensor:
    """``m`` labels, each class ``m // K`` or one more times (extra ones seeded): int64 [m]."""
    labels = torch.arange(m) % num_classes
    return labels[torch.randperm(m, generator=torch.Generator().manual_seed(seed))]


@torch.no_grad()
def generate(model: GenerativeModel, m: int, num_classes: int, seed: int,
             batch: int = 500) -> tuple[Tensor, Tensor]:
    """Draw ``m`` class-balanced samples: (x float32 [m, C, H, W] in {0, 1}, y int64 [m])."""
    y = balanced_labels(m, num_classes, seed)
    gen = torch.Generator().manual_seed(seed)
    xs = [model.sample(len(y[i:i + batch]), y=y[i:i + batch], generator=gen)
          for i in range(0, m, batch)]
    x = torch.cat(xs) if xs else torch.empty(0, *model.config.shape)
    return x.float(), y


def synthetic_set(name: str, x: Tensor, y: Tensor, num_classes: int, m: int,
                  budget: GenBudget, seed: int, keep_dir: Path | None = None
                  ) -> tuple[Tensor, Tensor, GenerativeModel]:
    """Train generator ``name`` on (x, y), then sample ``m`` labelled images from it."""
    model = train_conditional(name, x, y, num_classes, budget, seed, keep_dir)
    xg, yg = generate(model, m, num_classes, seed)
    return xg, yg, model
