"""The data classes of the training loop's public API: its input (:class:`TrainData`);
its output and callbacks live in :mod:`genvision.callbacks` and are re-exported here."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torch import Tensor

from ..callbacks import Callback, TrainResult, TrainState

__all__ = ["Callback", "TrainData", "TrainResult", "TrainState"]


@dataclasses.dataclass
class TrainData:
    """In-memory training data, already preprocessed.

    Attributes:
        x: float32 [N, C, H, W], or a :class:`~genvision.data.stream.StreamedImages`
            (``--stream``) that reads each batch ``x[idx]`` from disk.
        y: int64 [N] class labels, or None.
        transform: per-batch ``f(x [B, C, H, W], generator) -> x`` (e.g. dynamic
            binarisation) drawing *all* its randomness from the generator given, whose
            state is checkpointed. Applied to training batches only.
        val_x, val_y: validation set used as given (no transform).
    """

    x: Tensor
    y: Tensor | None = None
    transform: Callable[[Tensor, torch.Generator], Tensor] | None = None
    val_x: Tensor | None = None
    val_y: Tensor | None = None
