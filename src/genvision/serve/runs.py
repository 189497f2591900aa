"""The runs a demo serves: loaded once at start-up, described to the page as JSON.

A model run (``genvision train``) is opened with :func:`genvision.load` and offers what its
model can do: sampling always, interpolation for latent models (:mod:`.latent`),
completion for models with the ``complete`` capability (fully visible and diffusion
models). A task run (``superres``, ``colorize``, ``translate``) offers applying each of
its trained methods to an uploaded image. Nothing is unpickled: every model is rebuilt
from ``config.json`` + safetensors weights.

The page's controls come from the model, not from a list kept here: every sampler a model
declares (``model.samplers``) is described field by field (its options' types, choices
and the defaults the model resolves, e.g. a diffusion model's steps or a GAN's
truncation), and the page draws one input per option.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import torch

from ..apps.colorize.train import load_colorizer
from ..apps.common.runs import trained_stages
from ..apps.superres.train import load_sr_model
from ..apps.translate.train import load_translator, trained_methods
from ..errors import UserError
from ..models.base import GenerativeModel
from ..models.sampling import SamplerOptions
from ..runs.layout import RunLayout
from ..runs.load import load
from ..runs.records import read_run_info
from .latent import latent_kind

#: the image-to-image tasks the demo applies, with their stages in training order
TASK_STAGES: dict[str, tuple[str, ...]] = {
    "superres": ("srresnet", "srgan"), "colorize": ("regression", "gan"),
    "translate": ("pix2pix", "cyclegan")}
#: what each task does to an uploaded image, for the page
TASK_VERBS = {"superres": "super-resolve", "colorize": "colorize", "translate": "translate"}


@dataclass
class ServedRun:
    """One run on the page: ``models`` maps a method to its model (one entry, ``model``,
    for a model run)."""

    id: int
    name: str
    path: Path
    kind: str  #: ``model`` or a task name
    models: dict[str, GenerativeModel] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def model(self) -> GenerativeModel:
        """The model of a model run (or a task run's first method)."""
        return next(iter(self.models.values()))

    def method(self, name: object) -> GenerativeModel:
        """The model of method ``name`` (None: the first), refused when the run lacks it."""
        if name is None or name == "":
            return self.model
        if name not in self.models:
            raise UserError(f"run {self.name} has no method {name!r}",
                            f"choose one of: {', '.join(self.models)}")
        return self.models[name]

    def describe(self) -> dict[str, Any]:
        """What the page needs to draw this run's controls (JSON-serialisable)."""
        out: dict[str, Any] = {"id": self.id, "name": self.name, "kind": self.kind}
        if self.kind == "model":
            out.update(describe_model(self.model))
        else:
            out.update(verb=TASK_VERBS[self.kind], methods=list(self.models),
                       **self.info)
        return out


def describe_model(model: GenerativeModel) -> dict[str, Any]:
    """The model's name, family, image shape, labels and what the page can do with it."""
    c = model.config
    return {"model": model.name, "family": model.family, "shape": list(c.shape),
            "data_kind": c.data_kind, "num_classes": c.num_classes,
            "interpolate": latent_kind(model) is not None,
            "complete": model.supports("complete"),
            "samplers": [describe_sampler(cls, model) for cls in model.samplers.values()]}


def _option_type(tp: Any) -> tuple[str, list[Any] | None, bool]:
    """(``bool``/``int``/``float``/``choice``/``str``, the choices, whether None is allowed)
    of one sampler option's type hint."""
    nullable = False
    if typing.get_origin(tp) in (Union, types.UnionType) and type(None) in typing.get_args(tp):
        nullable = True
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    if typing.get_origin(tp) is Literal:
        return "choice", list(typing.get_args(tp)), nullable
    name = {bool: "bool", int: "int", float: "float"}.get(tp, "str")
    return name, None, nullable


def describe_sampler(cls: type[SamplerOptions], model: GenerativeModel) -> dict[str, Any]:
    """One sampler: its name, first docstring line and options with the model's defaults."""
    resolved = cls().resolve(model)
    hints = typing.get_type_hints(cls)
    options = []
    for f in dataclasses.fields(cls):
        kind, choices, nullable = _option_type(hints[f.name])
        options.append({"name": f.name, "type": kind, "choices": choices,
                        "nullable": nullable, "default": getattr(resolved, f.name)})
    doc = (cls.__doc__ or "").strip().split("\n")[0]
    return {"name": cls.name, "doc": doc, "options": options}


def _unique_name(path: Path, taken: set[str]) -> str:
    name = path.resolve().name or str(path)
    base, k = name, 2
    while name in taken:
        name, k = f"{base} ({k})", k + 1
    return name


def open_run(run_id: int, path: str | Path, device: torch.device, taken: set[str]
             ) -> ServedRun:
    """Load a run directory (or a model / save_pretrained directory) for the demo.

    Raises:
        UserError: not a run, a task the demo does not apply, or a run with nothing trained.
    """
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"{path} is not a directory", "pass run directories written by "
                                                      "`genvision train` or a task's train")
    layout = RunLayout(path)
    name = _unique_name(path, taken)
    if layout.run_json.is_file() or layout.task_json.is_file():
        info = read_run_info(path)
        if info.is_task:
            return _open_task(run_id, name, path, info.task or "", info.to_dict(), device)
    model = load(path, device=device).eval()
    return ServedRun(run_id, name, path, "model", {"model": model})


def _open_task(run_id: int, name: str, path: Path, task: str, record: dict[str, Any],
               device: torch.device) -> ServedRun:
    if task not in TASK_STAGES:
        raise UserError(f"{path} is a {task} run, which the demo does not show",
                        "serve model runs and superres, colorize or translate runs")
    if task == "translate":
        methods = trained_methods(path, record)
    else:
        methods = trained_stages(path, record, TASK_STAGES[task])
    if not methods:
        raise UserError(f"{path} has no trained method yet",
                        f"train one with `genvision {task} train --out {path}`")
    loader = {"superres": load_sr_model, "colorize": load_colorizer,
              "translate": load_translator}[task]
    models = {m: loader(path, m, device=device).eval() for m in methods}
    info: dict[str, Any] = {}
    if task == "superres":
        info["scale"] = int(next(iter(models.values())).scale)
    if task == "translate":
        c = next(iter(models.values())).config
        info["directions"] = {"a2b": c.a_channels, "b2a": c.channels - c.a_channels}
        info["image_size"] = list(c.image_size)
    return ServedRun(run_id, name, path, task, models, info)
