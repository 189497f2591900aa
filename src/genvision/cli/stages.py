"""Command-line plumbing shared by the image-to-image tasks (``genvision superres``,
``genvision colorize`` and ``genvision translate``): the action dispatcher, parsers in
genvision's error style, ``--config FILE`` and the flags of a two-stage (base model, then
GAN from it) training command, read into its request (defaults < file < typed flags)."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .. import dataclass_config as cfg
from ..apps.common.staged import TaskRequest, TaskSpec
from ..apps.common.task_config import STAGE_OPTIONS, check_resume_options, stage_sections
from ..errors import UserError
from ..runs.run_config import Section, read_task_config
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


def config_flag(p: argparse.ArgumentParser, sections: Mapping[str, str]) -> None:
    """``--config FILE``: the options from a TOML file whose ``sections`` (name -> the
    flag group it mirrors) hold them; flags typed on the command line override it."""
    listed = ", ".join(f"[{name}]" + ("" if group == name else f" ({group})")
                       for name, group in sections.items())
    p.add_argument("--config", metavar="FILE",
                   help=f"read the options from a TOML file with the sections {listed} "
                        "(e.g. a run's config.toml, which re-launches it with --out NEW); "
                        "flags typed here override the file")


def add_section_flags(p: argparse.ArgumentParser, sections: Mapping[str, Section],
                      titles: Mapping[str, str],
                      train_defaults: Mapping[str, Any] | None = None) -> None:
    """--config, and one flag group per config section (its title: ``titles``), each
    flag declared once by its dataclass field.

    Args:
        train_defaults: the defaults [training]'s flags show (see :func:`stage_defaults`).
    """
    config_flag(p, titles)
    for name, section in sections.items():
        skip = [f.name for f in dataclasses.fields(section.cls)
                if section.keys is not None and f.name not in section.keys]
        cfg.add_dataclass_flags(p.add_argument_group(titles[name]), section.cls, skip=skip,
                                defaults=train_defaults if name == "training" else None)


def add_stage_flags(p: argparse.ArgumentParser, spec: TaskSpec, base_title: str,
                    gan_title: str) -> None:
    """--config, and the task, data, training, base-model and GAN flags (the sections of
    its config file, :func:`~genvision.apps.common.task_config.stage_sections`); the
    training flags show the stages' defaults (see :func:`stage_defaults`)."""
    add_section_flags(p, stage_sections(spec), {
        "task": "task", "data": "data", "training": "training", "model": base_title,
        "gan": gan_title}, stage_defaults(spec.train_defaults))


def typed_sections(args: argparse.Namespace, sections: Mapping[str, Section]
                   ) -> dict[str, dict[str, Any]]:
    """The options the user typed, by config section (fields hidden from the CLI, such as
    a model's scale, which the task sets, are left out)."""
    out = {}
    for name, section in sections.items():
        typed = cfg.overrides_from_args(section.cls, args)
        out[name] = {k: v for k, v in typed.items()
                     if section.keys is None or k in section.keys}
    return out


def with_config(args: argparse.Namespace, task: str, sections: Mapping[str, Section]
                ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """(the --config file's sections, empty without one; the typed flags' sections)."""
    file = (read_task_config(args.config, task, sections) if args.config
            else {name: {} for name in sections})
    return file, typed_sections(args, sections)


#: [task] options that set a stage's model (refused with --resume, which keeps its own)
_MODEL_TASK_OPTIONS = ("init", "perceptual")


def stage_request(args: argparse.Namespace, spec: TaskSpec, argv: list[str],
                  default_out: Callable[[dict[str, Any]], str]) -> TaskRequest:
    """The request of ``genvision TASK train``: the task's defaults < its --config file <
    flags typed on the command line. With --resume the file's model options must be those
    the stage was trained with (typed ones are refused: the stage keeps its own).

    Args:
        default_out: [task] options -> the run directory when --out is not given.
    """
    sections = stage_sections(spec)
    file, typed = with_config(args, spec.name, sections)
    merged = {name: {**file[name], **typed[name]} for name in sections}
    opts = cfg.from_dict(spec.options, merged["task"], what="task option")
    out = Path(args.out or default_out(merged["task"]))
    model_task = [k for k in _MODEL_TASK_OPTIONS if k in merged["task"]]
    if args.resume:
        if typed["model"] or typed["gan"] or any(k in typed["task"] for k in model_task):
            raise UserError("--resume continues a stage with its own model options",
                            "pass only budget/training flags with --resume")
        if args.config and opts.method in spec.stages:
            check_resume_options(out, spec.name, opts.method, {
                **file["model"], **file["gan"],
                **{k: v for k, v in file["task"].items() if k in model_task}}, args.config)
        merged["model"], merged["gan"] = {}, {}  # equal to the stage's, or not its own
        opts = dataclasses.replace(opts, **{k: None for k in model_task})
    return TaskRequest(
        out=out, method=opts.method, patches=merged["data"], train=merged["training"],
        model=merged["model"], gan=merged["gan"], init=opts.init, gan_share=opts.gan_share,
        task={f.name: getattr(opts, f.name) for f in dataclasses.fields(opts)
              if f.name not in STAGE_OPTIONS},
        resume=args.resume, command=" ".join(["genvision", spec.name, "train", *argv]))
