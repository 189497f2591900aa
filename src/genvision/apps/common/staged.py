"""Training a task run in stages: a base model, then a GAN fine-tuned from it.

Both image-to-image tasks train the same way: a regression model first (SRResNet; the L1
colorizer), then a GAN whose generator starts from it (SRGAN; the pix2pix colorizer).
``--method both`` trains the two into ``OUT/<stage>`` with the budget split by
``--gan-share``; naming one stage trains only it, so each can get a budget of its own.
Every stage of a run shares the run's data options, kept in ``OUT/task.json``. A task
supplies a :class:`TaskSpec` (its stages, defaults, data and model builders).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ... import dataclass_config as cfg_io
from ...errors import UserError
from ...models.base import CONFIG_FILE, GenerativeModel
from ...runs.claim import claimed_out, refuse_foreign, replaceable, say_replacing
from ...storage import read_json
from ...train import TrainConfig, TrainData
from ...train.checkpoint import has_run, latest_checkpoint
from . import runs, task_config
from .patch_data import PatchOptions, build_patches

Log = Callable[[str], None]


@dataclasses.dataclass
class TaskRequest:
    """What ``<task> train`` was asked (the flags the user typed, by group)."""

    out: Path
    method: str = "both"
    patches: dict[str, Any] = dataclasses.field(default_factory=dict)  # PatchOptions flags
    train: dict[str, Any] = dataclasses.field(default_factory=dict)  # TrainConfig flags
    model: dict[str, Any] = dataclasses.field(default_factory=dict)  # base model flags
    gan: dict[str, Any] = dataclasses.field(default_factory=dict)  # GAN-only flags
    task: dict[str, Any] = dataclasses.field(default_factory=dict)  # e.g. scale, perceptual
    init: str | None = None
    gan_share: float = 0.3
    resume: bool = False
    command: str = ""


@dataclasses.dataclass
class TaskSpec:
    """How one task trains.

    Attributes:
        name: ``superres`` or ``colorize``.
        stages: (base stage, GAN stage), e.g. ("srresnet", "srgan").
        classes: stage -> model class (rebuilt from its checkpoint on --resume).
        train_defaults: stage -> TrainConfig values the user's flags override.
        new_info: request -> task-specific fields of a new task.json (e.g. scale).
        check_info: (request, task.json) -> None; raise when the request contradicts it.
        patch_size: (task.json, PatchOptions) -> training patch side.
        make_data: (uint8 train patches, uint8 val patches or None) -> TrainData.
        make_base: (request, task.json, patch side, seed) -> a fresh base model.
        make_gan: (request, task.json, seed, log) -> the GAN model, generator initialised.
        stage_record: (request, model) -> extra JSON fields for the stage in task.json.
        options: the dataclass of the command's [task] options (method, gan_share, init
            and the task's own; one flag each, and the [task] section of its config).
    """

    name: str
    stages: tuple[str, str]
    classes: dict[str, type[GenerativeModel]]
    train_defaults: dict[str, dict[str, Any]]
    new_info: Callable[[TaskRequest], dict[str, Any]]
    check_info: Callable[[TaskRequest, dict[str, Any]], None]
    patch_size: Callable[[dict[str, Any], PatchOptions], int]
    make_data: Callable[[torch.Tensor, torch.Tensor | None], TrainData]
    make_base: Callable[[TaskRequest, dict[str, Any], int, int], GenerativeModel]
    make_gan: Callable[[TaskRequest, dict[str, Any], int, Log], GenerativeModel]
    stage_record: Callable[[TaskRequest, GenerativeModel], dict[str, Any]]
    options: type


def train_task(spec: TaskSpec, req: TaskRequest, log: Log = print) -> dict[str, Any]:
    """Train the stages ``req`` asks for; returns the updated ``task.json`` contents."""
    base, gan = spec.stages
    if req.method not in (*spec.stages, "both"):
        raise UserError(f"unknown --method {req.method!r}", f"use {base}, {gan} or both")
    if req.resume and req.method == "both":
        raise UserError("--resume continues one stage", f"pass --method {base} or {gan}")
    if not 0.0 < req.gan_share < 1.0:
        raise UserError(f"--gan-share must be between 0 and 1, got {req.gan_share}",
                        "e.g. --gan-share 0.3")
    # the run directory is checked before, and locked while, anything is written in it:
    # a folder of other files is refused untouched, and of two starts the loser writes
    # nothing (each stage's own directory is locked again by the loop)
    if req.resume and not req.out.is_dir():
        raise UserError(f"nothing to resume in {req.out}: no such directory",
                        "check the path, or drop --resume to start a run")
    with claimed_out(req.out, refuse_foreign):
        return _train_stages(spec, req, log)


def _train_stages(spec: TaskSpec, req: TaskRequest, log: Log) -> dict[str, Any]:
    gan = spec.stages[1]
    info, opts = _task_info(spec, req, log)
    size = spec.patch_size(info, opts)
    info.setdefault("patch_seed", int(req.train.get("seed", 0)))
    x, val_x, protocol = build_patches(opts, size, info["patch_seed"])
    info["data"] = protocol
    data = spec.make_data(x, val_x)
    log(f"data: {len(x)} patches of {size}x{size} from {', '.join(protocol['train_images'])}"
        f"; held out: {', '.join(protocol['heldout_images']) or 'none'}")
    write_config = None if req.resume else _config_writer(spec, req, info, opts)
    for stage in spec.stages if req.method == "both" else (req.method,):
        share = 1.0 if req.method != "both" else (
            req.gan_share if stage == gan else 1.0 - req.gan_share)
        train_cfg = runs.split_budget(
            cfg_io.from_dict(TrainConfig, {**spec.train_defaults[stage], **req.train},
                             what="train option"), share)
        model = _stage_model(spec, req, info, stage, size, train_cfg.seed, log)
        record = {"command": req.command, **spec.stage_record(req, model)}
        result = runs.train_stage(model, data, train_cfg, req.out, stage, info, record,
                                  resume=req.resume, on_start=write_config)
        write_config = None  # the first stage's start writes it
        log(f"{stage}: {result.step} steps in {result.time_s:.0f} s "
            f"({result.images_per_s:.0f} patches/s){_val_note(result.val_metrics)} "
            f"-> {req.out / stage}")
    return info


def _config_writer(spec: TaskSpec, req: TaskRequest, info: dict[str, Any],
                   opts: PatchOptions) -> Callable[[], None]:
    """What writes the run's resolved config.toml when its first stage starts training
    (resolved now, so bad GAN options are refused before the base stage trains)."""
    base, gan = spec.stages
    init = None
    if req.method == gan:
        source = init_source(req, base, required=False)
        init = str(source) if source is not None else "none"
    sections, notes = task_config.resolved_sections(spec, req, info, opts, init)
    stage = None if not info.get("stages") else (spec.stages[0] if req.method == "both"
                                                 else req.method)
    return functools.partial(task_config.write_task_config, req.out, spec.name, sections,
                             stage, notes)


def _val_note(val: dict[str, float] | None) -> str:
    if not val:
        return ""
    if "psnr_gain" in val:
        return f", PSNR gain over bicubic on val patches {val['psnr_gain']:+.2f} dB"
    return f", val L1 {val['l1']:.4f}" if "l1" in val else ""


def _task_info(spec: TaskSpec, req: TaskRequest, log: Log
               ) -> tuple[dict[str, Any], PatchOptions]:
    if not req.resume and replaceable(req.out):
        say_replacing(req.out, log)  # no stage has a checkpoint: nothing to keep or resume
        info = None
    else:
        info = runs.read_task(req.out, spec.name)
    if info is None:
        if req.resume:
            raise UserError(f"nothing to resume in {req.out}", "drop --resume to start a run")
        opts = cfg_io.from_dict(PatchOptions, req.patches, what="data option")
        info = runs.new_task_info(spec.name, **spec.new_info(req), command=req.command,
                                  patch_options=cfg_io.to_dict(opts))
        return info, opts
    spec.check_info(req, info)
    stored = info["patch_options"]
    changed = [k for k, v in req.patches.items() if stored.get(k) != v]
    if changed:
        raise UserError(f"{req.out} was trained with other data options "
                        f"({', '.join('--' + k.replace('_', '-') for k in changed)})",
                        "every stage of a run uses the same data: drop them or choose another "
                        "--out")
    return info, cfg_io.from_dict(PatchOptions, stored, what="data option")


def _stage_model(spec: TaskSpec, req: TaskRequest, info: dict[str, Any], stage: str,
                 size: int, seed: int, log: Log) -> GenerativeModel:
    stage_dir = req.out / stage
    if req.resume:
        return resumed_model(spec.classes[stage], stage_dir, stage)
    if has_run(stage_dir):
        raise UserError(f"{stage_dir} already holds a trained {stage}",
                        f"continue it with --resume --method {stage}, or choose another --out")
    torch.manual_seed(seed)
    if stage == spec.stages[0]:
        if req.init:
            raise UserError(f"--init applies to --method {spec.stages[1]}", "drop --init")
        return spec.make_base(req, info, size, seed)
    if req.model and req.method == spec.stages[1] and req.init != "none":
        raise UserError(f"the {stage} generator comes from --init: "
                        f"--{next(iter(req.model)).replace('_', '-')} cannot change it",
                        f"drop generator options with --method {stage}")
    return spec.make_gan(req, info, seed, log)


def resumed_model(cls: type[GenerativeModel], stage_dir: Path, stage: str) -> GenerativeModel:
    """A stage's model rebuilt from its latest checkpoint's config (weights: by the loop)."""
    ckpt = latest_checkpoint(stage_dir)
    if ckpt is None:
        raise UserError(f"nothing to resume in {stage_dir}", f"train --method {stage} first")
    meta = read_json(ckpt / CONFIG_FILE, what="model config")
    return cls(cfg_io.from_dict(cls.config_class, meta["config"], what=f"{stage} config"))


def init_source(req: TaskRequest, base_stage: str, required: bool) -> Path | None:
    """Where the GAN's generator comes from: --init, else OUT/<base stage> when trained."""
    if req.init and req.init != "none":
        path = Path(req.init)
        if not has_run(path) and not (path / CONFIG_FILE).is_file():
            raise UserError(f"--init {path} holds no trained model",
                            f"pass a {base_stage} stage directory, e.g. RUN/{base_stage}")
        return path
    default = req.out / base_stage
    if req.init != "none" and has_run(default):
        return default
    if required:
        raise UserError(f"the GAN starts from a trained {base_stage}, and {default} holds none",
                        f"train it first (--method {base_stage} --out {req.out}) or pass "
                        f"--init RUN/{base_stage}")
    return None


def load_stage(task: str, stages: dict[str, str], run: str | Path, method: str | None,
               device: str | torch.device = "cpu") -> GenerativeModel:
    """A trained stage of a task run (default: the first trained), or a checkpoint dir.

    Args:
        stages: stage name -> model name, in training order.
    """
    run = Path(run)
    info = runs.read_task(run, task) if run.is_dir() else None
    if info is None:
        return runs.load_task_model(run, device=device, expect=tuple(stages.values()))
    trained = runs.trained_stages(run, info, tuple(stages))
    if method is None:
        method = trained[0] if trained else stages[0]
    if method not in trained:
        raise UserError(f"{run} has no trained {method} (trained: {', '.join(trained) or 'none'})",
                        f"train it with `genvision {task} train --method {method} --out {run}`")
    return runs.load_task_model(run / method, device=device, expect=(stages[method],))
