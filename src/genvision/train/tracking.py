"""Experiment trackers: TensorBoard event files beside ``metrics.jsonl``, and optional
Weights & Biases / MLflow loggers.

Each tracker is a :class:`~genvision.callbacks.Callback` (minGPT's ``add_callback`` idea:
the loop calls hooks and knows no logger). It receives every line the loop writes to
``metrics.jsonl`` (``on_log`` for training windows, ``on_eval`` for validation passes),
so the scalars it records are the same numbers, under ``SPLIT/KEY`` tags
(``train/loss``, ``val/loss``, ``train/images_per_s``, ...), and the sample grids the
:class:`~genvision.train.callbacks.SampleGrids` callback draws (``on_images``).

TensorBoard (https://www.tensorflow.org/tensorboard) is written through
``torch.utils.tensorboard.SummaryWriter``, which needs the ``tensorboard`` package (the
``tracking`` extra: ``pip install genvision[tracking]``); without it a run says so once
and trains on. ``tensorboard --logdir runs`` then shows every run under ``runs/``.
W&B (https://docs.wandb.ai) and MLflow (https://mlflow.org/docs/latest/tracking.html)
are used only when asked for (``--log-to wandb``) and installed; a missing one is a
one-line error before any work.
"""

from __future__ import annotations

import importlib
import importlib.util
import numbers
import sys
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from ..callbacks import Callback, TrainResult, TrainState
from ..errors import UserError
from ..grids import make_grid

#: the run's sub-folder of TensorBoard event files (runs/layout.py names it too)
TENSORBOARD = "tensorboard"
#: event files of TensorBoard (and tensorboardX) writers start with this
EVENT_PREFIX = "events.out.tfevents."
#: ``--log-to`` choices -> the package each needs
EXTERNAL_LOGGERS = {"wandb": "wandb", "mlflow": "mlflow"}
#: keys of a metrics.jsonl line that are not scalars to plot
NOT_SCALARS = ("step", "split")


def scalars(line: dict[str, Any]) -> dict[str, float]:
    """``{"SPLIT/KEY": value}`` for the numeric fields of a metrics.jsonl line."""
    split = line.get("split", "train")
    return {f"{split}/{k}": float(v) for k, v in line.items()
            if k not in NOT_SCALARS and isinstance(v, numbers.Real) and not isinstance(v, bool)}


def tensorboard_available() -> bool:
    """Whether ``torch.utils.tensorboard`` can write event files (``tensorboard`` is
    installed)."""
    return importlib.util.find_spec("tensorboard") is not None


class Tracker(Callback):
    """A callback that records scalars and images; subclasses implement the three
    ``_write_*`` / ``close`` methods. Only rank 0 receives the hooks."""

    def on_log(self, step: int, metrics: dict[str, Any]) -> None:
        self._write_scalars(step, scalars(metrics))

    def on_eval(self, step: int, metrics: dict[str, Any]) -> None:
        self._write_scalars(step, scalars(metrics))

    def on_images(self, step: int, tag: str, images: Tensor) -> None:
        """A grid of images [N, C, H, W] in [0, 1] (e.g. the progress samples)."""
        self._write_images(step, tag, images)

    def on_train_end(self, result: TrainResult) -> None:
        self.close()

    def _write_scalars(self, step: int, values: dict[str, float]) -> None: ...

    def _write_images(self, step: int, tag: str, images: Tensor) -> None: ...

    def close(self) -> None: ...


class TensorBoardLogger(Tracker):
    """Write ``RUN/tensorboard/events.out.tfevents.*`` (scalars and sample grids).

    A new run first removes the event files of an earlier start in the same directory
    (one that never reached a checkpoint, which the new run replaces), so the curves are
    this run's; a resumed run appends a new event file beside the old ones.

    Args:
        run_dir: the run directory. resume: keep earlier event files.
    """

    def __init__(self, run_dir: str | Path, resume: bool = False):
        self.dir = Path(run_dir) / TENSORBOARD
        self.resume = resume
        self.writer: Any = None

    def on_train_start(self, state: TrainState) -> None:
        if not tensorboard_available():
            print("note: no TensorBoard event files: the tensorboard package is not "
                  "installed (pip install tensorboard, or pass --no-tensorboard)",
                  file=sys.stderr)
            return
        # deferred: importing it pulls in tensorboard (and protobuf); only when writing
        from torch.utils.tensorboard import SummaryWriter

        if not self.resume and self.dir.is_dir():
            for old in self.dir.glob(f"{EVENT_PREFIX}*"):
                old.unlink()
        self.writer = SummaryWriter(log_dir=str(self.dir))

    def _write_scalars(self, step: int, values: dict[str, float]) -> None:
        if self.writer is None:
            return
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, global_step=step)
        self.writer.flush()  # a run watched live, or killed, shows every logged line

    def _write_images(self, step: int, tag: str, images: Tensor) -> None:
        if self.writer is None:
            return
        self.writer.add_image(tag, _grid(images), global_step=step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class ExternalLogger(Tracker):
    """Weights & Biases or MLflow, through their own clients (imported when the run
    starts; :func:`check_external` refuses a missing one before any work).

    Args:
        kind: ``wandb`` or ``mlflow``. run_dir: named as the run. config: the run's
            resolved options, recorded as the run's config / parameters.
    """

    def __init__(self, kind: str, run_dir: str | Path, config: dict[str, Any]):
        self.kind, self.run_dir, self.config = kind, Path(run_dir), config
        self.client: Any = None

    def on_train_start(self, state: TrainState) -> None:
        self.client = importlib.import_module(EXTERNAL_LOGGERS[self.kind])
        name = self.run_dir.name
        if self.kind == "wandb":
            self.client.init(project="genvision", name=name, dir=str(self.run_dir),
                             config=self.config, resume="allow")
        else:
            self.client.start_run(run_name=name)
            self.client.log_params({k: v for k, v in self.config.items() if v is not None})

    def _write_scalars(self, step: int, values: dict[str, float]) -> None:
        if self.client is None:
            return
        if self.kind == "wandb":
            self.client.log(values, step=step)
        else:  # MLflow metric keys may not hold every character: '/' is allowed
            self.client.log_metrics(values, step=step)

    def _write_images(self, step: int, tag: str, images: Tensor) -> None:
        if self.client is None:
            return
        array = _grid(images)
        if self.kind == "wandb":
            self.client.log({tag: self.client.Image(array)}, step=step)
        else:
            self.client.log_image(array, f"{tag}-{step:08d}.png")

    def close(self) -> None:
        if self.client is not None:
            (self.client.finish if self.kind == "wandb" else self.client.end_run)()
            self.client = None


def check_external(kinds: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The ``--log-to`` loggers, checked: each must be known and importable.

    Args:
        kinds: ``"wandb"``, ``"wandb,mlflow"``, a sequence of names, or ``""`` (none).

    Raises:
        UserError: an unknown name, or a package that is not installed (one line naming
            ``pip install PACKAGE``).
    """
    names = [k.strip() for k in (kinds.split(",") if isinstance(kinds, str) else kinds)]
    names = [k for k in names if k]
    for name in names:
        if name not in EXTERNAL_LOGGERS:
            raise UserError(f"unknown --log-to {name!r}",
                            f"use {' or '.join(EXTERNAL_LOGGERS)} (TensorBoard is always "
                            "written; --no-tensorboard turns it off)")
        package = EXTERNAL_LOGGERS[name]
        if importlib.util.find_spec(package) is None:
            raise UserError(f"--log-to {name} needs the {package} package, which is not "
                            "installed", f"pip install {package}, or drop --log-to {name}")
    return tuple(names)


def _grid(images: Tensor, nrow: int = 8) -> np.ndarray:
    """[N, C, H, W] in [0, 1] -> one uint8 grid [H', W', 3] (grey repeated to RGB), the
    tiling of the run's ``samples/`` PNGs."""
    arr = make_grid(images, nrow=nrow)
    return np.repeat(arr, 3, axis=2) if arr.shape[2] == 1 else arr


def make_trackers(cfg: Any, run_dir: str | Path, resume: bool,
                  run_info: dict[str, Any]) -> list[Tracker]:
    """The trackers a run's :class:`~genvision.train.config.TrainConfig` asks for:
    TensorBoard unless ``cfg.tensorboard`` is off, then each ``cfg.log_to`` logger."""
    out: list[Tracker] = []
    if cfg.tensorboard:
        out.append(TensorBoardLogger(run_dir, resume=resume))
    params = {"model": run_info.get("model")}
    for section in ("model_config", "train_config", "data_config"):
        params.update({f"{section.split('_')[0]}.{k}": v
                       for k, v in (run_info.get(section) or {}).items()})
    for kind in check_external(cfg.log_to):
        out.append(ExternalLogger(kind, run_dir, params))
    return out
