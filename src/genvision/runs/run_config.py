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
"""

from __future__ import annotations

import dataclasses
import sys
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
    """Write ``RUN/config.toml`` from the run record (None for task runs, which their task
    command re-launches)."""
    if info.is_task or not info.model:
        return None
    path = RunLayout(run_dir).config_toml
    try:
        text = cfg.toml_text(config_sections(info), header=(
            "genvision run config: the options this run trained with.\n"
            f"Start it again: genvision train --config {path} --out NEW_RUN\n"
            "(flags typed on the command line override the values here)"))
    except ValueError as exc:  # a value TOML cannot hold: the run itself is not at stake
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
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise UserError(f"unknown section(s) or key(s) {', '.join(unknown)} in {where}",
                        f"use the sections {', '.join(f'[{s}]' for s in SECTIONS)}")
    for section in SECTIONS:
        if not isinstance(data.get(section, {}), dict):
            raise UserError(f"{section} in {where} must be a [{section}] section",
                            f"write it as [{section}] followed by key = value lines")
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


def _tuples(values: dict[str, Any]) -> dict[str, Any]:
    """TOML arrays as tuples (the config dataclasses' sequence type)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
