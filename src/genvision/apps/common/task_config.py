"""The config file of a task run: ``RUN/config.toml`` of ``genvision superres|colorize train``.

Its sections are the command's flag groups (see ``--help``)::

    [task]       name, method, gan_share, init and the task's own (scale, perceptual)
    [data]       where the patches come from (--data, --patch, --patches, ...)
    [training]   the training options, each stage's defaults resolved (--lr, --steps, ...)
    [model]      the base model's options (SRResNet, the regression U-Net)
    [gan]        the GAN stage's own options (--disc-width, --adv-weight, ...)

``genvision TASK train --config RUN/config.toml --out NEW`` trains the same run again: the
resolved file and the flags the first command was given lead to the same options. A
training option whose stage defaults differ (SRResNet and SRGAN learn at different rates)
is left out of ``[training]`` with a note in the header, so each stage keeps its own; set it
there to use one value for every stage. The file is written when training starts (not
on --resume); a command that adds a stage to an existing run writes its file in the
stage's directory (``RUN/srgan/config.toml``) and leaves the run's first one as it is.
Reading and writing the TOML is :mod:`genvision.runs.run_config`'s.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ... import dataclass_config as cfg_io
from ...errors import UserError
from ...runs.layout import RunLayout
from ...runs.run_config import Section, model_flag_fields, write_config_toml
from ...train import TrainConfig
from . import runs
from .patch_data import PatchOptions

if TYPE_CHECKING:  # types only: staged imports this module
    from .staged import TaskRequest, TaskSpec

#: [task] options every staged task has (the others are the task's own, in req.task)
STAGE_OPTIONS = ("method", "gan_share", "init")


def stage_sections(spec: TaskSpec) -> dict[str, Section]:
    """The sections of a staged task's config file, in the order of its ``--help``."""
    base_cls, gan_cls = (spec.classes[s].config_class for s in spec.stages)
    base_fields = {f.name for f in dataclasses.fields(base_cls)}
    return {"task": Section(spec.options), "data": Section(PatchOptions),
            "training": Section(TrainConfig),
            "model": Section(base_cls, tuple(model_flag_fields(base_cls))),
            "gan": Section(gan_cls, tuple(k for k in model_flag_fields(gan_cls)
                                          if k not in base_fields))}


def resolved_sections(spec: TaskSpec, req: TaskRequest, info: dict[str, Any],
                      opts: PatchOptions, init: str | None
                      ) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The options ``req`` trains with, defaults resolved, as config sections; and the
    header notes (training options the stages differ in).

    Args:
        info: the run record (its ``scale`` and the like resolve the task's options).
        init: with ``--method GAN_STAGE``: where its generator comes from (a path or
            ``none``); None otherwise.
    """
    base, gan = spec.stages
    stages = spec.stages if req.method == "both" else (req.method,)
    task: dict[str, Any] = {"name": spec.name, "method": req.method}
    if req.method == "both":
        task["gan_share"] = req.gan_share
    if init is not None:
        task["init"] = init
    gan_cls = spec.classes[gan].config_class
    gan_defaults = {f.name: f.default for f in dataclasses.fields(gan_cls)}
    for f in dataclasses.fields(spec.options):
        if f.name not in STAGE_OPTIONS:  # e.g. scale (the run's), perceptual (the GAN's)
            value = req.task.get(f.name)
            value = info.get(f.name) if value is None else value
            if value is None and gan in stages:
                value = gan_defaults.get(f.name)
            task[f.name] = value
    sections: dict[str, dict[str, Any]] = {"task": task, "data": cfg_io.to_dict(opts)}
    sections["training"], notes = _training(spec, req, stages)
    keys = stage_sections(spec)
    if base in stages or init == "none":  # else the generator comes from --init
        built = cfg_io.from_dict(spec.classes[base].config_class, req.model,
                                 what=f"{base} option")
        sections["model"] = _pick(built, keys["model"].keys)
    if gan in stages:
        sections["gan"] = _pick(cfg_io.from_dict(gan_cls, req.gan, what=f"{gan} option"),
                                keys["gan"].keys)
    return sections, notes


def _training(spec: TaskSpec, req: TaskRequest, stages: Sequence[str]
              ) -> tuple[dict[str, Any], list[str]]:
    """[training]: the values every trained stage uses (budgets before --gan-share splits
    them), and a note for each option the stages' defaults set differently."""
    per_stage = {s: cfg_io.to_dict(cfg_io.from_dict(
        TrainConfig, {**spec.train_defaults[s], **req.train}, what="train option"))
        for s in stages}
    first = per_stage[stages[0]]
    common = {k: v for k, v in first.items() if all(p[k] == v for p in per_stage.values())}
    notes = []
    for k in (k for k in first if k not in common):
        values = ", ".join(f"{p[k]} for {s}" for s, p in per_stage.items())
        notes.append(f"[training] leaves out {k} ({values}): each stage keeps its own; "
                     "set it to use one value for every stage")
    return common, notes


def _pick(config: Any, keys: Sequence[str] | None) -> dict[str, Any]:
    values = cfg_io.to_dict(config)
    return {k: values[k] for k in (keys if keys is not None else values)}


def write_task_config(out: Path, task: str, sections: Mapping[str, Mapping[str, Any]],
                      stage: str | None = None, notes: Sequence[str] = ()) -> Path | None:
    """Write ``OUT/config.toml`` (a new run), or ``OUT/STAGE/config.toml`` for a command
    that added ``stage`` to an existing run (whose first file stays as it is)."""
    layout = RunLayout(out)
    if stage is None:
        return write_config_toml(layout.config_toml, sections, f"genvision {task} train",
                                 notes=notes)
    return write_config_toml(
        layout.stage(stage).config_toml, sections, f"genvision {task} train",
        what=f"the options of the command that added {stage} to {out}",
        notes=[*notes, f"(the run's first command's options: {layout.config_toml})"])


def check_resume_options(out: Path, task: str, stage: str, options: Mapping[str, Any],
                         where: str) -> None:
    """Refuse a ``--config`` whose model options differ from those ``OUT/stage`` was
    trained with (--resume continues a stage with its own); equal values pass, so a run's
    own config.toml can be given. Nothing is checked when there is no such stage (the
    resume itself then says so)."""
    info = runs.read_task(out, task) if out.is_dir() else None
    recorded = ((info or {}).get("stages", {}).get(stage) or {}).get("model_config", {})
    for key, value in options.items():
        if key in recorded and _plain(recorded[key]) != _plain(value):
            raise UserError(f"{where} sets {key} = {_plain(value)!r} but {out / stage} was "
                            f"trained with {key} = {_plain(recorded[key])!r}",
                            f"--resume continues a stage with its own model options: drop "
                            f"{key} from the file, or train a new run with --out NEW")


def _plain(value: Any) -> Any:
    """A value as JSON and TOML hold it (tuples as lists)."""
    return list(value) if isinstance(value, (tuple, list)) else value
