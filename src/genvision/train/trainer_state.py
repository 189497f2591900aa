"""What a checkpoint holds besides the model: optimisers, EMA, RNG streams, position.

Split from the loop so the loop reads as control flow. ``tensors`` get the model's raw
weights (``model/...``), the loop's EMA (``ema/...``), every rank's RNG states
(``rng/KIND/RANK``) and the optimisers' state (``optim/NAME/...``); ``meta`` is JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .. import dataclass_config as cfg_io
from . import checkpoint as ckpt
from . import distributed as dist
from .ema import EMA
from .helpers import derive_seed


def rng_states(device: torch.device, data_gen: torch.Generator) -> dict[str, Tensor]:
    states = {"cpu": torch.get_rng_state(), "data": data_gen.get_state()}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def trainer_tensors(trainer: Any, rng: dict[str, Tensor]) -> dict[str, Tensor]:
    """Model, EMA and RNG tensors; a collective (every rank must call it)."""
    tensors = {f"model/{k}": v for k, v in trainer.model.state_dict().items()}
    if trainer.ema is not None:
        tensors.update({f"ema/{k}": v for k, v in trainer.ema.state_tensors().items()})
    for kind, state in rng.items():
        for r, s in enumerate(dist.all_gather_bytes(state)):
            tensors[f"rng/{kind}/{r}"] = s
    return tensors


def trainer_meta(trainer: Any) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Optimiser tensors and the JSON position/config of the run (rank 0)."""
    tensors: dict[str, Tensor] = {}
    optim_meta = {}
    for name, opt in trainer.runner.optimizers.items():
        t, m = ckpt.flatten_optimizer(name, opt)
        tensors.update(t)
        optim_meta[name] = m
    scaler = trainer.runner.scaler
    meta = {
        "step": trainer.step, "epoch": trainer.epoch(), "epoch_index": trainer.epoch_index,
        "batch_in_epoch": trainer.batch_in_epoch, "images_seen": trainer.images_seen,
        "time_s": trainer.elapsed(), "world_size": trainer.world,
        "batch_size": trainer.cfg.batch_size, "model": trainer.model.name,
        "optimizers": optim_meta, "log_window": trainer.log.window,
        "lr_schedule": trainer.budget.state(),
        "scaler": scaler.state_dict() if scaler else None,
        "train_config": cfg_io.to_dict(trainer.cfg), "run_info": trainer.run_info,
        # the loss's normal range (see train.loss_range): whether this checkpoint was
        # written in it, the last one that was, and the statistics a resume continues
        "loss_in_range": trainer.loss_range.in_range(),
        "last_in_range_step": trainer.good_step_after_save(),
        "loss_range": trainer.loss_range.state(),
    }
    return tensors, meta


def save(trainer: Any, rng: dict[str, Tensor] | None = None) -> Path | None:
    """Write a checkpoint of ``trainer`` (a collective: every rank calls it; rank 0
    writes and returns the checkpoint directory, the others None). ``rng``: the RNG
    states to store (default: the current ones). A checkpoint is never written with a
    non-finite parameter, buffer or EMA weight (a blown-up BatchNorm variance leaves the
    losses finite): the run stops as diverged and the last good checkpoint stays."""
    bad = first_non_finite(trainer)
    if bad is not None:  # replicas are identical, so every rank stops here together
        trainer._diverged(bad, at_step=trainer.step)
    tensors = trainer_tensors(trainer, rng or rng_states(trainer.device, trainer.data_gen))
    if not trainer.main:
        return None
    opt_tensors, meta = trainer_meta(trainer)
    tensors.update(opt_tensors)
    # the loop's own EMA weights become model.safetensors; a model's shadow is in its state
    ema = trainer.ema if isinstance(trainer.ema, EMA) else None
    return ckpt.save_checkpoint(trainer.run_dir, trainer.step, model=trainer.model,
                                tensors=tensors, meta=meta, keep=trainer.cfg.keep_checkpoints,
                                ema=ema, protect=trainer.protected_checkpoint())


def first_non_finite(trainer: Any) -> str | None:
    """The first model tensor (parameter or buffer) or EMA weight holding NaN or inf,
    described for the divergence message; None when all are finite."""
    named = [("model", trainer.model.state_dict())]
    if trainer.ema is not None:
        named.append(("EMA", trainer.ema.state_tensors()))
    for what, tensors in named:
        for name, t in tensors.items():
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                return f"the {what} tensor {name!r}"
    return None


def restore(trainer: Any, state: ckpt.TrainingState) -> None:
    """Put a checkpoint's state back into ``trainer`` (model, EMA, optimisers, position,
    RNG streams), drop the metrics lines written after it and the debris of a crash."""
    meta = state.meta
    trainer.model.load_state_dict(state.prefixed("model/"), strict=True)
    if trainer.ema is not None:
        ema = state.prefixed("ema/")
        trainer.ema.load_state_tensors(ema if ema else state.prefixed("model/"))
    runner = trainer.runner
    for name, opt in runner.optimizers.items():
        if name in meta["optimizers"]:
            ckpt.restore_optimizer(name, opt, state.tensors, meta["optimizers"][name])
    runner.reset_hyperparameters()
    if runner.scaler is not None and meta.get("scaler"):
        runner.scaler.load_state_dict(meta["scaler"])
    trainer.step, trainer.epoch_index = state.step, meta["epoch_index"]
    old_global = meta["batch_size"] * meta["world_size"]
    # Position in the epoch in images, so a different batch size / world size still
    # continues the same permutation (exact only when both are unchanged).
    trainer.batch_in_epoch = meta["batch_in_epoch"] * old_global // (
        trainer.cfg.batch_size * trainer.world)
    trainer.images_seen, trainer.time_before = meta["images_seen"], meta["time_s"]
    trainer.log.window = meta["log_window"]
    # the interrupted call's schedule, which a resume with the rest of its budget continues
    trainer._schedule_before = meta.get("lr_schedule")
    trainer.loss_range.load_state(meta.get("loss_range"))  # absent in older checkpoints
    trainer.last_good_step = meta.get("last_in_range_step")
    trainer.saved_step, trainer.last_checkpoint = trainer.step, state.path
    _restore_rng(trainer, state)
    if trainer.main:
        ckpt.truncate_metrics(trainer.run_dir, trainer.step)
        ckpt.clean_debris(trainer.run_dir)  # what a kill left mid-save or mid-prune


def _restore_rng(trainer: Any, state: ckpt.TrainingState) -> None:
    r = trainer.rank
    if f"rng/cpu/{r}" in state.tensors:
        torch.set_rng_state(state.tensors[f"rng/cpu/{r}"])
        trainer.data_gen.set_state(state.tensors[f"rng/data/{r}"])
    else:  # more ranks than the run had: a fresh, still deterministic stream
        torch.manual_seed(derive_seed(trainer.cfg.seed, "noise", r, state.step))
    if trainer.device.type == "cuda" and f"rng/cuda/{r}" in state.tensors:
        torch.cuda.set_rng_state(state.tensors[f"rng/cuda/{r}"], trainer.device)
