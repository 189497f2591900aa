"""Training super-resolution runs: the SRResNet stage, then the SRGAN stage from it.

``genvision superres train --scale 4 --minutes 10 --out runs/sr4`` trains both stages into
``runs/sr4/srresnet`` and ``runs/sr4/srgan`` (``--method both``, the budget split by
``--gan-share``); ``--method srresnet`` or ``--method srgan`` trains one, so each can have a
budget of its own (see :mod:`genvision.tasks.common.staged`). The model's ``loss(x)``
degrades the high-resolution patch ``x`` itself, so the training data are plain patches.
"""

from __future__ import annotations

import dataclasses
from dataclasses import field
from pathlib import Path
from typing import Any, Literal

import torch

from ... import dataclass_config as cfg_io
from ...data.degrade import check_scale
from ...dataclass_config import bounds
from ...errors import UserError
from ...models.superres import SRGAN, SRResNet, SRResNetConfig, srgan_from_srresnet
from ...train import TrainData
from ..common import runs
from ..common.patch_data import PatchOptions
from ..common.patches import augment_dihedral
from ..common.staged import Log, TaskRequest, TaskSpec, init_source, load_stage, train_task

TASK = "superres"
STAGES = ("srresnet", "srgan")
DEGRADATION = ("bicubic down-sampling with antialiasing (torch interpolate, mode=bicubic, "
               "antialias=True: the a=-0.5 kernel of MATLAB imresize and Pillow), then "
               "rounding to 8 bits; high-resolution images cropped to a multiple of the scale")
#: training defaults per stage (any --flag overrides them)
TRAIN_DEFAULTS = {
    "srresnet": {"batch_size": 16, "lr": 5e-4, "eval_every": 250, "checkpoint_every": 500},
    "srgan": {"batch_size": 16, "lr": 1e-4, "eval_every": 250, "checkpoint_every": 500},
}



@dataclasses.dataclass
class SuperresOptions:
    """The options of ``superres train`` that are neither data, training nor a model's
    (one flag each; the [task] section of its --config file)."""

    method: Literal["both", "srresnet", "srgan"] = field(default="both", metadata={
        "help": "stages to train: both (SRResNet, then SRGAN from it), srresnet or srgan"})
    scale: Literal[2, 3, 4] | None = field(default=None, metadata={
        "help": "up-scaling factor (default: 4 for a new run, the run's own when a stage "
                "is added to it)"})
    gan_share: float = field(default=0.3, metadata={
        "help": "share of the budget for SRGAN with --method both",
        **bounds(0, 1, lo_open=True, hi_open=True)})
    init: str | None = field(default=None, metadata={
        "help": "SRResNet to start SRGAN from, with --method srgan (default: OUT/srresnet)"})
    perceptual: str | None = field(default=None, metadata={
        "help": "SRGAN feature loss: disc (the discriminator's features, default), none, or "
                "vgg19:PATH (a local torchvision VGG19 weights file)"})


def _new_info(req: TaskRequest) -> dict[str, Any]:
    return {"scale": check_scale(req.task.get("scale") or 4), "degradation": DEGRADATION}


def _check_info(req: TaskRequest, info: dict[str, Any]) -> None:
    scale = req.task.get("scale")
    if scale is not None and scale != info["scale"]:
        raise UserError(f"{req.out} is an x{info['scale']} run, --scale {scale} was given",
                        "drop --scale or choose another --out")


def _patch_size(info: dict[str, Any], opts: PatchOptions) -> int:
    return opts.patch - opts.patch % info["scale"]


def _make_data(x: torch.Tensor, val_x: torch.Tensor | None) -> TrainData:
    return TrainData(x=x.float() / 255.0, transform=augment_dihedral,
                     val_x=None if val_x is None else val_x.float() / 255.0)


def _make_base(req: TaskRequest, info: dict[str, Any], size: int, seed: int) -> SRResNet:
    config = cfg_io.from_dict(SRResNetConfig, {**req.model, "scale": info["scale"],
                                               "image_size": (size, size), "seed": seed},
                              what="SRResNet option")
    return SRResNet(config)


def _make_gan(req: TaskRequest, info: dict[str, Any], seed: int, log: Log) -> SRGAN:
    init = init_source(req, "srresnet", required=True)
    base = runs.load_task_model(init, expect=("srresnet",))
    if base.config.scale != info["scale"]:
        raise UserError(f"--init {init} is an x{base.config.scale} SRResNet, the run is "
                        f"x{info['scale']}", "pass an SRResNet of the same scale")
    gan = {**req.gan, "seed": seed}
    if req.task.get("perceptual"):
        gan["perceptual"] = req.task["perceptual"]
    try:
        model = srgan_from_srresnet(base, **gan)
    except (TypeError, ValueError) as exc:
        raise UserError(f"invalid SRGAN option: {exc}", "check the option values") from None
    log(f"srgan: generator initialised from {init}")
    log(model.prepare_perceptual())
    return model


def _stage_record(req: TaskRequest, model) -> dict[str, Any]:
    if not isinstance(model, SRGAN):
        return {}
    return {"perceptual": model.prepare_perceptual(),
            "perceptual_file": model.perceptual_info,
            "init": str(Path(req.init) if req.init else req.out / "srresnet")}


SPEC = TaskSpec(name=TASK, stages=STAGES, classes={"srresnet": SRResNet, "srgan": SRGAN},
                train_defaults=TRAIN_DEFAULTS, new_info=_new_info, check_info=_check_info,
                patch_size=_patch_size, make_data=_make_data, make_base=_make_base,
                make_gan=_make_gan, stage_record=_stage_record, options=SuperresOptions)


def train_superres(req: TaskRequest, log: Log = print) -> dict[str, Any]:
    """Train the stages ``req`` asks for; returns the run's ``task.json`` contents."""
    return train_task(SPEC, req, log)


def load_sr_model(run: str | Path, method: str | None = None,
                  device: str | torch.device = "cpu") -> SRResNet | SRGAN:
    """The SRResNet or SRGAN of a ``superres train`` run (or of a checkpoint directory).

    Args:
        method: ``srresnet`` or ``srgan``; default: SRResNet when the run has one.
    """
    return load_stage(TASK, {"srresnet": "srresnet", "srgan": "srgan"}, run, method, device)
