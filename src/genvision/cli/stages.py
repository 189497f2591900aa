"""Command-line plumbing shared by the image-to-image tasks (``genvision superres`` and
``genvision colorize``): the action dispatcher, parsers in genvision's error style and the
flags of a two-stage (base model, then GAN from it) training command."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from .. import dataclass_config as cfg
from ..apps.common.patch_data import PatchOptions
from ..errors import UserError
from ..train.config import TrainConfig
from .parser import Parser

Action = Callable[[list[str]], int]


def task_parser(task: str, action: str, description: str) -> argparse.ArgumentParser:
    """An argparse parser for ``genvision TASK ACTION`` whose errors are one line, exit 2."""
    return Parser(prog=f"genvision {task} {action}", description=description)


def dispatch(task: str, title: str, usage: str, actions: dict[str, Action],
             argv: list[str]) -> int:
    """Run ``actions[argv[0]](argv[1:])``; print the usage for no action or --help."""
    if not argv or argv[0] in ("-h", "--help"):
        print(f"genvision {task}: {title}\n\n{usage}\n\n"
              f"`genvision {task} ACTION --help` lists every option.")
        return 0
    if argv[0] not in actions:
        raise UserError(f"unknown {task} action {argv[0]!r}", f"use one of: {', '.join(actions)}")
    return actions[argv[0]](argv[1:])


def stage_defaults(train_defaults: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The training defaults to show for a task whose stages train with
    ``train_defaults`` (stage -> TrainConfig values, the task's own table, which the task
    applies under the user's flags): one value where the stages agree, else each stage's,
    e.g. ``0.0005 (srresnet), 0.0001 (srgan)``."""
    generic = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    shown: dict[str, Any] = {}
    for name in {k for values in train_defaults.values() for k in values}:
        per_stage = {stage: values.get(name, generic[name])
                     for stage, values in train_defaults.items()}
        if len(set(per_stage.values())) == 1:
            shown[name] = next(iter(per_stage.values()))
        else:
            shown[name] = ", ".join(f"{v} ({stage})" for stage, v in per_stage.items())
    return shown


def add_stage_flags(p: argparse.ArgumentParser, base: type, gan: type,
                    base_title: str, gan_title: str,
                    train_defaults: Mapping[str, Mapping[str, Any]]) -> None:
    """Data, training, base-model and GAN flags, each declared once by its dataclass;
    the training flags show the stages' defaults (``train_defaults``, see
    :func:`stage_defaults`)."""
    cfg.add_dataclass_flags(p.add_argument_group("data"), PatchOptions)
    cfg.add_dataclass_flags(p.add_argument_group("training"), TrainConfig,
                            defaults=stage_defaults(train_defaults))
    cfg.add_dataclass_flags(p.add_argument_group(base_title), base)
    cfg.add_dataclass_flags(p.add_argument_group(gan_title), gan,
                            skip=[f.name for f in dataclasses.fields(base)])


def stage_flags(args: argparse.Namespace, base: type, gan: type) -> tuple[dict, dict]:
    """The (base model, GAN-only) options the user typed; fields hidden from the CLI (such
    as the scale, which has its own flag) are left out."""
    def typed(cls: type) -> dict:
        shown = {f.name for f in dataclasses.fields(cls) if f.metadata.get("cli") is not False}
        return {k: v for k, v in cfg.overrides_from_args(cls, args).items() if k in shown}

    base_names = {f.name for f in dataclasses.fields(base)}
    return typed(base), {k: v for k, v in typed(gan).items() if k not in base_names}


def data_and_train_flags(args: argparse.Namespace) -> tuple[dict, dict]:
    """The patch-data and training options the user typed."""
    return (cfg.overrides_from_args(PatchOptions, args),
            cfg.overrides_from_args(TrainConfig, args))
