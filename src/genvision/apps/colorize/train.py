"""Training colorization runs: the L1 regression stage, then the pix2pix GAN stage.

``genvision colorize train --minutes 10 --out runs/color`` trains ``regression`` and then
``gan`` (``--method both``; the budget split by ``--gan-share``); ``--method`` names one
stage to give each a budget of its own (see :mod:`genvision.tasks.common.staged`). The GAN's
generator starts from the run's regression model when there is one (``--init none``: from
scratch, as pix2pix), which lets a short CPU budget go to colour instead of to structure.
Training patches are converted to normalised Lab once; ``loss(x)`` splits L from ab.
"""

from __future__ import annotations

import dataclasses
from dataclasses import field
from pathlib import Path
from typing import Any, Literal

import torch

from ... import dataclass_config as cfg_io
from ...data.lab import patches_to_lab
from ...dataclass_config import bounds
from ...errors import UserError
from ...models.colorize import ColorizeConfig, ColorizeGAN, ColorizeGANConfig, ColorizeRegression
from ...train import TrainData
from ..common import runs
from ..common.patch_data import PatchOptions
from ..common.patches import augment_dihedral
from ..common.staged import Log, TaskRequest, TaskSpec, init_source, load_stage, train_task

TASK = "colorize"
STAGES = ("regression", "gan")
TRAIN_DEFAULTS = {
    "regression": {"batch_size": 16, "lr": 5e-4, "eval_every": 250, "checkpoint_every": 500},
    # pix2pix: Adam 2e-4, beta1 0.5
    "gan": {"batch_size": 16, "lr": 2e-4, "beta1": 0.5, "eval_every": 250,
            "checkpoint_every": 500},
}



@dataclasses.dataclass
class ColorizeOptions:
    """The options of ``colorize train`` that are neither data, training nor a model's
    (one flag each; the [task] section of its --config file)."""

    method: Literal["both", "regression", "gan"] = field(default="both", metadata={
        "help": "stages to train: both (regression, then the GAN from it), regression or "
                "gan"})
    gan_share: float = field(default=0.5, metadata={
        "help": "share of the budget for the GAN with --method both",
        **bounds(0, 1, lo_open=True, hi_open=True)})
    init: str | None = field(default=None, metadata={
        "help": "regression model to start the GAN from, with --method gan (default: "
                "OUT/regression when trained; none: from scratch)"})


def _patch_size(info: dict[str, Any], opts: PatchOptions) -> int:
    return opts.patch


def _make_data(x: torch.Tensor, val_x: torch.Tensor | None) -> TrainData:
    return TrainData(x=patches_to_lab(x), transform=augment_dihedral,
                     val_x=None if val_x is None else patches_to_lab(val_x))


def _make_base(req: TaskRequest, info: dict[str, Any], size: int,
               seed: int) -> ColorizeRegression:
    config = cfg_io.from_dict(ColorizeConfig, {**req.model, "image_size": (size, size),
                                               "seed": seed}, what="colorize option")
    return ColorizeRegression(config)


def _make_gan(req: TaskRequest, info: dict[str, Any], seed: int, log: Log) -> ColorizeGAN:
    init = init_source(req, "regression", required=False)
    size = info["data"]["patch"]
    try:
        if init is None:
            config = ColorizeGANConfig(**{**req.model, **req.gan, "seed": seed,
                                          "image_size": (size, size)})
            log("gan: generator initialised at random (pix2pix from scratch)")
            return ColorizeGAN(config)
        base = runs.load_task_model(init, expect=("colorize-regression",))
        fields = cfg_io.to_dict(base.config)
        model = ColorizeGAN(ColorizeGANConfig(**{**fields, "image_size": tuple(
            fields["image_size"]), **req.gan, "seed": seed}))
    except (TypeError, ValueError) as exc:
        raise UserError(f"invalid colorize GAN option: {exc}", "check the option values") from None
    model.generator.load_state_dict(base.generator.state_dict())
    log(f"gan: generator initialised from {init}")
    return model


def _stage_record(req: TaskRequest, model) -> dict[str, Any]:
    if not isinstance(model, ColorizeGAN):
        return {}
    init = init_source(req, "regression", required=False)
    return {"init": str(init) if init else "random"}


SPEC = TaskSpec(name=TASK, stages=STAGES,
                classes={"regression": ColorizeRegression, "gan": ColorizeGAN},
                train_defaults=TRAIN_DEFAULTS, new_info=lambda req: {"color_space": (
                    "CIE Lab (D65, scikit-image); model input L/100, output ab/110")},
                check_info=lambda req, info: None, patch_size=_patch_size,
                make_data=_make_data, make_base=_make_base, make_gan=_make_gan,
                stage_record=_stage_record, options=ColorizeOptions)


def train_colorize(req: TaskRequest, log: Log = print) -> dict[str, Any]:
    """Train the stages ``req`` asks for; returns the run's ``task.json`` contents."""
    return train_task(SPEC, req, log)


def load_colorizer(run: str | Path, method: str | None = None,
                   device: str | torch.device = "cpu") -> ColorizeRegression | ColorizeGAN:
    """The regression or GAN colorizer of a run (default: the regression model)."""
    return load_stage(TASK, {"regression": ColorizeRegression.name, "gan": ColorizeGAN.name},
                      run, method, device)
