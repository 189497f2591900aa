"""Checks and small helpers of the training loop: argument validation,
seed derivation, gradient norm and deferred Ctrl-C."""

from __future__ import annotations

import hashlib
import math
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..data.stream import StreamedImages
from ..dataclass_config import check_fields
from ..errors import UserError
from ..models.base import GenerativeModel
from . import checkpoint as ckpt
from .config import TrainConfig
from .tracking import check_external
from .types import TrainData

LR_SCHEDULES = ("constant", "cosine", "linear", "hold-linear")


def schedule_factor(kind: str, progress: float) -> float:
    """Learning-rate multiplier at ``progress`` in [0, 1] of the budget (1 -> 0 for decays).

    Cosine: Loshchilov and Hutter 2017, https://arxiv.org/abs/1608.03983 (without restarts).
    hold-linear: constant for the first half, then linear to 0 (CycleGAN's schedule).
    """
    p = min(max(progress, 0.0), 1.0)
    if kind == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * p))
    if kind == "linear":
        return 1.0 - p
    if kind == "hold-linear":
        return min(1.0, 2.0 * (1.0 - p))
    return 1.0


def check_config(cfg: TrainConfig) -> None:
    """Every field within its declared bounds (again: a TrainConfig may be changed after it
    was built) and a known learning-rate schedule."""
    check_fields(cfg)
    if cfg.lr_schedule not in LR_SCHEDULES:
        raise UserError(f"unknown --lr-schedule {cfg.lr_schedule!r}",
                        f"use one of: {', '.join(LR_SCHEDULES)}")
    check_external(cfg.log_to)  # a logger that is not installed, before any work


def check_data(model: GenerativeModel, data: TrainData, cfg: TrainConfig, world: int) -> None:
    x = data.x
    if not isinstance(x, Tensor | StreamedImages) or x.dim() != 4 or not x.is_floating_point():
        raise UserError("training images must be a float tensor [N, C, H, W]",
                        "preprocess the data into float32 NCHW")
    if data.y is not None and len(data.y) != len(x):
        raise UserError(f"{len(x)} images but {len(data.y)} labels", "pass one label per image")
    if len(x) < cfg.batch_size * world:
        raise UserError(f"only {len(x)} training images for a batch of {cfg.batch_size} x "
                        f"{world} process(es)", "lower --batch-size or use more data")
    model.check_input(x[:2], None if data.y is None else data.y[:2])


def check_run_dir(run_dir: Path, resume: bool) -> None:
    if not resume and ckpt.has_run(run_dir):
        raise UserError(f"run dir {run_dir} already has a run",
                        "pass --resume to continue or choose another --out")


def derive_seed(*parts: Any) -> int:
    """A 63-bit seed from ``parts`` (stable across runs and platforms, unlike ``hash``)."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def grad_norm(params: list[Tensor], clip: float) -> float:
    """Total L2 norm of the gradients, clipping them to ``clip`` first when ``clip > 0``."""
    if clip > 0:
        return float(torch.nn.utils.clip_grad_norm_(params, clip))
    if hasattr(torch.nn.utils, "get_total_norm"):  # torch >= 2.6: norm without rescaling
        return float(torch.nn.utils.get_total_norm([p.grad for p in params]))
    return float(torch.nn.utils.clip_grad_norm_(params, math.inf))


@contextmanager
def deferred_sigint() -> Iterator[dict[str, bool]]:
    """Turn Ctrl-C into a flag the loop checks between steps (so the checkpoint it saves is
    exactly the state after a whole step); a second Ctrl-C interrupts at once."""
    flag = {"set": False}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum: int, frame: Any) -> None:
        if flag["set"]:
            raise KeyboardInterrupt
        flag["set"] = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)
