"""Runs a model's optimisation phases: the one place in genvision that touches gradients.

For every phase of a step (see :mod:`genvision.models.protocol`), and every repeat of it:
zero_grad, the phase's loss under autocast (CUDA mixed precision), a non-finite check of
its terms agreed by every rank, backward (scaled for float16), the gradient all-reduce
under torchrun, unscaling, clipping to ``--grad-clip``, a non-finite check of the gradient
norm and the optimiser step. Models never call ``backward`` or ``step`` themselves, so
``--amp``, ``--grad-clip`` and torchrun apply to every family alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, NoReturn

import torch
from torch import Tensor, nn

from ..errors import TrainingDiverged
from ..models.protocol import Phase, StepContext
from . import distributed as dist
from .compiled import compile_loss
from .ema import EMA, ShadowEMA
from .helpers import grad_norm

#: raises TrainingDiverged naming what became non-finite
OnDiverged = Callable[[str], NoReturn]


@contextmanager
def frozen(modules: tuple[nn.Module, ...] | list[nn.Module]) -> Iterator[None]:
    """Parameters of ``modules`` need no gradient inside the block (restored after)."""
    saved = [(p, p.requires_grad) for m in modules for p in m.parameters()]
    for p, _ in saved:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in saved:
            p.requires_grad_(flag)


class PhaseRunner:
    """The optimisers of a model's phases and one training step over them.

    Args:
        phases: from ``model.phases(train_config)``; names must be unique.
        device: the training device (autocast and loss scaling only on CUDA).
        amp: use mixed precision when on CUDA (bfloat16 where supported, else float16
            with a GradScaler).
        grad_clip: clip each phase's gradient norm to this (0 = off; the norm is still
            computed and checked).
        world: processes under torchrun (gradients are averaged when > 1).
        compile: run each phase's loss through ``torch.compile`` (:mod:`.compiled`).
    """

    def __init__(self, phases: list[Phase], device: torch.device, amp: bool,
                 grad_clip: float, world: int, compile: bool = False):
        names = [p.name for p in phases]
        if len(set(names)) != len(names) or not phases:
            raise ValueError(f"phases need unique names, got {names}")
        self.phases, self.grad_clip, self.world = phases, grad_clip, world
        self.optimizers = {p.name: p.optimizer.build(p.parameters) for p in phases}
        #: what each phase's step calls for its loss: the phase's own, or compiled
        self.losses = {p.name: compile_loss(p.loss) if compile else p.loss for p in phases}
        #: learning rate of every param group before warm-up/schedule (what factors scale)
        self.base_lrs = {name: [g["lr"] for g in opt.param_groups]
                         for name, opt in self.optimizers.items()}
        cuda_amp = device.type == "cuda" and amp
        dtype = torch.bfloat16 if cuda_amp and torch.cuda.is_bf16_supported() else torch.float16
        self.autocast: Callable[[], AbstractContextManager] = (
            (lambda: torch.autocast("cuda", dtype=dtype)) if cuda_amp else nullcontext)
        # float16 needs loss scaling; bfloat16 has float32's range and does not.
        use_scaler = cuda_amp and dtype == torch.float16
        self.scaler = torch.amp.GradScaler("cuda") if use_scaler else None
        #: the loss each phase minimised in its last run (this process's batch), as a
        #: float: what :class:`~genvision.train.loss_range.LossRange` watches
        self.last_losses: dict[str, float] = {}

    def set_lr_factor(self, factor: float) -> None:
        for name, opt in self.optimizers.items():
            for group, base in zip(opt.param_groups, self.base_lrs[name], strict=True):
                group["lr"] = base * factor

    def reset_hyperparameters(self) -> None:
        """After a resume: the phases' current betas and weight decay (a resumed run may
        change them) over what the checkpoint's optimiser state held."""
        for phase in self.phases:
            for g in self.optimizers[phase.name].param_groups:
                g["betas"] = tuple(phase.optimizer.betas)
                g["weight_decay"] = phase.optimizer.weight_decay

    def step(self, x: Tensor, y: Tensor | None, step: int,
             diverged: OnDiverged) -> tuple[dict[str, float], StepContext]:
        """One training step: every phase, every repeat. Returns the logged terms (the
        last repeat's of each phase, plus ``{phase}_grad_norm`` for multi-phase models)
        and the context the phases shared. Phases whose ``steps`` exclude ``step`` are
        skipped."""
        ctx = StepContext(step=step)
        terms: dict[str, float] = {}
        for phase in self.phases:
            if not phase.runs_at(step):  # a staged model's phase outside its steps
                continue
            for r in range(phase.repeats):
                ctx.repeat = r
                phase_terms = self._run(phase, x, y, ctx, diverged)
            terms.update(phase_terms)
        return terms, ctx

    def _run(self, phase: Phase, x: Tensor, y: Tensor | None, ctx: StepContext,
             diverged: OnDiverged) -> dict[str, float]:
        opt = self.optimizers[phase.name]
        opt.zero_grad(set_to_none=True)
        with frozen(list(phase.frozen)), self.autocast():
            loss, out = self.losses[phase.name](x, y, ctx)
        terms = self._checked(out, loss, phase.name, diverged, phase.watched)
        (self.scaler.scale(loss) if self.scaler else loss).backward()
        params = [p for g in opt.param_groups for p in g["params"]]
        if self.world > 1:
            dist.average_gradients(params)
        if self.scaler:
            self.scaler.unscale_(opt)
        norm = grad_norm([p for p in params if p.grad is not None], self.grad_clip)
        if self.scaler:  # inf grads are how GradScaler finds its scale: it skips the step
            self.scaler.step(opt)
            self.scaler.update()
        else:
            if not math.isfinite(norm):
                diverged(f"the gradient norm of phase {phase.name!r}"
                         if len(self.phases) > 1 else "the gradient norm")
            opt.step()
        if len(self.phases) > 1:
            terms[f"{phase.name}_grad_norm"] = norm
        return terms

    def _checked(self, out: dict[str, Tensor], loss: Tensor, phase: str,
                 diverged: OnDiverged, watched: bool = True) -> dict[str, float]:
        """The terms as floats; every rank stops together when one of them, or the loss
        the phase minimises, is NaN or infinite (before anything is stepped)."""
        names = list(out)
        # one device-to-host copy for all terms (a term may live on the CPU, e.g. a
        # schedule's weight, while the loss is on the GPU)
        values = torch.stack([t.detach().float().mean().to(loss.device)
                              for t in [*out.values(), loss]]).cpu().tolist()
        bad = [0.0 if math.isfinite(v) else 1.0 for v in values]
        bad = dist.all_max(bad) if self.world > 1 else bad
        for name, flag in zip(names, bad, strict=False):
            if flag:
                diverged(f"loss term {name!r}")
        if bad[-1]:
            diverged(f"the loss of phase {phase!r}" if len(self.phases) > 1 else "the loss")
        if watched:
            self.last_losses[phase] = values[-1]
        return dict(zip(names, values, strict=False))


def _diverged(what: str) -> NoReturn:
    raise TrainingDiverged(f"{what} became NaN or infinite", "lower the learning rate")


class Stepper:
    """A model's whole training step outside of bookkeeping: its phases, then the EMA
    (and, under torchrun, rank 0's buffers). The loop steps through one; tests and
    notebooks can too, without a run directory.

    Args:
        model: a GenerativeModel on ``device``.
        cfg: a TrainConfig (``amp``, ``grad_clip``, ``ema_decay`` and the optimiser
            settings the default phase reads).
        device: the training device. world: processes under torchrun.

    Example:
        >>> stepper = Stepper(model, TrainConfig(), torch.device("cpu"))  # doctest: +SKIP
        >>> terms = stepper.step(x, y, step=0)        # {"loss": ..., ...} as floats
    """

    def __init__(self, model: Any, cfg: Any, device: torch.device, world: int = 1):
        self.model, self.world = model, world
        self.runner = PhaseRunner(model.phases(cfg), device, cfg.amp, cfg.grad_clip, world,
                                  compile=cfg.compile)
        pair = model.ema_pair()
        self.ema: EMA | ShadowEMA | None = (
            ShadowEMA(*pair, cfg.ema_decay) if pair is not None
            else EMA(model, cfg.ema_decay) if cfg.ema_decay > 0 else None)

    def step(self, x: Tensor, y: Tensor | None, step: int,
             diverged: OnDiverged = _diverged) -> dict[str, float]:
        """Train on one batch as step ``step`` (0-based); returns the logged terms."""
        self.model.train()
        terms, ctx = self.runner.step(x, y, step, diverged)
        if self.ema is not None:
            self.ema.update(self.model, step + 1)
            if ctx.ema_inputs is not None and isinstance(self.ema, ShadowEMA):
                self.ema.refresh_buffers(ctx.ema_inputs)
        if self.world > 1:
            dist.broadcast_state(self.model, buffers_only=True)  # e.g. BatchNorm stats
        return terms
