"""What a model declares for training: its optimisation phases.

The loop owns optimisation (after NVlabs/stylegan2-ada-pytorch's ``training_loop.py``:
``for phase in phases: zero_grad; accumulate_gradients(phase); all-reduce; step``). A model
only says *what* to optimise: each :class:`Phase` names its parameters, its optimiser
settings, the loss it minimises and how often it runs. The loop alone does zero_grad,
autocast, gradient scaling, the all-reduce under torchrun, clipping, the non-finite check,
the optimiser step, the EMA and the step counter. A single-loss model is the one-phase
case (:meth:`GenerativeModel.phases` gives it by default); a GAN is a D phase (repeated
``n_critic`` times) followed by a G phase.

Phases of one step talk through :class:`StepContext` (e.g. the G phase reuses the fakes the
last D repeat generated, as the classic GAN step does), and the loop passes the step index
in it: nothing is ever written onto the model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

#: what a phase's loss returns: the scalar to minimise and the named terms to log
PhaseLoss = tuple[Tensor, dict[str, Tensor]]


@dataclasses.dataclass(frozen=True)
class OptimizerSpec:
    """Settings of one phase's optimiser (built by the loop).

    ``kind`` ``adamw`` (decoupled weight decay, Loshchilov & Hutter 2019) or ``adam``.
    The loop's warm-up and learning-rate schedule scale ``lr``.
    """

    kind: Literal["adam", "adamw"] = "adamw"
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0

    def build(self, params: Sequence[nn.Parameter]) -> torch.optim.Optimizer:
        cls = torch.optim.AdamW if self.kind == "adamw" else torch.optim.Adam
        return cls(list(params), lr=self.lr, betas=tuple(self.betas),
                   weight_decay=self.weight_decay)


@dataclasses.dataclass
class StepContext:
    """Shared by the phases of one training step.

    Attributes:
        step: optimiser steps completed before this one (0 on the first step); drives
            schedules inside a loss (e.g. a VAE's KL warm-up).
        repeat: which repetition of the current phase this is (0 .. repeats - 1).
        scratch: free-form values one phase leaves for a later one in the same step.
        ema_inputs: when a phase sets it, the loop runs the EMA shadow network once on
            these inputs in training mode after averaging, so a shadow with BatchNorm keeps
            running statistics of its own weights (see ``GenerativeModel.ema_pair``).
    """

    step: int
    repeat: int = 0
    scratch: dict[str, Any] = dataclasses.field(default_factory=dict)
    ema_inputs: tuple[Any, ...] | None = None


@dataclasses.dataclass
class Phase:
    """One optimisation phase of a training step.

    Attributes:
        name: names the optimiser in checkpoints and the ``{name}_grad_norm`` term.
        parameters: what this phase's optimiser updates.
        optimizer: its settings.
        loss: ``(x [B, C, H, W], y [B] | None, ctx) -> (loss, terms)``; ``loss`` is the
            scalar minimised; ``terms`` (detached scalars) are logged as they are named.
        repeats: how many times the phase runs per step (e.g. WGAN critic steps), each a
            full zero_grad/backward/step; the last repeat's terms are logged.
        frozen: modules whose parameters need no gradient while this phase's loss is
            computed (e.g. D during G's phase): only saves work.
        watched: whether the loop's loss-range watcher (``train.loss_range``) follows
            this phase's loss. False for a surrogate whose level means nothing, only its
            gradient (an RBM's contrastive free-energy gap swings by tens of nats as the
            chains catch up with the weights); the NaN checks apply either way.
        steps: the training steps ``[start, stop)`` (0-based; ``stop`` None = to the end)
            the phase runs at; outside them it is skipped (no zero_grad, no step, no
            terms), so a model can train in stages within one run (e.g. a VQ-VAE's
            autoencoder, then its prior on the frozen codes).
    """

    name: str
    parameters: Sequence[nn.Parameter]
    optimizer: OptimizerSpec
    loss: Callable[[Tensor, Tensor | None, StepContext], PhaseLoss]
    repeats: int = 1
    frozen: Sequence[nn.Module] = ()
    watched: bool = True
    steps: tuple[int, int | None] = (0, None)

    def __post_init__(self) -> None:
        self.parameters = list(self.parameters)
        if self.repeats < 1:
            raise ValueError(f"phase {self.name!r}: repeats must be >= 1")
        start, stop = self.steps
        if start < 0 or (stop is not None and stop <= start):
            raise ValueError(f"phase {self.name!r}: steps must be [start, stop) with "
                             f"0 <= start < stop, got {self.steps}")
        if not self.parameters:
            raise ValueError(f"phase {self.name!r} has no parameters")

    def runs_at(self, step: int) -> bool:
        """Whether the phase runs at training step ``step`` (0-based)."""
        start, stop = self.steps
        return start <= step and (stop is None or step < stop)
