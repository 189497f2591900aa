"""Training checkpoints: safetensors + JSON only, written atomically, resumable bit-exactly.

Layout of one checkpoint ``run_dir/checkpoints/step-00001234/``:

* ``config.json`` + ``model.safetensors``: written by ``model.save_pretrained`` with the
  weights used for sampling (EMA weights when EMA is on), so ``genvision.load(run_dir)``
  works on any checkpoint;
* ``trainer.safetensors``: every tensor needed to continue: ``model/<key>`` (raw weights
  and buffers), ``ema/<name>``, ``optim/<opt>/<param index>/<key>`` (e.g. AdamW
  ``exp_avg``, ``exp_avg_sq``, ``step``), ``rng/{cpu,cuda,data}/<rank>`` (uint8 states);
* ``trainer.json``: step, epoch, position in the epoch, time, images seen, the optimisers'
  non-tensor state (param_groups hyper-parameters), the log window and the TrainConfig.

A checkpoint is written into ``checkpoints/.tmp-step-.../``, renamed into place, and only
then does ``checkpoints/latest`` (a text file holding the directory name) move to it, so a
crash at any point leaves ``latest`` naming a complete checkpoint. Nothing is pickled.
Old checkpoints are pruned by renaming them to ``.trash-step-...`` first and deleting
after, so a kill mid-delete never leaves a half-deleted ``step-...`` directory; debris
(``.tmp-step-*``, ``.trash-*``, the ``.latest.*.tmp`` of an interrupted pointer update) is
removed at the next save and on resume. ``latest`` must name a real directory of
``checkpoints/`` itself (see :func:`genvision.storage.pointed_entry`); links are refused.
A write that fails (a full disk, a quota, a file-size limit, an I/O error) removes what it
wrote of the new checkpoint and raises one :class:`CheckpointError` naming it, the step
kept and the command that resumes; ``latest`` still names the previous checkpoint.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..errors import CheckpointError
from ..storage import (
    atomic_write_json,
    atomic_write_text,
    load_tensors,
    pointed_entry,
    read_json,
    refuse_link,
    save_tensors,
)

CHECKPOINTS = "checkpoints"
LATEST = "latest"
TRAINER_TENSORS = "trainer.safetensors"
TRAINER_JSON = "trainer.json"
METRICS = "metrics.jsonl"
FORMAT = "genvision-trainer/1"
_STEP_DIR = re.compile(r"^step-(\d{8,})$")
#: what a crash or kill can leave in checkpoints/ (only the locked writer makes these)
_DEBRIS = (".tmp-step-*", ".trash-*", f".{LATEST}.*.tmp")
#: the fix of a damaged checkpoint file
DAMAGED_FIX = ("restore the checkpoint from a backup, or write the name of an older "
               "checkpoint directory into checkpoints/latest and resume from it")


def step_dir_name(step: int) -> str:
    return f"step-{step:08d}"


def list_checkpoints(run_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """Complete checkpoint directories of a run as (step, path), oldest first."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir()
             if not p.is_symlink() and p.is_dir() and (m := _STEP_DIR.match(p.name))]
    return sorted(found)


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The checkpoint ``checkpoints/latest`` names, or None when the run has none yet.

    Raises:
        CheckpointError: ``latest`` names something outside ``checkpoints/`` (``../``, an
            absolute path), a link, or a missing or incomplete checkpoint.
    """
    latest = Path(run_dir) / CHECKPOINTS / LATEST
    if not (latest.is_file() or latest.is_symlink()):
        return None
    target = pointed_entry(latest)
    if not (target / TRAINER_JSON).is_file():
        raise CheckpointError(f"{latest} points to a missing or incomplete checkpoint "
                              f"{target.name}", "restore the checkpoint or start a new run")
    return target


def has_run(run_dir: str | os.PathLike) -> bool:
    """True when ``run_dir`` already holds a checkpoint (a new run there would clobber it)."""
    return (Path(run_dir) / CHECKPOINTS / LATEST).exists() or bool(list_checkpoints(run_dir))


# ----- optimiser state <-> tensors + JSON ------------------------------------------------
def flatten_optimizer(name: str, opt: torch.optim.Optimizer
                      ) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Split ``opt.state_dict()`` into safetensors-ready tensors and JSON-ready metadata.

    Tensors go to ``optim/<name>/<param index>/<key>``; everything else (param_groups
    hyper-parameters, non-tensor per-parameter state) to the returned dict.
    """
    sd = opt.state_dict()
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            if isinstance(value, Tensor):
                tensors[f"optim/{name}/{idx}/{key}"] = value.detach().clone()
            else:
                scalars.setdefault(str(idx), {})[key] = value
    meta = {"param_groups": sd["param_groups"], "scalars": scalars}
    try:
        meta = json.loads(json.dumps(meta))  # tuples -> lists; fails loudly on odd objects
    except TypeError as exc:
        raise CheckpointError(f"optimiser {name} state is not JSON-serialisable ({exc})",
                              "use an optimiser whose state holds tensors and numbers") from None
    return tensors, meta


def restore_optimizer(name: str, opt: torch.optim.Optimizer, tensors: dict[str, Tensor],
                      meta: dict[str, Any]) -> None:
    """Inverse of :func:`flatten_optimizer`: rebuild the state dict and load it into ``opt``."""
    state: dict[int, dict[str, Any]] = {}
    prefix = f"optim/{name}/"
    for key, value in tensors.items():
        if key.startswith(prefix):
            idx, sub = key[len(prefix):].split("/", 1)
            state.setdefault(int(idx), {})[sub] = value
    for idx, extra in meta["scalars"].items():
        state.setdefault(int(idx), {}).update(extra)
    groups = [{k: (tuple(v) if isinstance(v, list) and k != "params" else v)
               for k, v in g.items()} for g in meta["param_groups"]]
    opt.load_state_dict({"state": state, "param_groups": groups})


# ----- writing ------------------------------------------------------------------------------
def save_checkpoint(run_dir: str | os.PathLike, step: int, *, model: Any,
                    tensors: dict[str, Tensor], meta: dict[str, Any], keep: int,
                    ema: Any = None, protect: str | None = None,
                    resume_command: str | None = None) -> Path:
    """Write checkpoint ``step`` atomically, point ``latest`` at it, prune old ones.

    Args:
        model: the unwrapped GenerativeModel (its raw weights are in ``tensors``).
        tensors: flat trainer tensors (see module docstring).
        meta: JSON-ready trainer state.
        keep: how many newest checkpoints to keep (at least 1).
        ema: an :class:`~genvision.train.ema.EMA` whose weights ``model.safetensors`` gets.
        protect: a checkpoint directory name pruning keeps besides the newest ``keep``
            (the last one written while the loss was in its normal range).
        resume_command: the command that resumes the run, named when a write fails.
    Returns:
        The checkpoint directory.
    Raises:
        CheckpointError: a write failed (full disk, quota, file-size limit, I/O error):
            what was written of this checkpoint is removed, ``latest`` and the previous
            checkpoint are left as they were, so ``--resume`` continues from it.
    """
    root = Path(run_dir) / CHECKPOINTS
    refuse_link(root)  # checkpoints written into a linked folder would land in another run
    name = step_dir_name(step)
    tmp, final = root / f".tmp-{name}", root / name
    previous = _latest_name(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)  # debris of a crash while writing this step
        tmp.mkdir()
        if ema is not None:
            with ema.swapped(model):
                model.save_pretrained(tmp)
        else:
            model.save_pretrained(tmp)
        save_tensors(tmp / TRAINER_TENSORS, tensors, metadata={"format": FORMAT})
        atomic_write_json(tmp / TRAINER_JSON, {"format": FORMAT, **meta})
        if os.path.lexists(final):
            # Only an orphan of a crash between rename and the `latest` update can be here
            # (latest names an older step), so replacing it loses nothing.
            _discard(final)
        os.rename(tmp, final)
        _fsync_dir(root)
        atomic_write_text(root / LATEST, name + "\n")
    except OSError as exc:
        _remove(tmp)
        if _latest_name(root) != name:  # renamed, but `latest` could not be moved to it
            _remove(final)
        raise write_failed(exc, final, previous, resume_command) from None
    prune_checkpoints(run_dir, keep, protect)
    return final


def _latest_name(root: Path) -> str | None:
    try:
        return (root / LATEST).read_text(encoding="utf-8", errors="replace").strip() or None
    except OSError:
        return None


def write_failed(exc: OSError, path: Path, previous: str | None,
                 resume_command: str | None) -> CheckpointError:
    """The one-line error of a checkpoint write that failed with ``exc``."""
    space = exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
    what = "no space left writing" if space else "could not write"
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno == errno.EFBIG:
        reason += " (a file-size limit, e.g. `ulimit -f`, or the file system's)"
    fix = "free space" if space else "fix the disk or the permissions"
    if previous is None:
        return CheckpointError(f"{what} checkpoint {path} ({reason}); the run has no "
                               "checkpoint yet", f"{fix} and start the run again (a start "
                               "replaces a run without a checkpoint)")
    resume = f"`{resume_command}`" if resume_command else "--resume"
    return CheckpointError(f"{what} checkpoint {path} ({reason}); {previous} is kept",
                           f"{fix} and continue with {resume}")


def prune_checkpoints(run_dir: str | os.PathLike, keep: int, protect: str | None = None
                      ) -> None:
    """Delete all but the newest ``keep`` checkpoints (never the one ``latest`` names, nor
    ``protect``), and the debris of earlier crashes."""
    root = Path(run_dir) / CHECKPOINTS
    clean_debris(run_dir)
    latest = (root / LATEST).read_text().strip() if (root / LATEST).is_file() else None
    for _, path in list_checkpoints(run_dir)[:-max(1, keep)]:
        if path.name not in (latest, protect):
            _discard(path)


def clean_debris(run_dir: str | os.PathLike) -> None:
    """Remove what a crash or kill left in ``checkpoints/``: half-written ``.tmp-step-*``
    checkpoints, half-deleted ``.trash-*`` ones and ``.latest.*.tmp`` pointer updates.
    Only the process holding the run's lock may call it (nothing else writes there)."""
    root = Path(run_dir) / CHECKPOINTS
    if root.is_symlink() or not root.is_dir():
        return
    for pattern in _DEBRIS:
        for debris in root.glob(pattern):
            _remove(debris)


def _discard(path: Path) -> None:
    """Rename-then-delete: a kill mid-delete leaves a hidden ``.trash-*`` directory (which
    nothing lists or loads, and the next save removes), never a half-deleted checkpoint."""
    trash, n = path.with_name(f".trash-{path.name}"), 0
    while os.path.lexists(trash):  # an earlier kill's, which we may not have been able to remove
        _remove(trash)
        n += 1
        trash = path.with_name(f".trash-{path.name}.{n}") if os.path.lexists(trash) else trash
    os.rename(path, trash)
    _fsync_dir(path.parent)
    _remove(trash)


def _remove(path: Path) -> None:
    # A link (even one to a directory) is unlinked, never followed into.
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    # Makes the rename durable before `latest` names it (best effort: not all OSes allow it).
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ----- reading ------------------------------------------------------------------------------
@dataclasses.dataclass
class TrainingState:
    """Everything a checkpoint holds to continue training.

    Attributes:
        path: the checkpoint directory.
        step: optimiser steps done.
        meta: contents of ``trainer.json``.
        tensors: contents of ``trainer.safetensors`` (flat names, see module docstring).
    """

    path: Path
    step: int
    meta: dict[str, Any]
    tensors: dict[str, Tensor]

    def prefixed(self, prefix: str) -> dict[str, Tensor]:
        """Tensors under ``prefix`` with the prefix stripped, e.g. ``prefixed("model/")``."""
        return {k[len(prefix):]: v for k, v in self.tensors.items() if k.startswith(prefix)}


def load_training_state(run_dir: str | os.PathLike) -> TrainingState:
    """Read the checkpoint ``run_dir/checkpoints/latest`` names.

    Raises:
        CheckpointError: no checkpoint, or a damaged one.
    """
    path = latest_checkpoint(run_dir)
    if path is None:
        raise CheckpointError(f"nothing to resume in {run_dir}: it has no checkpoint",
                              "drop --resume to start a new run")
    meta = read_json(path / TRAINER_JSON, what="trainer state")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path / TRAINER_JSON} is not a {FORMAT} file",
                              "resume a run written by this genvision version")
    step = meta.get("step")
    named = _STEP_DIR.match(path.name)
    if (not isinstance(step, int) or isinstance(step, bool) or step < 0
            or (named is not None and int(named.group(1)) != step)):
        what = "it has no step for" if step is None else f"its step {step!r} is not the step of"
        raise CheckpointError(f"{path / TRAINER_JSON} is damaged: {what} {path.name}",
                              DAMAGED_FIX)
    return TrainingState(path=path, step=step, meta=meta,
                         tensors=load_tensors(path / TRAINER_TENSORS))


def truncate_metrics(run_dir: str | os.PathLike, step: int) -> None:
    """Drop metrics lines written after checkpoint ``step`` (and any half-written line).

    A resumed run re-does those steps, so keeping them would duplicate lines.
    """
    path = Path(run_dir) / METRICS
    refuse_link(path)  # its target would be read here and appended to later
    if not path.is_file():
        return
    kept = []
    # errors="replace": a line of garbage bytes is dropped like a torn one, not a traceback
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            if int(json.loads(line)["step"]) <= step:
                kept.append(line)
        except (ValueError, KeyError, TypeError, OverflowError):
            continue  # torn last line of a crash, or a line that is not a log record
    atomic_write_text(path, "".join(line + "\n" for line in kept))
