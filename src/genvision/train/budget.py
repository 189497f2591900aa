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
import time
from typing import Any

from ..callbacks import Callback, TrainState
from .config import TrainConfig
from .helpers import schedule_factor

#: a --minutes call of fewer steps than this has barely moved most models from their
#: initialisation
FEW_STEPS = 200
#: a --minutes call whose overall rate fell below this share of its early rate says so
SLOWDOWN_SHARE = 0.5
#: steps (after the first) over which the early rate of a --minutes call is measured
EARLY_WINDOW = 20


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


class BudgetWatch(Callback):
    """Warns (through :meth:`TrainState.warn`, so the log and report keep it) when the
    budget gives garbage without saying so: no budget at all (one epoch, a handful of
    steps on a small folder; an explicit ``--steps`` is taken as meant), a budget that
    ends inside the objective's own warm-up (a VAE's KL ramp,
    :meth:`GenerativeModel.objective_warmup`), and a ``--minutes`` call that slows far
    below its own early speed or will give few steps (a loaded machine: the same
    command then does much less work).

    Args:
        budget: this call's budget. model: the model being trained.
    """

    def __init__(self, budget: Budget, model: Any):
        self.budget, self.model = budget, model
        self.t_first: float | None = None
        self.first_step = 0
        self.early_rate: float | None = None
        self.warned_slow = self.warned_few = False

    def on_train_start(self, state: TrainState) -> None:
        b, cfg = self.budget, self.budget.cfg
        planned = b.target - b.start
        if cfg.steps is None and cfg.epochs is None and cfg.minutes is None:
            state.warn(f"no budget given: this trains one epoch ({int(planned)} steps); set "
                       "--steps N, --epochs N or --minutes M for a useful model")
        warm = getattr(self.model, "objective_warmup", lambda: None)()
        if warm is not None and not math.isinf(b.target) and b.target < warm[0]:
            state.warn(f"the budget ends at step {int(b.target)}, inside the {warm[1]} "
                       f"(until step {warm[0]}): the objective is not the final one yet; "
                       f"train at least {warm[0]} steps (--steps) or shorten the warm-up")

    def on_step_end(self, state: TrainState) -> None:
        """From half of a ``--minutes`` budget on: warn once when the speed fell far below
        the early speed, and once when the whole budget will give few steps."""
        cfg = self.budget.cfg
        if cfg.minutes is None or state.rank != 0:
            return
        now, done = time.monotonic(), state.step - self.budget.start
        if self.t_first is None:  # the first step pays for set-up: rates start after it
            self.t_first, self.first_step = now, done
            return
        steps, took = done - self.first_step, max(now - self.t_first, 1e-9)
        if self.early_rate is None and steps >= EARLY_WINDOW:
            self.early_rate = steps / took
        total = cfg.minutes * 60
        if took < total / 2:
            return
        rate = steps / took
        if not self.warned_slow and self.early_rate and rate < SLOWDOWN_SHARE * self.early_rate:
            self.warned_slow = True
            state.warn(f"--minutes {cfg.minutes:g}: {done} steps done at {rate:.2f} steps/s, "
                       f"below half the {self.early_rate:.2f} steps/s of the first steps (a "
                       "loaded machine?); the same command does less work on a busy "
                       "machine: use --steps N for a fixed amount of work")
        expected = done + rate * max(0.0, total - took)
        if not self.warned_few and expected < FEW_STEPS:
            self.warned_few = True
            state.warn(f"--minutes {cfg.minutes:g} gives only about {expected:.0f} steps "
                       f"({done} done at {rate:.2f} steps/s), too few for most models: "
                       "use more minutes or --steps N")
