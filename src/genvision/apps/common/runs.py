"""Task runs: image-to-image models on the one training loop, in ordinary run directories.

A task run directory (``runs/sr4``) is a run like any other: ``run.json`` is a
:class:`~genvision.runs.records.RunInfo` with ``task`` (superres, colorize), the data
protocol and ``stages``; each stage (``srresnet/``, ``srgan/``, or ``regression/``,
``gan/``) is a sub-directory laid out as a run (``metrics.jsonl``, ``checkpoints/``), see
:class:`~genvision.runs.layout.RunLayout`. Runs written before run.json kept the same
record in ``task.json``; they are still read.

Why the one loop (:func:`genvision.train.train`) fits: an image-to-image model's
``loss(x)`` takes the *target* patch and makes its own input from it (bicubic
down-sampling, or the L channel), so the loop's ``(x, y)`` batches, per-batch augmentation,
EMA, checkpoints, exact resume, NaN guard and progress bar all work unchanged, and the
GAN variants use its ``training_step`` / ``configure_optimizers`` hooks.

Task models register in the one model registry (:mod:`genvision.models.image_to_image`),
so :func:`genvision.load` rebuilds them; :func:`load_task_model` adds the check that a
directory holds the expected stage's model.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ... import dataclass_config as cfg_io
from ...errors import CheckpointError, UserError
from ...models.base import GenerativeModel
from ...models.image_to_image import ImageTaskModel, task_model
from ...runs.claim import OnTrainStart
from ...runs.layout import RunLayout
from ...runs.load import load as load_run_model
from ...runs.load import trained_stages as run_trained_stages
from ...runs.records import IMAGE_TO_IMAGE, RunInfo, merge_evaluation, read_run_info, write_run_info
from ...train import TrainConfig, TrainData, TrainResult, train
from ...train.loop import check_training

__all__ = ["ImageTaskModel", "load_task_model", "new_task_info", "read_task", "require_task",
           "split_budget", "task_model", "train_stage", "trained_stages", "write_task"]


def load_task_model(path: str | os.PathLike, *, device: str | torch.device = "cpu",
                    expect: tuple[str, ...] = ()) -> GenerativeModel:
    """A task model from a stage directory, a checkpoint or a save_pretrained dir.

    Args:
        expect: allowed model names (others raise a one-line CheckpointError).
    """
    model = load_run_model(path, device=device)
    if not isinstance(model, ImageTaskModel):
        raise CheckpointError(f"{path} does not hold an image-to-image task model "
                              f"(model {model.name!r})", "pass a run written by this task's train")
    if expect and model.name not in expect:
        raise CheckpointError(f"{path} holds a {model.name} model, not {' or '.join(expect)}",
                              "pass the matching run")
    return model


# ----- the run record ------------------------------------------------------------------------
def read_task(out: Path, task: str) -> dict[str, Any] | None:
    """The run record of ``out`` as a dict when it has one (None otherwise); refuses a run
    of another task or a model run."""
    layout = RunLayout(out)
    if not (layout.run_json.is_file() or layout.task_json.is_file()):
        return None
    info = read_run_info(out)
    if info.task != task:
        what = f"a {info.task} run" if info.is_task else f"a {info.model} model run"
        raise UserError(f"{out} holds {what}, not a {task} run", "choose another --out")
    return info.to_dict()


def require_task(run: str | os.PathLike, task: str) -> dict[str, Any]:
    """The record of an existing task run, with a one-line error when there is none."""
    run = Path(run)
    info = read_task(run, task) if run.is_dir() else None
    if info is None:
        raise UserError(f"{run} is not a {task} run (no {RunLayout(run).run_json.name})",
                        f"pass the --out directory of `genvision {task} train`")
    return info


def write_task(out: Path, info: dict[str, Any]) -> None:
    """Write the record as ``run.json``. Its ``model`` is the last trained stage's model,
    so ``genvision.load``, ``info`` and ``compare`` describe what the run delivers."""
    record = RunInfo.from_dict(info)
    stages = run_trained_stages(out, record) or record.stage_names[-1:]
    last = record.stages[stages[-1]] if stages else {}
    record.model = last.get("model", record.model)
    record.num_parameters = last.get("num_parameters", record.num_parameters)
    record.family = "image-to-image"
    record.likelihood_kind = "none"
    write_run_info(out, record)


def new_task_info(task: str, **fields: Any) -> dict[str, Any]:
    return RunInfo(task=task, extra=fields).to_dict()


def trained_stages(out: Path, info: dict[str, Any], order: tuple[str, ...]) -> list[str]:
    """Stages of ``info`` whose directory holds a checkpoint, in the task's ``order``."""
    done = set(run_trained_stages(out, RunInfo.from_dict(info)))
    return [s for s in order if s in done]


def record_comparison(run: str | os.PathLike, task: str, results: dict[str, Any],
                      images: list[str], images_spec: str, source: str) -> Path:
    """Merge the final method's mean scores of a task comparison into ``metrics.json``
    (an ``image-to-image`` evaluation record), so ``genvision compare`` and the report
    show them beside other runs'. The method is the run's last trained stage."""
    methods = [m for m in results["methods"] if m not in ("bicubic", "grey")]
    if not methods:
        return RunLayout(run).evaluations
    method = methods[-1]
    entry = {"kind": IMAGE_TO_IMAGE, "task": task, "method": method,
             "data": {"source": source, "split": images_spec, "images": images,
                      "n": len(images)},
             "split": images_spec, "protocol": {**results["protocol"],
                                               **({"scale": results["scale"]}
                                                  if "scale" in results else {})},
             **results["mean"][method]}
    return merge_evaluation(run, entry)


# ----- training one stage -------------------------------------------------------------------
def train_stage(model: GenerativeModel, data: TrainData, train_cfg: TrainConfig,
                out: Path, stage: str, info: dict[str, Any], stage_info: dict[str, Any],
                resume: bool = False, on_start: Callable[[], None] | None = None
                ) -> TrainResult:
    """Train ``model`` into ``out/stage`` with the one loop; record the stage in run.json
    (when its training starts, and again with its results). The caller holds ``out``'s
    lock (see :func:`genvision.apps.common.staged.train_task`).

    Args:
        on_start: called once training really starts, after run.json is written (e.g. to
            write the run's config.toml); not on resume.
    """
    stage_dir = RunLayout(out).stage(stage).root
    record = {**stage_info, "model": model.name, "model_config": cfg_io.to_dict(model.config),
              "train_config": cfg_io.to_dict(train_cfg),
              "num_parameters": model.num_parameters()}
    check_training(model, data, train_cfg)  # options, data, budget: before any write
    callbacks = []
    if not resume:
        info["stages"][stage] = record
        info["stage_order"] = [s for s in info.get("stage_order", []) if s != stage] + [stage]
        # the record names the stage once its training really starts (see runs.claim)
        def started() -> None:
            write_task(out, info)
            if on_start is not None:
                on_start()

        callbacks.append(OnTrainStart(started))
    result = train(model, data, train_cfg, stage_dir, resume=resume, callbacks=callbacks,
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
