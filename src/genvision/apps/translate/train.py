"""Training translation runs: pix2pix and CycleGAN on one pair of domains, side by side.

``genvision translate train --method cyclegan --pair mnist-mnistm --minutes 10 --out RUN``
trains into ``RUN/cyclegan``; ``--method pix2pix --out RUN`` adds ``RUN/pix2pix`` on the
same data, so the unpaired method can be compared with the paired upper bound. Unlike
colorize's stages the two methods are independent (neither starts from the other). The run
records its data protocol once (:func:`genvision.apps.translate.data.protocol`); every
method of the run uses it, and each method's record says how its training rows were made
(true pairs, or pairs denied). Training runs on the one loop
(:func:`genvision.apps.common.runs.train_stage`), resumable per method with ``--resume``.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import field
from pathlib import Path
from typing import Any, Literal

import torch

from ... import dataclass_config as cfg_io
from ...errors import DataError, UserError
from ...models.base import GenerativeModel
from ...models.translation import CycleGAN, CycleGANConfig, Pix2Pix, TranslationConfig
from ...runs.claim import claimed_out, refuse_foreign, replaceable, say_replacing
from ...runs.run_config import Section, model_flag_fields
from ...train import TrainConfig, TrainData
from ...train.checkpoint import has_run
from ..common import runs
from ..common.staged import Log, load_stage, resumed_model
from ..common.task_config import write_task_config
from .data import PairOptions, Sides, load_sides, parse_options, protocol, stack

TASK = "translate"
METHODS = ("pix2pix", "cyclegan")
CLASSES: dict[str, type[GenerativeModel]] = {"pix2pix": Pix2Pix, "cyclegan": CycleGAN}
CONFIGS = {"pix2pix": TranslationConfig, "cyclegan": CycleGANConfig}
#: fields only one method uses (the other refuses them rather than ignore them)
ONLY = {"pix2pix": ("l1_weight",), "cyclegan": ("cycle_weight", "identity_weight", "pool_size")}
#: training defaults per method (any --flag overrides them). Both: Adam 2e-4, beta1 0.5
#: (the papers'); CycleGAN keeps the rate for half the budget, then decays it linearly to
#: zero, and takes batches half as large, since each of its steps runs four networks
TRAIN_DEFAULTS = {
    "pix2pix": {"batch_size": 16, "lr": 2e-4, "beta1": 0.5, "eval_every": 250,
                "checkpoint_every": 500},
    "cyclegan": {"batch_size": 8, "lr": 2e-4, "beta1": 0.5, "lr_schedule": "hold-linear",
                 "eval_every": 250, "checkpoint_every": 500},
}
#: validation rows (of the val split, stacked as for training)
VAL_IMAGES = 256
_BUDGETS = ("steps", "epochs", "minutes")


@dataclasses.dataclass
class TranslateOptions:
    """The options of ``translate train`` that are neither data, training nor the model's
    (one flag each; the [task] section of its --config file)."""

    method: Literal["pix2pix", "cyclegan"] | None = field(default=None, metadata={
        "help": "the method to train: pix2pix or cyclegan (required)"})


#: the model options a user sets (--image-size is the data's)
MODEL_KEYS = tuple(k for k in model_flag_fields(CycleGANConfig) if k != "image_size")
#: the sections of a translate run's config file: its flag groups
SECTIONS = {"task": Section(TranslateOptions), "data": Section(PairOptions),
            "training": Section(TrainConfig), "model": Section(CycleGANConfig, MODEL_KEYS)}


@dataclasses.dataclass
class TranslateRequest:
    """What ``translate train`` was asked (the flags the user typed, by group)."""

    out: Path
    method: str
    data: dict[str, Any] = dataclasses.field(default_factory=dict)  # PairOptions flags
    train: dict[str, Any] = dataclasses.field(default_factory=dict)  # TrainConfig flags
    model: dict[str, Any] = dataclasses.field(default_factory=dict)  # model config flags
    resume: bool = False
    command: str = ""


def train_translate(req: TranslateRequest, log: Log = print) -> dict[str, Any]:
    """Train (or resume) ``req.method`` into ``req.out/<method>``; returns the run record.

    Raises:
        UserError: an unknown method, bad options, pix2pix on unpaired data, a folder that
            is not a translate run, or a method already trained there (without --resume).
    """
    if req.method not in METHODS:
        raise UserError(f"unknown --method {req.method!r}", f"use {' or '.join(METHODS)}")
    for name in ONLY[METHODS[1 - METHODS.index(req.method)]]:
        if name in req.model:
            raise UserError(f"--{name.replace('_', '-')} is an option of the other method, "
                            f"not of {req.method}", "drop it")
    if req.resume and req.model:
        raise UserError("--resume continues a method with its own model options",
                        "pass only budget/training flags with --resume")
    if req.resume and not req.out.is_dir():
        raise UserError(f"nothing to resume in {req.out}: no such directory",
                        "check the path, or drop --resume to start a run")
    # every check and all the data reading come before the run directory is claimed, so a
    # refused start writes nothing (not even the lock); the record is read again under it
    refuse_foreign(req.out)
    _, opts = _run_info(req, lambda _: None)
    rows = _Rows.read(req, opts)
    with claimed_out(req.out, refuse_foreign):
        info, now = _run_info(req, log)
        if now != opts:
            raise UserError(f"the data options of {req.out} changed while it was read",
                            "run the command again")
        return _train(req, info, rows, log)


@dataclasses.dataclass
class _Rows:
    """The training and validation rows of a method, and how they were made."""

    opts: PairOptions
    sides: Sides
    x: torch.Tensor
    val_x: torch.Tensor | None
    made: dict[str, Any]
    seed: int
    train_cfg: TrainConfig

    @classmethod
    def read(cls, req: TranslateRequest, opts: PairOptions) -> _Rows:
        info = runs.read_task(req.out, TASK) if req.out.is_dir() else None
        info = info or {}
        if not req.resume and has_run(req.out / req.method):
            raise UserError(f"{req.out / req.method} already holds a trained {req.method}",
                            f"continue it with --resume --method {req.method}, or choose "
                            "another --out")
        train_cfg = _train_config(req, info)
        seed = _pairing_seed(req, info, train_cfg)
        sides = load_sides(opts, "train")
        x, made = stack(sides, req.method, seed)
        val_x = _val_rows(opts, req.method, seed)
        return cls(opts, sides, x.float() / 255.0, val_x, made, seed, train_cfg)


def _train(req: TranslateRequest, info: dict[str, Any], rows: _Rows, log: Log
           ) -> dict[str, Any]:
    method, stage_dir, sides = req.method, req.out / req.method, rows.sides
    info["data"] = protocol(rows.opts, sides)
    if req.resume:
        model = resumed_model(CLASSES[method], stage_dir, method)
    else:
        torch.manual_seed(rows.train_cfg.seed)
        model = _new_model(req, info, rows.train_cfg.seed)
    record = {"command": req.command, "training_rows": rows.made, "pairing_seed": rows.seed}
    on_start = None
    if not req.resume:  # the resolved options, written when training starts
        sections = resolved_sections(req, rows, model)
        stage = None if not info.get("stages") else method  # a method added to a run
        on_start = functools.partial(write_task_config, req.out, TASK, sections, stage)
    log(f"data: {rows.opts.name}, train split: {len(sides.a)} A and {len(sides.b)} B images "
        f"of {'x'.join(map(str, sides.image_size))}; {rows.made['rows']}")
    result = runs.train_stage(model, TrainData(x=rows.x, val_x=rows.val_x), rows.train_cfg,
                              req.out, method, info, record, resume=req.resume,
                              on_start=on_start)
    val = result.val_metrics or {}
    note = f", val L1 {val['l1']:.4f}" if "l1" in val else ""
    log(f"{method}: {result.step} steps in {result.time_s:.0f} s "
        f"({result.images_per_s:.0f} images/s){note} -> {stage_dir}")
    return info


def resolved_sections(req: TranslateRequest, rows: _Rows, model: GenerativeModel
                      ) -> dict[str, dict[str, Any]]:
    """The options a new method trains with, defaults resolved, as config sections (the
    model's: those of its method, from the model built)."""
    other = ONLY[METHODS[1 - METHODS.index(req.method)]]
    config = cfg_io.to_dict(model.config)
    return {"task": {"name": TASK, "method": req.method}, "data": cfg_io.to_dict(rows.opts),
            "training": cfg_io.to_dict(rows.train_cfg),
            "model": {k: config[k] for k in MODEL_KEYS if k in config and k not in other}}


def _run_info(req: TranslateRequest, log: Log) -> tuple[dict[str, Any], PairOptions]:
    """The run record (new, or the existing run's) and the run's data options."""
    if not req.resume and replaceable(req.out):
        say_replacing(req.out, log)  # no method has a checkpoint: nothing to keep
        info = None
    else:
        info = runs.read_task(req.out, TASK)
    if info is None:
        if req.resume:
            raise UserError(f"nothing to resume in {req.out}", "drop --resume to start a run")
        opts = parse_options(req.data)
        return runs.new_task_info(TASK, command=req.command,
                                  pair_options=cfg_io.to_dict(opts)), opts
    stored = info.get("pair_options")
    if not isinstance(stored, dict):
        raise UserError(f"{req.out}/run.json has no pair_options", "retrain into a new --out")
    changed = [k for k, v in req.data.items() if stored.get(k) != v]
    if changed:
        raise UserError(f"{req.out} was trained on other data "
                        f"({', '.join('--' + k.replace('_', '-') for k in changed)} differ)",
                        "every method of a run trains on the same data: drop those flags "
                        "or choose another --out")
    return info, parse_options(stored)


def _train_config(req: TranslateRequest, info: dict[str, Any]) -> TrainConfig:
    """Defaults, then (on --resume) the method's own recorded settings without their
    budget, then the flags typed now."""
    base = dict(TRAIN_DEFAULTS[req.method])
    if req.resume:
        stored = info.get("stages", {}).get(req.method, {}).get("train_config", {})
        base.update({k: v for k, v in stored.items() if k not in _BUDGETS})
    return cfg_io.from_dict(TrainConfig, {**base, **req.train}, what="train option")


def _pairing_seed(req: TranslateRequest, info: dict[str, Any], cfg: TrainConfig) -> int:
    """The seed of the rows' pairing: the run's --seed, or on --resume the recorded one
    (so a resumed method sees exactly the rows it started on)."""
    stored = info.get("stages", {}).get(req.method, {}).get("pairing_seed")
    return int(stored) if req.resume and isinstance(stored, int) else cfg.seed


def _val_rows(opts: PairOptions, method: str, seed: int) -> torch.Tensor | None:
    """Validation rows from the val split, stacked as the training rows are (or None when
    a user's source is too small for a val split)."""
    try:
        val = load_sides(opts, "val")
    except DataError:
        return None
    if min(len(val.a), len(val.b)) == 0:
        return None
    x, _ = stack(val, method, seed + 1)
    return x[:VAL_IMAGES].float() / 255.0


def _new_model(req: TranslateRequest, info: dict[str, Any], seed: int) -> GenerativeModel:
    data = info["data"]
    ca, cb = data["a_channels"], data["b_channels"]
    fields = {**req.model, "channels": ca + cb, "a_channels": ca,
              "image_size": tuple(data["image_size"]),
              "data_kind": "rgb8" if 3 in (ca, cb) else "grey8", "seed": seed}
    config = cfg_io.from_dict(CONFIGS[req.method], fields, what=f"{req.method} option")
    return CLASSES[req.method](config)


def trained_methods(run: str | Path, info: dict[str, Any]) -> list[str]:
    """The methods of a run that hold a checkpoint, in :data:`METHODS` order."""
    return runs.trained_stages(Path(run), info, METHODS)


def load_translator(run: str | Path, method: str | None = None,
                    device: str | torch.device = "cpu") -> Pix2Pix | CycleGAN:
    """A trained translator of a run (default: CycleGAN when trained, which translates
    both ways, else pix2pix), or of a method's directory / checkpoint."""
    run = Path(run)
    if method is None and run.is_dir():
        info = runs.read_task(run, TASK)
        if info is not None:
            trained = trained_methods(run, info)
            if not trained:
                raise UserError(f"{run} has no trained method yet",
                                f"train one with `genvision translate train --out {run}`")
            method = "cyclegan" if "cyclegan" in trained else trained[0]
    return load_stage(TASK, {m: m for m in METHODS}, run, method, device)
