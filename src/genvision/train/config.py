"""Options of the one training loop (``genvision.train.loop``)."""

from __future__ import annotations

import dataclasses
from dataclasses import field

from ..dataclass_config import SEED, bounds, check_fields
from ..progress import PROGRESS_SECONDS

#: devices --device accepts (what torch.device would parse into a usable device)
DEVICES = "auto, cpu, cuda, cuda:N or mps"


@dataclasses.dataclass
class TrainConfig:
    """Budget, optimiser and bookkeeping for :func:`genvision.train.train`.

    Budgets are *additional* work from where the run stands: on ``--resume`` a budget of
    ``minutes=2`` trains two more minutes. Exactly one of steps / epochs / minutes is
    normally given; if several are, training stops at whichever is reached first; if none
    is, training runs one epoch. ``steps`` counts optimiser steps, ``epochs`` converts to
    ``ceil(epochs * steps_per_epoch)`` steps (an epoch is ``N // (batch_size * processes)``
    steps; the last incomplete batch is dropped), ``minutes`` is wall-clock time of this call.
    """

    steps: int | None = field(default=None, metadata={
        "help": "train this many (more) steps", **bounds(1)})
    epochs: float | None = field(default=None, metadata={
        "help": "train this many (more) epochs", **bounds(0, lo_open=True)})
    minutes: float | None = field(default=None, metadata={
        "help": "train this many (more) minutes", **bounds(0, lo_open=True)})
    batch_size: int = field(default=64, metadata={
        "help": "images per step (per process)", **bounds(1, 1_000_000)})
    lr: float = field(default=1e-3, metadata={
        "help": "AdamW learning rate", **bounds(0, lo_open=True)})
    weight_decay: float = field(default=0.0, metadata={
        "help": "AdamW weight decay", **bounds(0)})
    beta1: float = field(default=0.9, metadata={
        "help": "AdamW beta1", **bounds(0, 1, hi_open=True)})
    beta2: float = field(default=0.999, metadata={
        "help": "AdamW beta2", **bounds(0, 1, hi_open=True)})
    warmup_steps: int = field(default=0, metadata={
        "help": "linear learning-rate warm-up steps", **bounds(0)})
    lr_schedule: str = field(default="constant", metadata={
        "help": "constant, cosine, linear or hold-linear (constant for half, then linear; "
                "CycleGAN's): decay the learning rate to 0 over this call's budget "
                "(steps/epochs, or wall-clock time for --minutes)"})
    grad_clip: float = field(default=0.0, metadata={
        "help": "clip gradient norm (0 = off)", **bounds(0)})
    ema_decay: float = field(default=0.999, metadata={
        "help": "EMA of weights used for sampling/eval, with warm-up (0 = off)",
        **bounds(0, 1, hi_open=True)})
    seed: int = field(default=0, metadata={
        "help": "seed for data order, noise and init", **SEED})
    device: str = field(default="auto", metadata={
        "help": "auto, cpu, cuda, cuda:1, mps", "pattern": r"auto|cpu|mps|cuda(:[0-9]+)?",
        "accepts": DEVICES})
    amp: bool = field(default=True,
                      metadata={"help": "mixed precision (CUDA only; ignored on CPU)"})
    compile: bool = field(default=False, metadata={
        "help": "torch.compile each phase's loss (forward and backward); the first steps "
                "are slow while it compiles, so it pays on long runs, mostly on CUDA; "
                "checkpoints are the same as without it"})
    channels_last: bool = field(default=False, metadata={
        "help": "train in channels-last memory format (convolution models on CUDA with "
                "mixed precision); checkpoints are the same as without it"})
    log_every: int = field(default=50, metadata={
        "help": "write a metrics.jsonl line every N steps", **bounds(1)})
    eval_every: int = field(default=0, metadata={
        "help": "validate every N steps (0 = at the end)", **bounds(0)})
    checkpoint_every: int = field(default=500, metadata={
        "help": "checkpoint every N steps", **bounds(1)})
    sample_every: int = field(default=0, metadata={
        "help": "write a sample grid every N steps (0 = at the end only)", **bounds(0)})
    keep_checkpoints: int = field(default=2, metadata={
        "help": "how many checkpoints to keep", **bounds(1)})
    progress: bool = field(default=True, metadata={
        "help": "show progress: a bar in a terminal or notebook, otherwise (nohup, CI) a "
                f"plain line every {PROGRESS_SECONDS:g} s and every tenth of the budget"})
    tensorboard: bool = field(default=True, metadata={
        "help": "write TensorBoard event files into RUN/tensorboard (`tensorboard "
                "--logdir runs`); needs the tensorboard package"})
    log_to: str = field(default="", metadata={
        "help": "also log to wandb or mlflow, or both: wandb,mlflow (the package must be "
                "installed; default: neither)", "pattern": r"((wandb|mlflow)(,(wandb|mlflow))*)?",
        "accepts": "wandb, mlflow or wandb,mlflow"})

    def __post_init__(self) -> None:
        # One line naming the flag, the value and the accepted range, before any work.
        check_fields(self)
