"""A training call's budget and learning-rate schedule.

Budgets (``steps`` / ``epochs`` / ``minutes``) are *additional* work from where the run
stands; several: the first reached wins; none: one epoch. The schedule (warm-up, then
``constant``, ``cosine`` or ``linear`` decay) spans the call that set the budget: a run that
was interrupted and is resumed with the rest of its budget (the same end step, or the rest
of its minutes) continues the same decay, so it equals the uninterrupted run; a resume that
sets another end (extending a finished run, say) starts a new decay from the base rate,
and says so.
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

    def __init__(self, cfg: TrainConfig, start: int, steps_per_epoch: int,
                 previous: dict | None = None):
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
        #: the schedule's origin step, and its clock before this call / in total
        self.origin, self.seconds_before = start, 0.0
        self.seconds_total = cfg.minutes * 60 if cfg.minutes is not None else None
        self.continued = self._continue(previous or {})

    def _continue(self, prev: dict) -> bool:
        """Take over an interrupted call's schedule when this call ends where that one
        would have ended: the same end step, and for ``--minutes`` the rest of its time."""
        target = None if math.isinf(self.target) else self.target
        if not prev or prev.get("target") != target:
            return False
        if target is not None and self.start >= target:
            return False
        seconds = self.seconds_total
        if (prev.get("seconds") is None) != (seconds is None):
            return False
        if seconds is not None and not (
                prev["elapsed"] < prev["seconds"]
                and abs(prev["elapsed"] + seconds - prev["seconds"]) <= 1.0):
            return False
        self.origin = int(prev["origin"])
        if seconds is not None:
            self.seconds_before, self.seconds_total = prev["elapsed"], prev["seconds"]
        return True

    def state(self) -> dict:
        """What a checkpoint keeps so a resume can continue this schedule."""
        return {"origin": self.origin,
                "target": None if math.isinf(self.target) else self.target,
                "seconds": self.seconds_total,
                "elapsed": self.seconds_before + self.elapsed}

    def describe(self) -> str:
        """One line on what a resumed call does with the learning-rate schedule."""
        end = "its time" if math.isinf(self.target) else f"step {int(self.target)}"
        if self.continued:
            return (f"lr schedule: continuing the interrupted {self.cfg.lr_schedule} decay "
                    f"(started at step {self.origin}, ends at {end})")
        return (f"lr schedule: a new {self.cfg.lr_schedule} decay from the base rate over "
                f"this call's budget (ends at {end}); resume with the rest of an "
                "interrupted budget to continue its decay instead")

    def out_of_time(self) -> bool:
        return self.cfg.minutes is not None and self.elapsed >= self.cfg.minutes * 60

    def progress(self, step: int) -> float:
        """Share of the schedule's budget used before ``step``, in [0, 1]: the budget
        that ends first counts."""
        done = []
        if not math.isinf(self.target):
            done.append((step - self.origin) / max(1.0, self.target - self.origin))
        if self.seconds_total is not None:
            done.append((self.seconds_before + self.elapsed) / self.seconds_total)
        return max(done, default=0.0)

    def lr_factor(self, step: int) -> float:
        """Warm-up (linear over ``warmup_steps``) times the schedule's decay at ``step``."""
        warm = self.cfg.warmup_steps
        factor = min(1.0, (step + 1) / warm) if warm > 0 else 1.0
        return factor * schedule_factor(self.cfg.lr_schedule, self.progress(step))
