"""The one generic training loop (minGPT-trainer sized): every family trains through it.

The model declares *what* to optimise (``model.phases(cfg)``: one phase for a single
loss, D and G phases for a GAN; see :mod:`genvision.models.protocol`) and the loop owns
*how*: :class:`~genvision.train.phases.PhaseRunner` does zero_grad, autocast, scaling,
the torchrun all-reduce, clipping, non-finite checks and the optimiser steps; this module
does the rest of the bookkeeping: warm-up and schedule, EMA, budgets, metrics, validation,
checkpoints, exact resume, a run-directory lock and Ctrl-C. It also follows the minimised
loss's normal range (:mod:`.loss_range`): checkpoints are marked in or out of it, the last
one in range outlives pruning while the loss is out, and a divergence names it. Sample
grids and watchers are callbacks (:mod:`genvision.callbacks`); the loop never builds
datasets or computes metrics.

Under torchrun every rank starts from rank 0's weights, gradients are averaged before
clipping and buffers (e.g. BatchNorm statistics) follow rank 0 after every step, so the
replicas stay identical.

Budgets (``cfg.steps`` / ``cfg.epochs`` / ``cfg.minutes``, see :mod:`.budget`) are
*additional* work from where the run stands: resuming the checkpoint at step 13 with
``steps=7`` stops at step 20; with ``epochs=1`` it trains one more epoch's worth of steps;
with ``minutes=2`` two more minutes.
"""

from __future__ import annotations

import json
import math
import shlex
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import NoReturn

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..data.stream import init_images
from ..errors import TrainingDiverged, UserError
from ..models.base import GenerativeModel
from ..storage import refuse_link
from . import checkpoint as ckpt
from . import distributed as dist
from . import trainer_state
from .budget import Budget, BudgetWatch
from .callbacks import SAMPLES, SampleGrids
from .config import TrainConfig
from .device import resolve_device, to_device
from .helpers import check_config, check_data, deferred_sigint, derive_seed
from .lock import RunLock, claimed_run_dir
from .loss_range import LossRange
from .metrics_log import MetricsLog
from .phases import Stepper
from .progress import Progress
from .rewind import rewind
from .tracking import make_trackers
from .types import Callback, TrainData, TrainResult, TrainState
from .validation import validate


def train(model: GenerativeModel, data: TrainData, cfg: TrainConfig, run_dir: str | Path, *,
          resume: bool = False, run_info: dict | None = None,
          callbacks: Sequence[Callback] = (), lock: RunLock | None = None,
          from_step: int | None = None) -> TrainResult:
    """Train ``model`` on ``data`` and write ``run_dir`` (metrics, samples, checkpoints).

    Args:
        model: any GenerativeModel (moved to the configured device in place).
        data: see :class:`TrainData`.
        cfg: budgets and optimiser settings; budgets are additional to a resumed run.
        run_dir: the run directory; locked for the duration of the call.
        resume: continue from ``checkpoints/latest`` (exactly: same weights, optimiser,
            RNG and data order as if never stopped). Without it the directory must not
            hold checkpoints yet.
        run_info: JSON-ready provenance stamped into every ``trainer.json``.
        callbacks: see :class:`Callback`; the model's own (``model.callbacks()``) and a
            sample-grid writer are added.
        lock: the lock on ``run_dir`` when the caller already holds it (a run start takes
            it before it writes anything); otherwise ``train`` takes it for the call.
        from_step: with ``resume``, go back to the checkpoint of this step first (e.g. the
            last one written before the loss left its normal range): ``latest`` moves back
            to it and the later checkpoints are set aside, not deleted (see
            :func:`~genvision.train.rewind.rewind`).

    Raises:
        UserError: bad budget/data, or a new run in a directory that holds one.
        RunLocked: another process trains in ``run_dir``.
        TrainingDiverged: a loss term or the gradient norm became NaN/inf.
    """
    run_dir = Path(run_dir)
    check_training(model, data, cfg)
    if from_step is not None and not resume:
        raise UserError("--from-step goes back to a checkpoint of a run",
                        "pass it with --resume RUN")

    def go_back() -> None:  # under the lock, before the checkpoint is read
        if from_step is not None and dist.is_main():
            print(rewind(run_dir, from_step), file=sys.stderr)

    with claimed_run_dir(run_dir, resume, held=lock, check=go_back):
        trackers = make_trackers(cfg, run_dir, resume, run_info or {})
        grids = SampleGrids(cfg.sample_every, cfg.seed,
                            listeners=[t.on_images for t in trackers])
        # the grid writer first: its final grid reaches the trackers before they close
        all_callbacks = [grids, *model.callbacks(), *trackers, *callbacks]
        return _Trainer(model, data, cfg, run_dir, resume, run_info or {}, all_callbacks).run()


def check_training(model: GenerativeModel, data: TrainData, cfg: TrainConfig) -> None:
    """The checks :func:`train` makes before it touches the run directory (budgets and
    options, data against the batch size and the model), so a caller can make them before
    it writes anything of its own.

    Raises:
        UserError: what :func:`train` would refuse.
    """
    dist.init()
    check_config(cfg)
    check_data(model, data, cfg, dist.get_world_size())


class _Trainer:
    """State of one :func:`train` call; split into methods so each does one job."""

    def __init__(self, model: GenerativeModel, data: TrainData, cfg: TrainConfig,
                 run_dir: Path, resume: bool, run_info: dict, callbacks: list[Callback]):
        self.model, self.data, self.cfg, self.run_dir = model, data, cfg, run_dir
        self.resume, self.run_info, self.callbacks = resume, run_info, callbacks
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.main = self.rank == 0
        self.device = resolve_device(cfg.device)
        model.to(self.device)
        if cfg.channels_last:  # 4-D weights only (convolutions); the values stay the same
            model.to(memory_format=torch.channels_last)
        self.stepper = Stepper(model, cfg, self.device, self.world)
        self.runner, self.ema = self.stepper.runner, self.stepper.ema
        self.data_gen = torch.Generator().manual_seed(derive_seed(cfg.seed, "data", self.rank))
        self.steps_per_epoch = len(data.x) // (cfg.batch_size * self.world)
        # position: optimiser steps done, epoch index, batches done in that epoch
        self.step = self.epoch_index = self.batch_in_epoch = 0
        self.images_seen, self.time_before = 0, 0.0
        self.log = MetricsLog(run_dir, self.main)
        self.last_train: dict[str, float] = {}
        self.last_val: dict[str, float] | None = None
        self.last_checkpoint: Path | None = None
        self.saved_step = self.evaluated_step = -1
        self._rate, self._perm_epoch = 0.0, -1
        self._rng_snapshot: dict[str, Tensor] | None = None
        self._schedule_before: dict | None = None  # set by a resume (trainer_state.restore)
        #: the minimised loss's normal range; the step of the last checkpoint written
        #: while the loss was in it (both restored on resume, so marks are exact)
        self.loss_range = LossRange()
        self.last_good_step: int | None = None

    def _refuse_links(self) -> None:
        """What the loop writes in place must not be a symbolic link: it would write the
        link's target (the ``.lock`` is checked where it is opened; on resume the loader
        refuses a linked ``checkpoints/`` with a CheckpointError of its own)."""
        names = (ckpt.METRICS, SAMPLES) if self.resume else (ckpt.METRICS, SAMPLES,
                                                              ckpt.CHECKPOINTS)
        for name in names:
            refuse_link(self.run_dir / name)

    # ----- main -----------------------------------------------------------------------------
    def run(self) -> TrainResult:
        if self.main:
            self._refuse_links()
        if self.resume:
            trainer_state.restore(self, ckpt.load_training_state(self.run_dir))
        else:
            torch.manual_seed(derive_seed(self.cfg.seed, "noise", self.rank))
            self.log.clear()
            # data-dependent set-up (e.g. clusters) where the data lives (CPU); resumes
            # restore what it set from the state dict
            if type(self.model).init_from_data is not GenerativeModel.init_from_data:
                # only a model that uses it: a streamed set's sample is 10,000 float images
                self.model.init_from_data(init_images(self.data.x))
        if self.world > 1:
            dist.broadcast_state(self.model)  # every rank starts from rank 0's weights
        self.budget = Budget(self.cfg, self.step, self.steps_per_epoch,
                             self._schedule_before)
        self.callbacks.append(BudgetWatch(self.budget, self.model))  # no budget, few steps...
        if self.resume and self.main and self.cfg.lr_schedule != "constant":
            print(self.budget.describe(), file=sys.stderr)
        self.t_start = time.monotonic()
        state = TrainState(self.step, self.epoch(), {}, self.model, self.runner.optimizers,
                           self.run_dir, self.rank, eval_mode=self._eval_weights)
        for cb in self.callbacks if self.main else ():
            cb.on_train_start(state)
        # a bar in a terminal or notebook, plain periodic lines elsewhere (nohup, CI)
        minutes = self.cfg.minutes
        bar = Progress(self.budget.start, self.budget.target,
                       None if minutes is None else minutes * 60, self.cfg.progress and self.main)
        try:
            with deferred_sigint() as sigint:
                self._loop(state, sigint, bar)
            bar.close()
            # Outside the deferred-SIGINT block: Ctrl-C during a slow final sample grid
            # acts at once (the final checkpoint is written before it).
            return self._finish()
        except KeyboardInterrupt:
            self._save_on_interrupt()
            raise
        finally:
            bar.close()

    def _loop(self, state: TrainState, sigint: dict[str, bool], bar: Progress) -> None:
        while self.step < self.budget.target:
            terms = self._train_one(state)
            self._after_step(terms)
            state.step, state.epoch, state.terms = self.step, self.epoch(), terms
            for cb in self.callbacks:
                cb.on_step_end(state)
            self._drain_warnings(state)
            bar.update(self.step, terms.get("loss", math.nan), self.log.rate() or self._rate)
            # Under torchrun the ranks agree on the slowest rank's clock: the next step's
            # learning rate follows it (--minutes with a schedule), and every replica must
            # take the same optimiser step.
            elapsed, stop, interrupted = dist.all_max([
                time.monotonic() - self.t_start, float(state.should_stop),
                float(sigint["set"])])
            self.budget.elapsed = elapsed
            if self.budget.out_of_time():
                stop = 1.0
            if interrupted:
                raise KeyboardInterrupt
            if stop:
                break

    def epoch(self) -> float:
        return self.epoch_index + self.batch_in_epoch / self.steps_per_epoch

    def elapsed(self) -> float:
        return self.time_before + time.monotonic() - self.t_start

    # ----- one step -------------------------------------------------------------------------
    def _next_batch(self) -> tuple[Tensor, Tensor | None]:
        if self.batch_in_epoch >= self.steps_per_epoch:
            self.epoch_index, self.batch_in_epoch = self.epoch_index + 1, 0
        if self._perm_epoch != self.epoch_index:
            # Same permutation on every rank; depends only on (seed, epoch), so a resumed
            # run sees the same order without storing it.
            gen = torch.Generator().manual_seed(derive_seed(self.cfg.seed, "perm",
                                                            self.epoch_index))
            self._perm = torch.randperm(len(self.data.x), generator=gen)
            self._perm_epoch = self.epoch_index
        b = self.cfg.batch_size
        start = (self.batch_in_epoch * self.world + self.rank) * b  # rank r: r-th slice
        idx = self._perm[start:start + b]
        x = self.data.x[idx]
        if self.data.transform is not None:
            x = self.data.transform(x, self.data_gen)
        y = None if self.data.y is None else to_device(self.data.y[idx], self.device)
        return to_device(x, self.device, channels_last=self.cfg.channels_last), y

    def _train_one(self, state: TrainState) -> dict[str, float]:
        # RNG states at the step's start: a raw KeyboardInterrupt mid-step saves these.
        self._rng_snapshot = trainer_state.rng_states(self.device, self.data_gen)
        t0 = time.perf_counter()
        x, y = self._next_batch()
        self.runner.set_lr_factor(self.budget.lr_factor(self.step))
        terms = self.stepper.step(x, y, self.step, self._diverged)
        state.batch = (x, y)
        self._step_seconds = time.perf_counter() - t0
        return terms

    def _diverged(self, what: str, at_step: int | None = None) -> NoReturn:
        last = ckpt.latest_checkpoint(self.run_dir) if self.main else None
        kept = (f"the last good checkpoint {last.name} was kept" if last is not None
                else "no checkpoint had been written yet")
        step = self.step + 1 if at_step is None else at_step
        problem = (f"training diverged at step {step}: {what} became NaN or infinite; "
                   f"nothing was saved after it and {kept}")
        fix = (self.model.divergence_fix() or
               f"lower --lr (now {self.cfg.lr:g}) or set --grad-clip (e.g. 1.0), then "
               "--resume or start again")
        good = self._good_checkpoint_note()
        if good is not None:
            problem, fix = f"{problem}; {good[0]}", f"{good[1]}; {fix}"
        raise TrainingDiverged(problem, fix)

    def _good_checkpoint_note(self) -> tuple[str, str] | None:
        """(what, fix) naming the last checkpoint written while the loss was in its normal
        range and the command that goes back to it; None when there is none."""
        good = self.last_good_step
        if good is None or not self.main or not (
                self.run_dir / ckpt.CHECKPOINTS / ckpt.step_dir_name(good)).is_dir():
            return None
        left = self.loss_range.left_at
        what = (f"the loss left its normal range at step {left} and the last checkpoint "
                f"written in range is step {good}" if left is not None and left > good
                else f"the last checkpoint written with the loss in its normal range is "
                f"step {good}")
        return what, f"go back to step {good} with a lower learning rate: {self._back_to(good)}"

    def _lr_of(self, step: int) -> float:
        """The --lr checkpoint ``step`` was trained with (a resume may have raised it
        since); the current one when its trainer.json cannot say."""
        path = self.run_dir / ckpt.CHECKPOINTS / ckpt.step_dir_name(step) / ckpt.TRAINER_JSON
        try:
            lr = float(json.loads(path.read_text(encoding="utf-8"))["train_config"]["lr"])
        except (OSError, ValueError, KeyError, TypeError):
            return self.cfg.lr
        return lr if math.isfinite(lr) and lr > 0 else self.cfg.lr

    def _back_to(self, step: int) -> str:
        """The command that resumes this run from checkpoint ``step`` more gently: a lower
        --lr when the phases' rates follow it, else gradient clipping (a GAN's own rates
        are model options, fixed for the run)."""
        lrs = [lr for rates in self.runner.base_lrs.values() for lr in rates]
        if all(lr == self.cfg.lr for lr in lrs):
            gentler = f"--lr {min(self.cfg.lr, self._lr_of(step)) / 10:g}"
        else:
            gentler = f"--grad-clip {min(self.cfg.grad_clip or 10.0, 10.0) / 10:g}"
        if self.run_info.get("model") and not self.run_info.get("task"):
            run = shlex.quote(str(self.run_dir))
            return f"`genvision train --resume {run} --from-step {step} {gentler}`"
        return (f"resume {self.run_dir} with from_step={step} and {gentler.replace('--', '')} "
                "(genvision.train.train)")

    def _after_step(self, terms: dict[str, float]) -> None:
        self.step += 1
        self.batch_in_epoch += 1
        images = self.cfg.batch_size * self.world
        self.images_seen += images
        self.log.add(terms, images, self._step_seconds)
        self._rng_snapshot = None  # the step is complete: current RNG state is consistent
        self._watch_loss()
        if self.step % self.cfg.log_every == 0:
            self._log_train(reset=True)
        if self.cfg.eval_every and self.step % self.cfg.eval_every == 0:
            self._evaluate()
        if self.step % self.cfg.checkpoint_every == 0:
            self._checkpoint()

    def _watch_loss(self) -> None:
        """Follow the minimised loss's normal range; say once when the loss leaves it."""
        was_out = self.loss_range.left_at is not None
        self.loss_range.observe(self.runner.last_losses, self.step)
        if was_out or self.loss_range.left_at is None or not self.main:
            return
        good = (f"checkpoint step {self.last_good_step} (written in range) is kept"
                if self.last_good_step is not None else "no checkpoint was written in range")
        message = (f"the loss left its normal range at step {self.loss_range.left_at}: "
                   f"{self.loss_range.describe()}; {good}")
        self.log.write({"step": self.step, "epoch": self.epoch(), "time_s": self.elapsed(),
                        "split": "warning", "warning": message})
        tqdm.write(f"warning at step {self.step}: {message}", file=sys.stderr)

    # ----- logging, eval --------------------------------------------------------------------
    def _drain_warnings(self, state: TrainState) -> None:
        """Write the callbacks' new warnings (e.g. a GAN's collapse) as log lines."""
        messages, state.warnings = state.warnings, []
        for message in messages if self.main else ():
            self.log.write({"step": self.step, "epoch": self.epoch(),
                            "time_s": self.elapsed(), "split": "warning",
                            "warning": str(message)})
            tqdm.write(f"warning at step {self.step}: {message}", file=sys.stderr)

    def _line(self, split: str, rate: float, terms: dict[str, float]) -> dict:
        lr = next(iter(self.runner.optimizers.values())).param_groups[0]["lr"]
        return {"step": self.step, "epoch": self.epoch(), "time_s": self.elapsed(),
                "split": split, "images_per_s": rate, "lr": lr, **terms}

    def _log_train(self, reset: bool) -> None:
        if self.log.window["steps"] == 0:
            return
        self.last_train, self._rate = self.log.means(), self.log.rate()
        line = self._line("train", self._rate, self.last_train)
        if reset:
            self.log.window = self.log.empty_window()
        self.log.write(line)
        for cb in self.callbacks if self.main else ():
            cb.on_log(self.step, line)

    @contextmanager
    def _eval_weights(self, seed: int) -> Iterator[None]:
        """Eval mode, no grad, EMA weights, and a private RNG stream: evaluation and sampling
        never consume the training RNG, so they cannot change what training does next."""
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        swap = self.ema.swapped(self.model) if self.ema is not None else nullcontext()
        with torch.random.fork_rng(devices=devices), torch.no_grad(), swap:
            torch.manual_seed(seed)
            self.model.eval()
            try:
                yield
            finally:
                self.model.train()

    def _evaluate(self) -> None:
        if self.data.val_x is None or not self.main:
            return
        with self._eval_weights(derive_seed(self.cfg.seed, "val")):
            self.last_val, rate = validate(self.model, self.data.val_x, self.data.val_y,
                                           self.cfg.batch_size, self.runner.autocast)
        self.evaluated_step = self.step
        line = self._line("val", rate, self.last_val)
        self.log.write(line)
        for cb in self.callbacks:
            cb.on_eval(self.step, line)

    # ----- checkpoints ----------------------------------------------------------------------
    def protected_checkpoint(self) -> str | None:
        """The checkpoint pruning must keep besides the newest ones: the last one written
        in range while the loss is out of it now (None: nothing extra)."""
        if self.loss_range.in_range() is False and self.last_good_step is not None:
            return ckpt.step_dir_name(self.last_good_step)
        return None

    def good_step_after_save(self) -> int | None:
        """The last checkpoint written in range once this step's is written."""
        return self.step if self.loss_range.in_range() else self.last_good_step

    def _checkpoint(self, rng: dict[str, Tensor] | None = None) -> None:
        if self.saved_step == self.step:
            return
        path = trainer_state.save(self, rng)  # refused (diverged) with non-finite weights
        self.last_good_step = self.good_step_after_save()
        if path is not None:
            self.last_checkpoint = path
            for cb in self.callbacks:
                cb.on_checkpoint(self.step, path)
        self.saved_step = self.step

    def _save_on_interrupt(self) -> None:
        """Ctrl-C: keep the work done so far. Under torchrun only a coordinated (flagged)
        interrupt saves, because saving gathers RNG states from every rank."""
        if self.world > 1 and self._rng_snapshot is not None:
            return
        if self.main:
            print(f"\ninterrupted: saving checkpoint at step {self.step}", file=sys.stderr)
        self._checkpoint(self._rng_snapshot)  # mid-step: the states from before that step

    def _say_if_out_of_range(self) -> None:
        """A run that ends with its loss out of range (finite but blown up) says so, with
        the way back to its last checkpoint in range."""
        if self.loss_range.in_range() is not False or not self.main:
            return
        good = self._good_checkpoint_note()
        line = (f"warning: the loss left its normal range at step {self.loss_range.left_at} "
                f"and is still out of it ({self.loss_range.describe()}): the checkpoint of "
                f"step {self.step} may hold blown-up weights; ")
        line += (f"{good[1]}" if good is not None
                 else "no checkpoint was written in range: start again with a lower "
                 "learning rate")
        print(line, file=sys.stderr)

    def _finish(self) -> TrainResult:
        if self.step % self.cfg.log_every:
            self._log_train(reset=False)  # the tail window; the checkpoint keeps it open
        self._checkpoint()  # first: the slow parts below must not put the work at risk
        self._say_if_out_of_range()
        if self.evaluated_step != self.step:
            self._evaluate()
        elapsed = time.monotonic() - self.t_start
        done = (self.step - self.budget.start) * self.cfg.batch_size * self.world
        result = TrainResult(
            step=self.step, epochs=self.epoch(), time_s=self.elapsed(),
            images_per_s=done / elapsed if elapsed > 0 else 0.0,
            train_metrics=dict(self.last_train), val_metrics=self.last_val,
            run_dir=self.run_dir, checkpoint=self.last_checkpoint)
        for cb in self.callbacks if self.main else ():
            cb.on_train_end(result)
        return result
