"""A training call's budget and learning-rate schedule.

Budgets (``steps`` / ``epochs`` / ``minutes``) are *additional* work from where the run
stands; several: the first reached wins; none: one epoch. The schedule (warm-up, then
``constant``, ``cosine`` or ``linear`` decay) spans one call: ``--resume`` with a new budget
starts a new decay from the base learning rate.
"""

from __future__ import annotations

import math

from .config import TrainConfig
from .helpers import schedule_factor


class Budget:
    """Where a call stops and how far through it a step is.

    Args:
        cfg: the call's TrainConfig. start: optimiser steps done before this call.
        steps_per_epoch: steps in one epoch of this run (all processes together).
    """

    def __init__(self, cfg: TrainConfig, start: int, steps_per_epoch: int):
        self.cfg, self.start = cfg, start
        budgets = []
        if cfg.steps is not None:
            budgets.append(cfg.steps)
        if cfg.epochs is not None:
            budgets.append(max(1, math.ceil(cfg.epochs * steps_per_epoch - 1e-9)))
        if not budgets and cfg.minutes is None:
            budgets.append(steps_per_epoch)  # documented default: one epoch
        #: the step this call ends at (inf: only the clock ends it)
        self.target: float = start + min(budgets) if budgets else math.inf
        #: seconds of this call as of the last step, agreed by every rank
        self.elapsed = 0.0

    def out_of_time(self) -> bool:
        return self.cfg.minutes is not None and self.elapsed >= self.cfg.minutes * 60

    def progress(self, step: int) -> float:
        """Share of this call's budget used before ``step``, in [0, 1]: the budget that
        ends first counts."""
        done = []
        if not math.isinf(self.target):
            done.append((step - self.start) / max(1.0, self.target - self.start))
        if self.cfg.minutes is not None:
            done.append(self.elapsed / (self.cfg.minutes * 60))
        return max(done, default=0.0)

    def lr_factor(self, step: int) -> float:
        """Warm-up (linear over ``warmup_steps``) times the schedule's decay at ``step``."""
        warm = self.cfg.warmup_steps
        factor = min(1.0, (step + 1) / warm) if warm > 0 else 1.0
        return factor * schedule_factor(self.cfg.lr_schedule, self.progress(step))
