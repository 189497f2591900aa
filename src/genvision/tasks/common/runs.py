"""Task runs: image-to-image models on the one training loop, and their run directories.

A task run directory (``runs/sr4``) holds ``task.json`` (the task, its data protocol and
the stages trained) and one sub-directory per stage (``srresnet/``, ``srgan/``, or
``regression/``, ``gan/``), each an ordinary training-loop run: ``metrics.jsonl``,
``checkpoints/`` (``config.json`` + ``model.safetensors`` + trainer state, resumable).

Why the one loop (:func:`genvision.train.train`) fits: an image-to-image model's
``loss(x)`` takes the *target* patch and makes its own input from it (bicubic
down-sampling, or the L channel), so the loop's ``(x, y)`` batches, per-batch augmentation,
EMA, checkpoints, exact resume, NaN guard and progress bar all work unchanged, and the
GAN variants use its ``training_step`` / ``configure_optimizers`` hooks. A second loop
would only duplicate that bookkeeping.

Task models are not in the registry of ``genvision train`` (they model p(y | x), not
p(x), and have no sampler); :func:`load_task_model` rebuilds them from the same
``config.json`` + ``model.safetensors`` files.
"""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

from ... import __version__
from ... import config as cfg_io
from ...errors import CheckpointError, UserError
from ...io import atomic_write_json, load_tensors, read_json
from ...models.base import CONFIG_FILE, WEIGHTS_FILE, GenerativeModel, resolve_model_dir
from ...train import TrainConfig, TrainData, TrainResult, train
from ...train.checkpoint import has_run

TASK_FILE = "task.json"
_TASK_MODELS: dict[str, type[GenerativeModel]] = {}


def task_model(name: str):
    """Class decorator: make a task model loadable by :func:`load_task_model`."""

    def wrap(cls: type[GenerativeModel]) -> type[GenerativeModel]:
        cls.name = name
        _TASK_MODELS[name] = cls
        return cls

    return wrap


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


def load_task_model(path: str | os.PathLike, *, device: str | torch.device = "cpu",
                    expect: tuple[str, ...] = ()) -> GenerativeModel:
    """Rebuild a task model from a stage directory, a checkpoint or a save_pretrained dir.

    Args:
        expect: allowed model names (others raise a one-line CheckpointError).
    """
    directory = resolve_model_dir(path)
    meta = read_json(directory / CONFIG_FILE, what="model config")
    name = meta.get("model") if isinstance(meta, dict) else None
    if name not in _TASK_MODELS or "config" not in meta:
        raise CheckpointError(f"{directory} does not hold an image-to-image task model "
                              f"(model {name!r})", "pass a run written by this task's train")
    if expect and name not in expect:
        raise CheckpointError(f"{directory} holds a {name} model, not {' or '.join(expect)}",
                              "pass the matching run")
    cls = _TASK_MODELS[name]
    model = cls(cfg_io.from_dict(cls.config_class, meta["config"], what=f"{name} config"))
    state = load_tensors(directory / WEIGHTS_FILE)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"weights in {directory} do not match its config "
                              f"({str(exc).splitlines()[0]})",
                              "the checkpoint is damaged or from another version") from None
    return model.to(device).eval()


# ----- task.json ----------------------------------------------------------------------------
def read_task(out: Path, task: str) -> dict[str, Any] | None:
    """``out/task.json`` when it exists (None otherwise); refuses another task's run."""
    path = Path(out) / TASK_FILE
    if not path.exists():
        return None
    info = read_json(path, what="task file")
    if not isinstance(info, dict) or info.get("task") != task:
        raise UserError(f"{out} holds a {info.get('task') if isinstance(info, dict) else '?'} "
                        f"run, not a {task} run", "choose another --out")
    return info


def require_task(run: str | os.PathLike, task: str) -> dict[str, Any]:
    """The ``task.json`` of an existing run, with a one-line error when there is none."""
    run = Path(run)
    info = read_task(run, task) if run.is_dir() else None
    if info is None:
        raise UserError(f"{run} is not a {task} run (no {TASK_FILE})",
                        f"pass the --out directory of `genvision {task} train`")
    return info


def write_task(out: Path, info: dict[str, Any]) -> None:
    atomic_write_json(Path(out) / TASK_FILE, info)


def new_task_info(task: str, **fields: Any) -> dict[str, Any]:
    return {"task": task, **fields, "stages": {},
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "genvision_version": __version__}


def trained_stages(out: Path, info: dict[str, Any], order: tuple[str, ...]) -> list[str]:
    """Stages of ``info`` whose directory holds a checkpoint, in the task's ``order``."""
    return [s for s in order if s in info.get("stages", {}) and has_run(Path(out) / s)]


# ----- training one stage -------------------------------------------------------------------
def train_stage(model: GenerativeModel, data: TrainData, train_cfg: TrainConfig,
                out: Path, stage: str, info: dict[str, Any], stage_info: dict[str, Any],
                resume: bool = False) -> TrainResult:
    """Train ``model`` into ``out/stage`` with the one loop; record the stage in task.json."""
    stage_dir = Path(out) / stage
    record = {**stage_info, "model": model.name, "model_config": cfg_io.to_dict(model.config),
              "train_config": cfg_io.to_dict(train_cfg),
              "num_parameters": model.num_parameters()}
    if not resume:
        info["stages"][stage] = record
        write_task(out, info)
    result = train(model, data, train_cfg, stage_dir, resume=resume,
                   run_info={"task": info["task"], "stage": stage, **record})
    info["stages"][stage] = {**info["stages"].get(stage, record), "steps": result.step,
                             "time_s": round(result.time_s, 1),
                             "images_per_s": round(result.images_per_s, 1),
                             "val": result.val_metrics}
    write_task(out, info)
    return result


def split_budget(train_cfg: TrainConfig, share: float) -> TrainConfig:
    """``train_cfg`` with every budget (steps, epochs, minutes) multiplied by ``share``."""
    changes: dict[str, Any] = {}
    for name in ("steps", "epochs", "minutes"):
        value = getattr(train_cfg, name)
        if value is not None:
            scaled = value * share
            changes[name] = max(1, round(scaled)) if name == "steps" else scaled
    return cfg_io.from_dict(TrainConfig, {**cfg_io.to_dict(train_cfg), **changes},
                            what="train option")
