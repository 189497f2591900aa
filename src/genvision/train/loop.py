"""The one generic training loop (minGPT-trainer sized): every family trains through it.

The model owns its objective (``model.loss(x, y) -> {"loss": ..., <terms>}``); this loop
only does optimisation and bookkeeping: AdamW with optional linear warm-up, gradient
clipping, EMA, CUDA mixed precision, budgets, metrics, samples, checkpoints, exact
resume, a NaN guard, a run-directory lock and torchrun data parallelism. It never builds
datasets or computes metrics beyond the model's own loss terms.

Models with several optimisers (GANs) may define ``training_step((x, y), optimizers) ->
dict[str, Tensor]`` (they call backward/step themselves) and optionally
``configure_optimizers(cfg) -> dict[str, Optimizer]``; the loop then keeps its
bookkeeping and skips its own backward pass. Each optimiser keeps the learning rates it
was built with (the warm-up scales them). Under torchrun such a model runs without a DDP
wrapper: every rank starts from rank 0's weights, each optimiser's ``step()`` first
averages its gradients over the ranks (models that clip call ``sync_grads()`` before
clipping), and buffers follow rank 0 after every step, so the replicas stay identical.
Optional model hooks: ``owns_ema = True`` (the model averages its own weights; the loop
keeps no EMA), ``training_warnings() -> list[str]`` (drained after every step, written to
metrics.jsonl as ``split: "warning"`` lines) and ``divergence_fix() -> str`` (the fix
named when a NaN stops the run).

Budgets (``cfg.steps`` / ``cfg.epochs`` / ``cfg.minutes``) are *additional* work from where
the run stands: resuming the checkpoint at step 13 with ``steps=7`` stops at step 20; with
``epochs=1`` it trains one more epoch's worth of steps (ending mid-epoch when it started
mid-epoch); with ``minutes=2`` two more minutes. Several budgets: the first reached wins.
None given: one epoch.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .. import config as cfg_io
from ..errors import TrainingDiverged, UserError
from ..models.base import GenerativeModel
from ..report.images import save_grid
from . import checkpoint as ckpt
from . import distributed as dist
from .config import TrainConfig
from .device import resolve_device
from .ema import EMA
from .helpers import (
    LossForward,
    check_config,
    check_data,
    check_run_dir,
    deferred_sigint,
    derive_seed,
    grad_norm,
    schedule_factor,
)
from .lock import RunLock
from .types import Callback, TrainData, TrainResult, TrainState

SAMPLES = "samples"
NUM_SAMPLES = 64  # images in each sample grid


def train(model: GenerativeModel, data: TrainData, cfg: TrainConfig, run_dir: str | Path, *,
          resume: bool = False, run_info: dict | None = None,
          callbacks: Sequence[Callback] = ()) -> TrainResult:
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
        callbacks: see :class:`Callback`.

    Raises:
        UserError: bad budget/data, or a new run in a directory that holds one.
        RunLocked: another process trains in ``run_dir``.
        TrainingDiverged: a loss term or the gradient norm became NaN/inf.
    """
    dist.init()
    run_dir = Path(run_dir)
    check_config(cfg)
    check_data(model, data, cfg, dist.get_world_size())
    lock = RunLock(run_dir) if dist.is_main() else None
    error: BaseException | None = None
    try:
        if lock is not None:
            lock.acquire()
        check_run_dir(run_dir, resume)
    except BaseException as exc:  # re-raised below, once all ranks know to stop
        error = exc
    if not dist.agree(error is None):
        if lock is not None:
            lock.release()
        raise error or UserError("another rank could not start training", "see rank 0's error")
    try:
        return _Trainer(model, data, cfg, run_dir, resume, run_info or {}, callbacks).run()
    finally:
        if lock is not None:
            lock.release()


class _Trainer:
    """State of one :func:`train` call; split into methods so each does one job."""

    def __init__(self, model: GenerativeModel, data: TrainData, cfg: TrainConfig,
                 run_dir: Path, resume: bool, run_info: dict, callbacks: Sequence[Callback]):
        self.model, self.data, self.cfg, self.run_dir = model, data, cfg, run_dir
        self.resume, self.run_info, self.callbacks = resume, run_info, list(callbacks)
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.main = self.rank == 0
        self.device = resolve_device(cfg.device)
        model.to(self.device)
        self.custom_step = callable(getattr(model, "training_step", None))
        self.optimizers = self._make_optimizers()
        # learning rate of every param group before warm-up (what _lr_factor scales)
        self._base_lrs = {name: [cfg.lr if name == "model" and not self._own_optimizers()
                                 else g["lr"] for g in opt.param_groups]
                          for name, opt in self.optimizers.items()}
        own_ema = getattr(model, "owns_ema", False)
        self.ema = EMA(model, cfg.ema_decay) if cfg.ema_decay > 0 and not own_ema else None
        self._setup_amp()
        self.data_gen = torch.Generator().manual_seed(derive_seed(cfg.seed, "data", self.rank))
        self.steps_per_epoch = len(data.x) // (cfg.batch_size * self.world)
        # position: optimiser steps done, epoch index, batches done in that epoch
        self.step = self.epoch_index = self.batch_in_epoch = 0
        self.images_seen, self.time_before = 0, 0.0
        self.window = self._empty_window()
        self.last_train: dict[str, float] = {}
        self._rate = 0.0  # images/s of the last logged window (progress bar)
        self.last_val: dict[str, float] | None = None
        self.last_checkpoint: Path | None = None
        self.saved_step = self.evaluated_step = -1

    # ----- setup ----------------------------------------------------------------------------
    def _own_optimizers(self) -> bool:
        return callable(getattr(self.model, "configure_optimizers", None))

    def _make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        cfg, model = self.cfg, self.model
        if self._own_optimizers():
            return dict(model.configure_optimizers(cfg))
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                                weight_decay=cfg.weight_decay)
        return {"model": opt}

    def _setup_amp(self) -> None:
        cuda_amp = self.device.type == "cuda" and self.cfg.amp
        dtype = torch.bfloat16 if cuda_amp and torch.cuda.is_bf16_supported() else torch.float16
        self.autocast: Callable[[], AbstractContextManager] = (
            (lambda: torch.autocast("cuda", dtype=dtype)) if cuda_amp else nullcontext)
        # float16 needs loss scaling; bfloat16 has float32's range and does not.
        use_scaler = cuda_amp and dtype == torch.float16 and not self.custom_step
        self.scaler = torch.amp.GradScaler("cuda") if use_scaler else None

    def _seed_fresh(self) -> None:
        torch.manual_seed(derive_seed(self.cfg.seed, "noise", self.rank))
        if self.main:
            (self.run_dir / ckpt.METRICS).write_text("")  # debris of a run that never saved

    def _empty_window(self) -> dict[str, Any]:
        return {"steps": 0, "images": 0, "seconds": 0.0, "sums": {}}

    # ----- main -----------------------------------------------------------------------------
    def run(self) -> TrainResult:
        if self.resume:
            self._restore(ckpt.load_training_state(self.run_dir))
        else:
            self._seed_fresh()
            init = getattr(self.model, "init_from_data", None)
            if callable(init):  # data-dependent set-up (e.g. clusters); resumes restore it
                init(self.data.x)  # where the data lives (CPU): no copy of it to the device
        self.net: nn.Module = self.model
        self.step_optimizers: dict[str, Any] = self.optimizers
        if self.world > 1 and self.custom_step:
            dist.broadcast_state(self.model)  # every rank starts from rank 0's weights
            self.step_optimizers = {k: dist.GradSyncOptimizer(o)
                                    for k, o in self.optimizers.items()}
        elif self.world > 1:
            self.net = torch.nn.parallel.DistributedDataParallel(
                LossForward(self.model),
                device_ids=[self.device.index] if self.device.type == "cuda" else None)
        start_step, target = self.step, self._target_step()
        self._start_step, self._target = start_step, target
        self.t_start, self._agreed_elapsed = time.monotonic(), 0.0
        state = TrainState(self.step, self._epoch(), {}, self.model, self.optimizers,
                           self.run_dir, self.rank)
        if self.main:
            for cb in self.callbacks:
                cb.on_train_start(state)
        bar = tqdm(total=None if math.isinf(target) else target, initial=start_step,
                   disable=not (self.cfg.progress and self.main and sys.stderr.isatty()),
                   unit="step", dynamic_ncols=True)
        try:
            with deferred_sigint() as sigint:
                self._loop(target, state, sigint, bar)
            bar.close()
            # Outside the deferred-SIGINT block: Ctrl-C during a slow final sample grid
            # acts at once (the final checkpoint is written before it).
            return self._finish(start_step)
        except KeyboardInterrupt:
            self._save_on_interrupt()
            raise
        finally:
            bar.close()

    def _loop(self, target: float, state: TrainState, sigint: dict[str, bool], bar: tqdm) -> None:
        self._rng_snapshot: dict[str, Tensor] | None = None
        while self.step < target:
            terms = self._train_one()
            self._after_step(terms)
            state.step, state.epoch, state.terms = self.step, self._epoch(), terms
            for cb in self.callbacks:
                cb.on_step_end(state)
            bar.update(1)
            if self.step % 10 == 0 or self.step == target:
                rate = self._window_rate() or self._rate
                bar.set_postfix(loss=f"{terms['loss']:.4g}", img_s=f"{rate:.0f}")
            # Under torchrun the ranks agree on the slowest rank's clock: the next step's
            # learning rate follows it (--minutes with a schedule), and every replica must
            # take the same optimiser step.
            elapsed, stop, interrupted = dist.all_max([
                time.monotonic() - self.t_start, float(state.should_stop),
                float(sigint["set"])])
            self._agreed_elapsed = elapsed
            if self.cfg.minutes is not None and elapsed >= self.cfg.minutes * 60:
                stop = 1.0
            if interrupted:
                raise KeyboardInterrupt
            if stop:
                break

    def _target_step(self) -> float:
        cfg = self.cfg
        budgets = []
        if cfg.steps is not None:
            budgets.append(cfg.steps)
        if cfg.epochs is not None:
            budgets.append(max(1, math.ceil(cfg.epochs * self.steps_per_epoch - 1e-9)))
        if not budgets and cfg.minutes is None:
            budgets.append(self.steps_per_epoch)  # documented default: one epoch
        return self.step + min(budgets) if budgets else math.inf

    def _epoch(self) -> float:
        return self.epoch_index + self.batch_in_epoch / self.steps_per_epoch

    def _elapsed(self) -> float:
        return self.time_before + time.monotonic() - self.t_start

    # ----- one step -------------------------------------------------------------------------
    def _next_batch(self) -> tuple[Tensor, Tensor | None]:
        if self.batch_in_epoch >= self.steps_per_epoch:
            self.epoch_index, self.batch_in_epoch = self.epoch_index + 1, 0
        if getattr(self, "_perm_epoch", None) != self.epoch_index:
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
        y = None if self.data.y is None else self.data.y[idx].to(self.device)
        return x.to(self.device, non_blocking=True), y

    def _lr_factor(self) -> float:
        warm = self.cfg.warmup_steps
        factor = min(1.0, (self.step + 1) / warm) if warm > 0 else 1.0
        return factor * schedule_factor(self.cfg.lr_schedule, self._budget_progress())

    def _budget_progress(self) -> float:
        """Share of this call's budget used before the current step, in [0, 1].

        With several budgets the one that ends first counts. A schedule spans one call:
        ``--resume`` with a new budget starts a new decay from the base learning rate.
        """
        done = []
        if not math.isinf(self._target):
            done.append((self.step - self._start_step) / max(1.0, self._target - self._start_step))
        if self.cfg.minutes is not None:
            # the clock as of the last step's end, agreed by every rank (see _loop)
            done.append(self._agreed_elapsed / (self.cfg.minutes * 60))
        return max(done, default=0.0)

    def _train_one(self) -> dict[str, float]:
        # RNG states at the step's start: a raw KeyboardInterrupt mid-step saves these.
        self._rng_snapshot = self._rng_states()
        t0 = time.perf_counter()
        x, y = self._next_batch()
        factor = self._lr_factor()
        for name, opt in self.optimizers.items():
            for group, base in zip(opt.param_groups, self._base_lrs[name], strict=True):
                group["lr"] = base * factor
        self.model.step = self.step
        self.net.train()
        if self.custom_step:
            out = self.model.training_step((x, y), self.step_optimizers)
            if self.world > 1:
                dist.broadcast_state(self.model, buffers_only=True)  # e.g. BatchNorm stats
            terms = self._check_terms(out)
        else:
            terms = self._backward_and_step(x, y)
        self._step_seconds = time.perf_counter() - t0
        return terms

    def _backward_and_step(self, x: Tensor, y: Tensor | None) -> dict[str, float]:
        # One loss; usually one AdamW, but configure_optimizers may split the parameters
        # over several (e.g. different learning rates): each gets the same treatment.
        opts = list(self.optimizers.values())
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        with self.autocast():
            out = self.net(x, y) if self.world > 1 else self.model.loss(x, y)
        if "loss" not in out:
            raise UserError(f"{self.model.name}.loss() returned no 'loss' key",
                            "return {'loss': total, ...} from loss()")
        terms = self._check_terms(out)
        loss = out["loss"]
        (self.scaler.scale(loss) if self.scaler else loss).backward()
        if self.scaler:
            for opt in opts:
                self.scaler.unscale_(opt)
        params = [p for opt in opts for g in opt.param_groups for p in g["params"]
                  if p.grad is not None]
        norm = grad_norm(params, self.cfg.grad_clip)
        if self.scaler:  # inf grads are how GradScaler finds its scale: it skips the step
            for opt in opts:
                self.scaler.step(opt)
            self.scaler.update()
        else:
            if not math.isfinite(norm):
                self._diverged("the gradient norm")
            for opt in opts:
                opt.step()
        return terms

    def _check_terms(self, out: dict[str, Tensor]) -> dict[str, float]:
        names = list(out)
        values = torch.stack([out[k].detach().float().mean() for k in names]).cpu()
        bad = [0.0 if math.isfinite(v) else 1.0 for v in values.tolist()]
        bad = dist.all_max(bad) if self.world > 1 else bad  # all ranks stop together
        for name, flag in zip(names, bad, strict=True):
            if flag:
                self._diverged(f"loss term {name!r}")
        return dict(zip(names, values.tolist(), strict=True))

    def _diverged(self, what: str) -> None:
        last = ckpt.latest_checkpoint(self.run_dir) if self.main else None
        kept = (f"the last good checkpoint {last.name} was kept" if last is not None
                else "no checkpoint had been written yet")
        hint = getattr(self.model, "divergence_fix", None)
        raise TrainingDiverged(
            f"training diverged at step {self.step + 1}: {what} became NaN or infinite; "
            f"nothing was saved after it and {kept}",
            hint() if callable(hint) else
            f"lower --lr (now {self.cfg.lr:g}) or set --grad-clip (e.g. 1.0), then --resume "
            "or start again")

    def _after_step(self, terms: dict[str, float]) -> None:
        if self.ema is not None:
            self.ema.update(self.model, self.step + 1)
        self.step += 1
        self.batch_in_epoch += 1
        self.images_seen += self.cfg.batch_size * self.world
        w = self.window
        w["steps"] += 1
        w["images"] += self.cfg.batch_size * self.world
        w["seconds"] += self._step_seconds
        for k, v in terms.items():
            w["sums"][k] = w["sums"].get(k, 0.0) + v
        self._rng_snapshot = None  # the step is complete: current RNG state is consistent
        self._model_warnings()
        if self.step % self.cfg.log_every == 0:
            self._log_train(reset=True)
        if self.cfg.eval_every and self.step % self.cfg.eval_every == 0:
            self._evaluate()
        if self.cfg.sample_every and self.step % self.cfg.sample_every == 0:
            self._sample()
        if self.step % self.cfg.checkpoint_every == 0:
            self._checkpoint()

    # ----- logging, eval, samples -----------------------------------------------------------
    def _model_warnings(self) -> None:
        """Write the model's new training warnings (e.g. a GAN's collapse) as log lines."""
        hook = getattr(self.model, "training_warnings", None)
        messages = hook() if callable(hook) else []
        if not messages or not self.main:
            return
        for message in messages:
            self._write_line({"step": self.step, "epoch": self._epoch(),
                              "time_s": self._elapsed(), "split": "warning",
                              "warning": str(message)})
            tqdm.write(f"warning at step {self.step}: {message}", file=sys.stderr)

    def _window_rate(self) -> float:
        w = self.window
        return w["images"] / w["seconds"] if w["seconds"] > 0 else 0.0

    def _line(self, split: str, rate: float, terms: dict[str, float]) -> dict[str, Any]:
        return {"step": self.step, "epoch": self._epoch(), "time_s": self._elapsed(),
                "split": split, "images_per_s": rate, "lr": self._lr_used(), **terms}

    def _lr_used(self) -> float:
        return self.optimizers[next(iter(self.optimizers))].param_groups[0]["lr"]

    def _log_train(self, reset: bool) -> None:
        w = self.window
        if w["steps"] == 0:
            return
        terms = {k: v / w["steps"] for k, v in w["sums"].items()}
        self._rate = self._window_rate()
        line = self._line("train", self._rate, terms)
        self.last_train = terms
        if reset:
            self.window = self._empty_window()
        self._write_line(line)
        if self.main:
            for cb in self.callbacks:
                cb.on_log(self.step, line)

    def _write_line(self, line: dict[str, Any]) -> None:
        if self.main:
            with open(self.run_dir / ckpt.METRICS, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(line) + "\n")

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
                self.net.train()

    def _evaluate(self) -> None:
        if self.data.val_x is None or not self.main:
            return
        vx, vy, b = self.data.val_x, self.data.val_y, self.cfg.batch_size
        sums: dict[str, float] = {}
        t0 = time.perf_counter()
        with self._eval_weights(derive_seed(self.cfg.seed, "val")):
            for i in range(0, len(vx), b):
                x = vx[i:i + b].to(self.device)
                y = None if vy is None else vy[i:i + b].to(self.device)
                with self.autocast():
                    out = self.model.loss(x, y)
                for k, v in out.items():
                    sums[k] = sums.get(k, 0.0) + float(v.float().mean()) * len(x)
        rate = len(vx) / max(time.perf_counter() - t0, 1e-9)
        self.last_val = {k: v / len(vx) for k, v in sums.items()}
        self.evaluated_step = self.step
        line = self._line("val", rate, self.last_val)
        self._write_line(line)
        for cb in self.callbacks:
            cb.on_eval(self.step, line)

    def _sample(self) -> None:
        if not self.main or NUM_SAMPLES <= 0:
            return
        k = self.model.config.num_classes
        y = torch.arange(NUM_SAMPLES, device=self.device) % k if k else None
        gen = torch.Generator(device=self.device).manual_seed(self.cfg.seed)
        try:
            with self._eval_weights(self.cfg.seed):
                images = self.model.sample(NUM_SAMPLES, y=y, generator=gen)
        except NotImplementedError:
            return  # a model without a sampler still trains
        save_grid(images, self.run_dir / SAMPLES / f"{ckpt.step_dir_name(self.step)}.png")

    # ----- checkpoints ----------------------------------------------------------------------
    def _rng_states(self) -> dict[str, Tensor]:
        states = {"cpu": torch.get_rng_state(), "data": self.data_gen.get_state()}
        if self.device.type == "cuda":
            states["cuda"] = torch.cuda.get_rng_state(self.device)
        return states

    def _trainer_tensors(self, rng: dict[str, Tensor]) -> dict[str, Tensor]:
        tensors = {f"model/{k}": v for k, v in self.model.state_dict().items()}
        if self.ema is not None:
            tensors.update({f"ema/{k}": v for k, v in self.ema.state_tensors().items()})
        for kind, state in rng.items():  # collective: every rank passes here
            for r, s in enumerate(dist.all_gather_bytes(state)):
                tensors[f"rng/{kind}/{r}"] = s
        return tensors

    def _trainer_meta(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        tensors: dict[str, Tensor] = {}
        optim_meta = {}
        for name, opt in self.optimizers.items():
            t, m = ckpt.flatten_optimizer(name, opt)
            tensors.update(t)
            optim_meta[name] = m
        meta = {
            "step": self.step, "epoch": self._epoch(), "epoch_index": self.epoch_index,
            "batch_in_epoch": self.batch_in_epoch, "images_seen": self.images_seen,
            "time_s": self._elapsed(), "world_size": self.world,
            "batch_size": self.cfg.batch_size, "model": self.model.name,
            "optimizers": optim_meta, "log_window": self.window,
            "scaler": self.scaler.state_dict() if self.scaler else None,
            "train_config": cfg_io.to_dict(self.cfg), "run_info": self.run_info,
        }
        return tensors, meta

    def _checkpoint(self, rng: dict[str, Tensor] | None = None) -> None:
        if self.saved_step == self.step:
            return
        tensors = self._trainer_tensors(rng or self._rng_states())
        if self.main:
            opt_tensors, meta = self._trainer_meta()
            tensors.update(opt_tensors)
            path = ckpt.save_checkpoint(self.run_dir, self.step, model=self.model,
                                        tensors=tensors, meta=meta,
                                        keep=self.cfg.keep_checkpoints, ema=self.ema)
            self.last_checkpoint = path
            for cb in self.callbacks:
                cb.on_checkpoint(self.step, path)
        self.saved_step = self.step

    def _save_on_interrupt(self) -> None:
        """Ctrl-C: keep the work done so far. Under torchrun only a coordinated (flagged)
        interrupt saves, because saving gathers RNG states from every rank."""
        if self.world > 1 and self._rng_snapshot is not None:
            return
        rng = self._rng_snapshot  # mid-step: the states from before the unfinished step
        if self.main:
            print(f"\ninterrupted: saving checkpoint at step {self.step}", file=sys.stderr)
        self._checkpoint(rng)

    def _restore(self, state: ckpt.TrainingState) -> None:
        meta = state.meta
        self.model.load_state_dict(state.prefixed("model/"), strict=True)
        if self.ema is not None:
            ema = state.prefixed("ema/")
            self.ema.load_state_tensors(ema if ema else state.prefixed("model/"))
        for name, opt in self.optimizers.items():
            if name in meta["optimizers"]:
                ckpt.restore_optimizer(name, opt, state.tensors, meta["optimizers"][name])
        if "model" in self.optimizers and not callable(
                getattr(self.model, "configure_optimizers", None)):
            for g in self.optimizers["model"].param_groups:  # a resume may change these
                g["betas"], g["weight_decay"] = (self.cfg.beta1, self.cfg.beta2), \
                    self.cfg.weight_decay
        if self.scaler is not None and meta.get("scaler"):
            self.scaler.load_state_dict(meta["scaler"])
        self.step, self.epoch_index = state.step, meta["epoch_index"]
        old_global = meta["batch_size"] * meta["world_size"]
        # Position in the epoch in images, so a different batch size / world size still
        # continues the same permutation (exact only when both are unchanged).
        self.batch_in_epoch = meta["batch_in_epoch"] * old_global // (
            self.cfg.batch_size * self.world)
        self.images_seen, self.time_before = meta["images_seen"], meta["time_s"]
        self.window = meta["log_window"]
        self.saved_step, self.last_checkpoint = self.step, state.path
        self._restore_rng(state)
        if self.main:
            ckpt.truncate_metrics(self.run_dir, self.step)

    def _restore_rng(self, state: ckpt.TrainingState) -> None:
        r = self.rank
        if f"rng/cpu/{r}" in state.tensors:
            torch.set_rng_state(state.tensors[f"rng/cpu/{r}"])
            self.data_gen.set_state(state.tensors[f"rng/data/{r}"])
        else:  # more ranks than the run had: a fresh, still deterministic stream
            torch.manual_seed(derive_seed(self.cfg.seed, "noise", r, state.step))
        if self.device.type == "cuda" and f"rng/cuda/{r}" in state.tensors:
            torch.cuda.set_rng_state(state.tensors[f"rng/cuda/{r}"], self.device)

    def _finish(self, start_step: int) -> TrainResult:
        if self.step % self.cfg.log_every:
            self._log_train(reset=False)  # the tail window; the checkpoint keeps it open
        self._checkpoint()  # first: the slow parts below must not put the work at risk
        if self.evaluated_step != self.step:
            self._evaluate()
        self._sample()
        elapsed = time.monotonic() - self.t_start
        done = (self.step - start_step) * self.cfg.batch_size * self.world
        result = TrainResult(
            step=self.step, epochs=self._epoch(), time_s=self._elapsed(),
            images_per_s=done / elapsed if elapsed > 0 else 0.0,
            train_metrics=dict(self.last_train), val_metrics=self.last_val,
            run_dir=self.run_dir, checkpoint=self.last_checkpoint)
        if self.main:
            for cb in self.callbacks:
                cb.on_train_end(result)
        return result
