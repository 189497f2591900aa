"""Callbacks: how sample grids, loggers, watchers and user code hook into the training loop.

After minGPT's ``trainer.py`` callback registry: the loop calls the hooks and imports none
of their users. This module sits at the bottom of the layering (it imports only torch),
so a model can hand the loop callbacks of its own (``GenerativeModel.callbacks()``, e.g. a
GAN's collapse watcher) without importing the training package.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import Tensor


@dataclasses.dataclass
class TrainResult:
    """What the training loop returns (on rank 0 the files named here exist).

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
    """Live view handed to callbacks.

    Attributes:
        step: optimiser steps done. epoch: epochs done (float).
        terms: the last step's loss terms (floats).
        model: the model being trained (unwrapped). optimizers: one per phase, by name.
        run_dir: the run directory. rank: this process's rank under torchrun (0 alone).
        batch: the last step's (x [B, C, H, W], y [B] or None) on the training device.
        should_stop: set True to end the run cleanly after this step.
        eval_mode: ``with state.eval_mode(seed):`` gives eval mode, no grad, the EMA
            weights and a private RNG stream, so a callback that samples never changes
            what training does next.
    """

    step: int
    epoch: float
    terms: dict[str, float]
    model: Any
    optimizers: dict[str, torch.optim.Optimizer]
    run_dir: Path
    rank: int
    batch: tuple[Tensor, Tensor | None] | None = None
    should_stop: bool = False
    eval_mode: Callable[[int], AbstractContextManager] = lambda seed: nullcontext()
    #: messages the loop writes to metrics.jsonl (``split: "warning"``) and stderr
    warnings: list[str] = dataclasses.field(default_factory=list)

    def warn(self, message: str) -> None:
        """Report a training problem (e.g. a collapsing GAN); the loop logs it once."""
        self.warnings.append(message)


class Callback:
    """Hooks for the CLI, models and user code; override what you need.

    ``on_step_end`` runs on every rank (so a callback can stop all of them together);
    the other hooks run on rank 0 only.
    """

    def on_train_start(self, state: TrainState) -> None: ...

    def on_step_end(self, state: TrainState) -> None: ...

    def on_log(self, step: int, metrics: dict[str, Any]) -> None: ...

    def on_eval(self, step: int, metrics: dict[str, Any]) -> None: ...

    def on_checkpoint(self, step: int, path: Path) -> None: ...

    def on_train_end(self, result: TrainResult) -> None: ...
