"""The data classes of the training loop's public API: its input, output and callbacks."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..models.base import GenerativeModel


@dataclasses.dataclass
class TrainData:
    """In-memory training data, already preprocessed.

    Attributes:
        x: float32 [N, C, H, W].
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


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns (on rank 0 the files named here exist).

    Attributes:
        step: optimiser steps done in the whole run (all resumes included).
        epochs: epochs done (float) in the whole run.
        time_s: training wall time of the whole run (all resumes included).
        images_per_s: images (all processes) per wall-clock second of this call.
        train_metrics: mean loss terms of the last logged window.
        val_metrics: mean loss terms over the validation set at the end (None: no val set).
        checkpoint: the final checkpoint directory.
    """

    step: int
    epochs: float
    time_s: float
    images_per_s: float
    train_metrics: dict[str, float]
    val_metrics: dict[str, float] | None
    run_dir: Path
    checkpoint: Path | None


@dataclasses.dataclass
class TrainState:
    """Live view handed to callbacks. Set ``should_stop = True`` to end the run cleanly."""

    step: int
    epoch: float
    terms: dict[str, float]
    model: GenerativeModel
    optimizers: dict[str, torch.optim.Optimizer]
    run_dir: Path
    rank: int
    should_stop: bool = False


class Callback:
    """Hooks for the CLI and user code; override what you need.

    ``on_step_end`` runs on every rank; the other hooks run on rank 0 only.
    """

    def on_train_start(self, state: TrainState) -> None: ...

    def on_step_end(self, state: TrainState) -> None: ...

    def on_log(self, step: int, metrics: dict[str, Any]) -> None: ...

    def on_eval(self, step: int, metrics: dict[str, Any]) -> None: ...

    def on_checkpoint(self, step: int, path: Path) -> None: ...

    def on_train_end(self, result: TrainResult) -> None: ...
