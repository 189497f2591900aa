"""What a checkpoint holds besides the model: optimisers, EMA, RNG streams, position.

Split from the loop so the loop reads as control flow. ``tensors`` get the model's raw
weights (``model/...``), the loop's EMA (``ema/...``), every rank's RNG states
(``rng/KIND/RANK``) and the optimisers' state (``optim/NAME/...``); ``meta`` is JSON.

A resume checks the whole checkpoint before restoring any of it (:func:`check_state`): a
trainer.json with a missing key or a wrong type, or a trainer.safetensors whose tensors do
not fit the model, its optimisers or the run's RNG streams, is one
:class:`~genvision.errors.CheckpointError` naming the file, never a traceback or a silent
broadcast of a wrong-shaped tensor.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .. import dataclass_config as cfg_io
from ..errors import CheckpointError
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
                                ema=ema, protect=trainer.protected_checkpoint(),
                                resume_command=resume_command(trainer))


def resume_command(trainer: Any) -> str:
    """The command that continues ``trainer``'s run (a task stage's, or a model run's)."""
    info = trainer.run_info if isinstance(trainer.run_info, dict) else {}
    run_dir = Path(trainer.run_dir)
    if info.get("task") and info.get("stage"):
        return (f"genvision {info['task']} train --resume --out {run_dir.parent} "
                f"--method {info['stage']}")
    return f"genvision train --resume {run_dir}"


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
    RNG streams), drop the metrics lines written after it and the debris of a crash.

    Everything is checked first (:func:`check_state`), so a damaged checkpoint is one
    :class:`CheckpointError` naming its file and nothing in the run is changed.
    """
    check_state(trainer, state)
    meta = state.meta
    trainer.model.load_state_dict(state.prefixed("model/"), strict=True)
    if trainer.ema is not None:
        ema = state.prefixed("ema/")
        trainer.ema.load_state_tensors(ema if ema else state.prefixed("model/"))
    runner = trainer.runner
    for name, opt in runner.optimizers.items():
        if name in meta["optimizers"]:
            try:
                ckpt.restore_optimizer(name, opt, state.tensors, meta["optimizers"][name])
            except (ValueError, KeyError, TypeError, RuntimeError) as exc:
                raise CheckpointError(f"{state.path / ckpt.TRAINER_JSON}: the state of "
                                      f"optimiser {name} does not fit the model ({_gist(exc)})",
                                      ckpt.DAMAGED_FIX) from None
    runner.reset_hyperparameters()
    if runner.scaler is not None and meta.get("scaler"):
        try:
            runner.scaler.load_state_dict(meta["scaler"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CheckpointError(f"{state.path / ckpt.TRAINER_JSON}: its scaler state is "
                                  f"damaged ({_gist(exc)})", ckpt.DAMAGED_FIX) from None
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
    try:
        if r < state.meta["world_size"]:  # check_state made sure the run's ranks have one
            torch.set_rng_state(state.tensors[f"rng/cpu/{r}"])
            trainer.data_gen.set_state(state.tensors[f"rng/data/{r}"])
        else:  # more ranks than the run had: a fresh, still deterministic stream
            torch.manual_seed(derive_seed(trainer.cfg.seed, "noise", r, state.step))
        if trainer.device.type == "cuda" and f"rng/cuda/{r}" in state.tensors:
            torch.cuda.set_rng_state(state.tensors[f"rng/cuda/{r}"], trainer.device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{state.path / ckpt.TRAINER_TENSORS}: the random-number "
                              f"state of rank {r} is damaged ({_gist(exc)})",
                              ckpt.DAMAGED_FIX) from None


# ----- checking a checkpoint before anything is restored ------------------------------------
def check_state(trainer: Any, state: ckpt.TrainingState) -> None:
    """Refuse a checkpoint whose trainer.json misses a key or holds a wrong type, or whose
    trainer.safetensors does not fit the model (shapes, dtypes, missing tensors), with one
    :class:`CheckpointError` naming the file, before ``trainer`` or the run is touched.

    Raises:
        CheckpointError: what is damaged and where.
    """
    json_file, tensor_file = state.path / ckpt.TRAINER_JSON, state.path / ckpt.TRAINER_TENSORS
    problem = _meta_problem(state.meta) or _groups_problem(trainer.runner.optimizers, state)
    if problem:
        raise CheckpointError(f"{json_file} is damaged: {problem}", ckpt.DAMAGED_FIX)
    expected = {f"model/{k}": v for k, v in trainer.model.state_dict().items()}
    if trainer.ema is not None and state.prefixed("ema/"):
        expected.update({f"ema/{k}": v for k, v in trainer.ema.state_tensors().items()})
    problem = _tensors_problem(expected, state.tensors)
    if problem is None:
        problem = _optimizer_problem(trainer.runner.optimizers, state)
    for r in range(state.meta["world_size"]):
        for kind in ("cpu", "data"):
            t = state.tensors.get(f"rng/{kind}/{r}")
            if problem is None and (t is None or t.dtype != torch.uint8 or t.dim() != 1):
                problem = f"the {kind} random-number state of rank {r} is missing or damaged"
    if problem:
        raise CheckpointError(f"{tensor_file} does not fit this run's model: {problem}",
                              ckpt.DAMAGED_FIX)


def _is_int(v: Any, low: int = 0) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= low


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


#: trainer.json keys the loop reads, and what each must be
_META_CHECKS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "epoch_index": ("an integer >= 0", _is_int),
    "batch_in_epoch": ("an integer >= 0", _is_int),
    "images_seen": ("an integer >= 0", _is_int),
    "batch_size": ("an integer >= 1", lambda v: _is_int(v, 1)),
    "world_size": ("an integer >= 1", lambda v: _is_int(v, 1)),
    "time_s": ("a number >= 0", lambda v: _is_number(v) and v >= 0),
    "optimizers": ("a JSON object", lambda v: isinstance(v, dict)),
    "log_window": ("a JSON object of steps, images, seconds and sums",
                   lambda v: isinstance(v, dict) and _is_int(v.get("steps"))
                   and _is_int(v.get("images")) and _is_number(v.get("seconds"))
                   and isinstance(v.get("sums"), dict)
                   and all(isinstance(x, (int, float)) for x in v["sums"].values())),
}
#: optional keys (older checkpoints lack them): absent, null or of this kind
_OPTIONAL_CHECKS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "lr_schedule": ("a JSON object of numbers", lambda v: isinstance(v, dict) and all(
        x is None or isinstance(x, (int, float)) for x in v.values())),
    "scaler": ("a JSON object", lambda v: isinstance(v, dict)),
}


def _meta_problem(meta: dict[str, Any]) -> str | None:
    for key, (want, ok) in _META_CHECKS.items():
        if key not in meta:
            return f"it has no {key!r}"
        if not ok(meta[key]):
            return f"its {key!r} is not {want} (got {_short(meta[key])})"
    for key, (want, ok) in _OPTIONAL_CHECKS.items():
        if meta.get(key) is not None and not ok(meta[key]):
            return f"its {key!r} is not {want} (got {_short(meta[key])})"
    for name, opt in meta["optimizers"].items():
        if not (isinstance(opt, dict) and isinstance(opt.get("param_groups"), list)
                and all(isinstance(g, dict) for g in opt["param_groups"])
                and isinstance(opt.get("scalars"), dict)
                and all(isinstance(v, dict) and k.isdigit() for k, v in opt["scalars"].items())):
            return f"the state of optimiser {name!r} is not param_groups and scalars"
    return None


def _tensors_problem(expected: dict[str, Tensor], found: dict[str, Tensor]) -> str | None:
    """Missing tensors, or ones whose shape or kind (float/integer) differs from the
    model's: ``copy_`` would broadcast a [1] tensor over a whole weight without a word."""
    for key, want in expected.items():
        got = found.get(key)
        if got is None:
            return f"it has no tensor {key!r}"
        if got.shape != want.shape or got.is_floating_point() != want.is_floating_point():
            return (f"{key!r} is {_describe(got)} where the model has {_describe(want)}")
    return None


def _optimizer_problem(optimizers: dict[str, torch.optim.Optimizer],
                       state: ckpt.TrainingState) -> str | None:
    """Optimiser state tensors (exp_avg, ...) must have their parameter's shape (a scalar
    such as Adam's ``step`` excepted)."""
    for name, opt in optimizers.items():
        saved = state.meta["optimizers"].get(name)
        if saved is None:
            continue
        params = [p for g in opt.param_groups for p in g["params"]]
        prefix = f"optim/{name}/"
        for key, t in state.tensors.items():
            if not key.startswith(prefix):
                continue
            idx, _, sub = key[len(prefix):].partition("/")
            if not idx.isdigit() or int(idx) >= len(params):
                return f"{key!r} names no parameter of optimiser {name!r}"
            if t.dim() > 0 and t.shape != params[int(idx)].shape:
                return (f"{key!r} is {_describe(t)} where its parameter is "
                        f"{_describe(params[int(idx)])}")
    return None


def _groups_problem(optimizers: dict[str, torch.optim.Optimizer],
                    state: ckpt.TrainingState) -> str | None:
    """Saved param_groups must have the optimiser's group sizes and setting types."""
    for name, opt in optimizers.items():
        saved = state.meta["optimizers"].get(name)
        if saved is None:
            continue
        groups = saved["param_groups"]
        sizes = [len(g["params"]) if isinstance(g.get("params"), list) else -1 for g in groups]
        live_sizes = [len(g["params"]) for g in opt.param_groups]
        if sizes != live_sizes:
            return (f"optimiser {name!r} has parameter groups of sizes {sizes} where the "
                    f"model has {live_sizes}")
        for group, live in zip(groups, opt.param_groups, strict=True):
            for key, value in live.items():
                if key != "params" and key in group and not _same_kind(group[key], value):
                    return f"optimiser {name!r} setting {key!r} is {_short(group[key])}"
    return None


def _same_kind(saved: Any, live: Any) -> bool:
    """Whether a saved optimiser setting has the kind of the live one (JSON made tuples
    lists; None settings such as ``foreach`` may be anything JSON holds)."""
    if live is None or isinstance(live, bool):
        return live is None or isinstance(saved, bool)
    if isinstance(live, (int, float)):
        return _is_number(saved)
    if isinstance(live, (tuple, list)):
        return isinstance(saved, list) and len(saved) == len(live) and all(
            _same_kind(a, b) for a, b in zip(saved, live, strict=True))
    return not isinstance(live, str) or isinstance(saved, str)


def _describe(t: Tensor) -> str:
    return f"{list(t.shape)} {str(t.dtype).removeprefix('torch.')}"


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _gist(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:160]
