"""Helpers for multi-process data-parallel training under ``torchrun`` (nanoGPT / NVlabs edm style).

When the process was not started by ``torchrun`` (no ``RANK`` / ``WORLD_SIZE`` in the
environment) every helper falls back to a single process: rank 0 of world size 1, so the
training loop has one code path.

Launch::

    torchrun --standalone --nproc_per_node 4 -m genvision.cli train ...
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist

from ..errors import UserError


def is_torchrun() -> bool:
    """True when ``torchrun`` (or ``torch.distributed.run``) started this process."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def init() -> None:
    """Join the process group if launched by torchrun with more than one process.

    Idempotent. Uses NCCL when CUDA is available (one GPU per local rank), gloo otherwise.
    """
    if is_initialized() or not is_torchrun() or int(os.environ["WORLD_SIZE"]) <= 1:
        return
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"]))
        gpus = torch.cuda.device_count()
        if local > gpus:  # NCCL needs a GPU of its own per process
            raise UserError(f"torchrun started {local} processes on this machine but it has "
                            f"{gpus} GPU{'s' if gpus != 1 else ''}",
                            f"use --nproc_per_node {gpus} (one process per GPU), or hide the "
                            "GPUs (CUDA_VISIBLE_DEVICES=) to train on CPU processes")
        torch.cuda.set_device(get_local_rank())
        dist.init_process_group("nccl")
    else:
        dist.init_process_group("gloo")
        # N processes on one machine each defaulting to every core oversubscribe the CPU;
        # OpenMP threads then spin against each other and a step can get ~50x slower.
        if "OMP_NUM_THREADS" not in os.environ:
            local = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"]))
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // local))


def cleanup() -> None:
    """Leave the process group (call once at the end of a torchrun script)."""
    if is_initialized():
        # Every rank must be past its last collective before any rank tears gloo down:
        # a rank that destroys its group while a peer's async work is still in flight
        # can abort ("terminate called without an active exception") at exit.
        dist.barrier()
        dist.destroy_process_group()


def get_rank() -> int:
    return dist.get_rank() if is_initialized() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_initialized() else 1


def get_local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    """True on the one process that writes files (rank 0)."""
    return get_rank() == 0


def print0(*args: Any, **kwargs: Any) -> None:
    """``print`` on rank 0 only, so N processes do not print N copies."""
    if is_main():
        print(*args, **kwargs)


def barrier() -> None:
    if is_initialized():
        dist.barrier()


def _collective_device() -> torch.device:
    # NCCL only moves CUDA tensors; gloo only CPU ones.
    if is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_max(values: list[float]) -> list[float]:
    """Element-wise maximum of ``values`` over all ranks (used to agree on stop flags)."""
    if not is_initialized():
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=_collective_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.tolist()


def agree(ok: bool) -> bool:
    """True only when ``ok`` is true on every rank (one rank failing stops them all)."""
    return all_max([0.0 if ok else 1.0])[0] == 0.0


def all_gather_bytes(t: torch.Tensor) -> list[torch.Tensor]:
    """Gather a 1-D uint8 tensor of the same length from every rank -> list by rank (CPU).

    Used for per-rank RNG states so a checkpoint written by rank 0 can restore every rank.
    """
    if not is_initialized():
        return [t]
    dev = _collective_device()
    src = t.to(dev)
    out = [torch.empty_like(src) for _ in range(get_world_size())]
    dist.all_gather(out, src)
    return [o.cpu() for o in out]


def _flat_collective(tensors: list[torch.Tensor], op: str) -> None:
    """Broadcast from rank 0 (``op="broadcast"``) or average (``op="mean"``) ``tensors``
    in place, one flat buffer per dtype so a model costs a few collectives, not hundreds."""
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for t in tensors:
        by_dtype.setdefault(t.dtype, []).append(t)
    dev = _collective_device()
    for group in by_dtype.values():
        flat = torch.cat([t.detach().reshape(-1) for t in group]).to(dev)
        if op == "broadcast":
            dist.broadcast(flat, src=0)
        else:
            dist.all_reduce(flat, op=dist.ReduceOp.SUM)
            flat /= get_world_size()
        offset = 0
        for t in group:
            n = t.numel()
            t.data.copy_(flat[offset:offset + n].view_as(t))
            offset += n


@torch.no_grad()
def broadcast_state(module: torch.nn.Module, *, buffers_only: bool = False) -> None:
    """Copy rank 0's parameters (unless ``buffers_only``) and buffers to every rank."""
    if not is_initialized():
        return
    tensors = list(module.buffers())
    if not buffers_only:
        tensors = list(module.parameters()) + tensors
    if tensors:
        _flat_collective(tensors, "broadcast")


@torch.no_grad()
def average_gradients(params: list[torch.Tensor]) -> None:
    """Average the gradients of ``params`` over all ranks, in place.

    A parameter with a gradient on some rank but ``None`` on another counts as a zero
    gradient there (so every rank steps it); one with no gradient anywhere stays ``None``.
    """
    if not is_initialized() or not params:
        return
    has = all_max([0.0 if p.grad is None else 1.0 for p in params])
    live = [p for p, h in zip(params, has, strict=True) if h]
    for p in live:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    if live:
        _flat_collective([p.grad for p in live], "mean")
