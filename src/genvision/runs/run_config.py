"""A run's resolved options as a TOML file: ``RUN/config.toml``, and ``--config FILE``.

Every run started by ``genvision train`` (or ``genvision.train_run``) writes the options it
really trains with, in the sections of the flags::

    [model]        name, conditional, and the model's options (its flags)
    [data]         the data options (--data, --binarize, ...)
    [training]     the training options, the model's recipe resolved (--lr, --steps, ...)

``genvision train --config RUN/config.toml --out NEW`` starts the same run again, and a
hand-written file with any subset of those keys is a run recipe; flags typed on the
command line override the file. Fields set by the data (channels, image size, classes,
data kind) and the seed of the weights (the run's ``--seed``) are not model options.

The image-to-image task commands (``genvision superres|colorize|translate train``) read
and write the same kind of file with sections of their own flag groups (``[task]``,
``[data]``, ``[training]``, ``[model]``, ``[gan]``): :func:`read_task_config` checks one,
:func:`write_config_toml` writes any (the tasks resolve theirs in
:mod:`genvision.apps.common.task_config`).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import dataclass_config as cfg
from ..data.config import DataConfig
from ..errors import UserError
from ..models.base import get_model_class
from ..storage import atomic_write_bytes
from ..train.config import TrainConfig
from .layout import RunLayout
from .records import RunInfo

#: the sections of a run config file, in order
SECTIONS = ("model", "data", "training")
#: keys of [model] that are not model options
MODEL_KEYS = ("name", "conditional")


@dataclasses.dataclass
class RunConfig:
    """What a ``--config`` file asks for (only the keys it holds)."""

    model: str | None = None
    conditional: bool | None = None
    model_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    data: dict[str, Any] = dataclasses.field(default_factory=dict)
    training: dict[str, Any] = dataclasses.field(default_factory=dict)


def model_flag_fields(config_class: type) -> list[str]:
    """The model options a user sets (the fields that are flags)."""
    return [f.name for f in dataclasses.fields(config_class) if f.metadata.get("cli") is not False]


def unused_train_fields(model_name: str) -> tuple[str, ...]:
    """TrainConfig fields a model does not use (a GAN's own learning rates replace --lr)."""
    return tuple(getattr(get_model_class(model_name), "unused_train_options", ()))


def config_sections(info: RunInfo) -> dict[str, dict[str, Any]]:
    """The resolved ``[model]``, ``[data]`` and ``[training]`` of a run record."""
    model = str(info.model)
    config_class = get_model_class(model).config_class
    options = {k: info.model_config[k] for k in model_flag_fields(config_class)
               if k in info.model_config}
    unused = set(unused_train_fields(model))
    return {"model": {"name": model, "conditional": bool(info.conditional), **options},
            "data": dict(info.data_config),
            "training": {k: v for k, v in info.train_config.items() if k not in unused}}


def write_run_config(run_dir: str | Path, info: RunInfo) -> Path | None:
    """Write ``RUN/config.toml`` from the run record (None for task runs, whose task
    command writes theirs: :mod:`genvision.apps.common.task_config`)."""
    if info.is_task or not info.model:
        return None
    return write_config_toml(RunLayout(run_dir).config_toml, config_sections(info),
                             "genvision train")


def write_config_toml(path: Path, sections: Mapping[str, Mapping[str, Any]], command: str,
                      *, what: str = "the options this run trained with",
                      notes: Sequence[str] = ()) -> Path | None:
    """Write a config file that ``COMMAND --config PATH --out NEW_RUN`` re-launches
    (atomically; its header says how). A value TOML cannot hold writes nothing and says
    so on stderr (None): the run itself is not at stake."""
    header = "\n".join([f"genvision run config: {what}.",
                        f"Start it again: {command} --config {path} --out NEW_RUN",
                        "(flags typed on the command line override the values here)",
                        *notes])
    try:
        text = cfg.toml_text(sections, header=header)
    except ValueError as exc:
        print(f"note: no {path.name} for this run ({exc}); run.json has its options",
              file=sys.stderr)
        return None
    atomic_write_bytes(path, text.encode("utf-8"))
    return path


def read_run_config(path: str | Path) -> RunConfig:
    """Read and check a ``--config`` file.

    Raises:
        UserError: not TOML, an unknown section or key, a value of the wrong type or
            range, or an unknown model (one line naming the file, section and key).
    """
    where = str(path)
    data = cfg.read_toml(path)
    task = data.get("task")
    if task is not None:  # a task command's config (superres, colorize, translate)
        name = task.get("name") if isinstance(task, dict) else None
        command = f"genvision {name} train" if isinstance(name, str) else "its task's train"
        raise UserError(f"{where} is a config of an image-to-image task ([task]), not of a "
                        "model", f"pass it to `{command} --config`")
    check_sections(data, where, SECTIONS)
    model = dict(data.get("model", {}))
    name = model.pop("name", None)
    conditional = model.pop("conditional", None)
    if name is not None and not isinstance(name, str):
        raise UserError(f"name in [model] of {where} must be a model name, got {name!r}",
                        "e.g. name = \"vae\" (see `genvision info --models`)")
    if conditional is not None and not isinstance(conditional, bool):
        raise UserError(f"conditional in [model] of {where} must be true or false, got "
                        f"{conditional!r}", "set conditional = true or false")
    if model and name is None:
        raise UserError(f"[model] of {where} has options but no name",
                        "add name = \"MODEL\" to [model] (or pass MODEL on the command line)")
    if name is not None:
        config_class = get_model_class(name).config_class
        cfg.check_keys(config_class, model, where=where, section="model",
                       allowed=model_flag_fields(config_class))
    cfg.check_keys(DataConfig, data.get("data", {}), where=where, section="data")
    cfg.check_keys(TrainConfig, data.get("training", {}), where=where, section="training")
    return RunConfig(model=name, conditional=conditional, model_options=_tuples(model),
                     data=_tuples(data.get("data", {})),
                     training=_tuples(data.get("training", {})))


def check_sections(data: Mapping[str, Any], where: str, sections: Sequence[str]) -> None:
    """Refuse top-level keys of a config file that are not ``sections``, and sections
    that are not tables (one line naming the file and the accepted sections)."""
    unknown = sorted(set(data) - set(sections))
    if unknown:
        raise UserError(f"unknown section(s) or key(s) {', '.join(unknown)} in {where}",
                        f"use the sections {', '.join(f'[{s}]' for s in sections)}")
    for section in sections:
        if not isinstance(data.get(section, {}), dict):
            raise UserError(f"{section} in {where} must be a [{section}] section",
                            f"write it as [{section}] followed by key = value lines")


@dataclasses.dataclass(frozen=True)
class Section:
    """One ``[section]`` of a task's config file: the dataclass its values are checked
    against, and the keys it accepts (default: every field of ``cls``)."""

    cls: type
    keys: tuple[str, ...] | None = None


def read_task_config(path: str | Path, task: str,
                     sections: Mapping[str, Section]) -> dict[str, dict[str, Any]]:
    """Read and check the ``--config`` file of ``genvision TASK train``: every section of
    ``sections`` (absent ones empty), its values checked against the section's dataclass.
    ``[task] name``, when present, must be ``task``.

    Raises:
        UserError: not TOML, a config of a model or of another task, an unknown section or
            key, or a value of the wrong type or range (one line naming file and key).
    """
    where = str(path)
    data = cfg.read_toml(path)
    model = data.get("model")
    if isinstance(model, dict) and "name" in model:
        raise UserError(f"{where} is a `genvision train` config (model {model['name']!r}), "
                        f"not a {task} one", f"pass it to `genvision train --config`, or "
                        f"give {task} train a {task} run's config.toml")
    named = data["task"].get("name", task) if isinstance(data.get("task"), dict) else task
    if named != task:
        raise UserError(f"{where} is a config of {named!r}, not of {task}",
                        f"pass it to `genvision {named} train --config`" if isinstance(
                            named, str) else f"set name = \"{task}\" in [task]")
    check_sections(data, where, tuple(sections))
    out: dict[str, dict[str, Any]] = {}
    for name, section in sections.items():
        values = dict(data.get(name, {}))
        if name == "task":
            values.pop("name", None)
        cfg.check_keys(section.cls, values, where=where, section=name, allowed=section.keys)
        out[name] = _tuples(values)
    return out


def _tuples(values: dict[str, Any]) -> dict[str, Any]:
    """TOML arrays as tuples (the config dataclasses' sequence type)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
