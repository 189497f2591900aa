"""Open the model of any run: a model run, a task run (its last trained stage), a
checkpoint or a ``save_pretrained`` directory. ``genvision.load`` is :func:`load`."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import CheckpointError, UserError
from ..models.base import CONFIG_FILE, GenerativeModel
from ..models.base import load as load_model_dir
from .layout import RunLayout
from .records import RunInfo, read_run_info


def trained_stages(run_dir: str | os.PathLike, info: RunInfo) -> list[str]:
    """Stages of a task run whose directory holds a checkpoint, in training order."""
    layout = RunLayout(run_dir)
    return [s for s in info.stage_names if layout.stage(s).has_checkpoint()]


def stage_dir(run_dir: str | os.PathLike, info: RunInfo, stage: str | None = None) -> Path:
    """The directory of a task run's ``stage`` (default: the last trained one).

    Raises:
        UserError: the stage is not trained. CheckpointError: its directory is a link.
    """
    trained = trained_stages(run_dir, info)
    if stage is None:
        if not trained:
            raise UserError(f"{run_dir} has no trained stage (stages: "
                            f"{', '.join(info.stage_names) or 'none'})",
                            f"train it with `genvision {info.task} train --out {run_dir}`")
        stage = trained[-1]
    if stage not in trained:
        raise UserError(f"{run_dir} has no trained {stage} (trained: "
                        f"{', '.join(trained) or 'none'})",
                        f"train it with `genvision {info.task} train --method {stage} "
                        f"--out {run_dir}`")
    root = RunLayout(run_dir).stage(stage).root
    if root.is_symlink():  # a planted link would load (and train into) another directory
        raise CheckpointError(f"{root} (the {stage} stage of {run_dir}) is a symbolic link; a "
                              "run's stages must be its own directories",
                              "replace the link with a copy of the stage, or retrain it")
    return root


def model_dir(path: str | os.PathLike) -> Path:
    """Where the model of ``path`` lives: a task run's last trained stage, else ``path``."""
    path = Path(path)
    layout = RunLayout(path)
    if path.is_dir() and not (path / CONFIG_FILE).is_file() and (
            layout.run_json.is_file() or layout.task_json.is_file()):
        info = read_run_info(path)
        if info.is_task:
            return stage_dir(path, info)
    return path


def load(path: str | os.PathLike, *, device: str | torch.device = "cpu") -> GenerativeModel:
    """Rebuild the model of a run directory (task runs: the last trained stage), a
    checkpoint or a ``save_pretrained`` directory.

    Example:
        >>> model = genvision.load("runs/vae")      # doctest: +SKIP
        >>> x = model.sample(16)                     # [16, C, H, W] in [0, 1]
        >>> sr = genvision.load("runs/sr4")          # the run's SRGAN (or SRResNet)
    """
    return load_model_dir(model_dir(path), device=device)
