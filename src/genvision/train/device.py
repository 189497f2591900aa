"""Which torch device a run uses: ``--device auto`` resolves here (CLI, loop, evaluate)."""

from __future__ import annotations

import torch

from ..errors import UserError
from . import distributed as dist


def resolve_device(name: str) -> torch.device:
    """``auto`` = CUDA when available (this rank's GPU under torchrun), else CPU.

    MPS is used only when asked for (``--device mps``): several ops and float64 used by
    likelihood code are missing there, so it is not a safe silent default.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {name} but CUDA is not available", "use --device cpu")
        if device.index is None:
            device = torch.device("cuda", dist.get_local_rank())
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError("--device mps but MPS is not available", "use --device cpu")
    return device


def to_device(t: torch.Tensor, device: torch.device, *,
              channels_last: bool = False) -> torch.Tensor:
    """A host batch on ``device``. On CUDA it goes through page-locked (pinned) memory and
    an asynchronous copy, as ``DataLoader(pin_memory=True)`` does: the DMA copy is faster
    than from pageable memory and the host returns at once. ``channels_last`` lays a 4-D
    batch out as [B, H, W, C] in memory (same shape and values), for ``--channels-last``.
    """
    if device.type == "cuda" and t.device.type == "cpu":
        t = t.pin_memory()
    t = t.to(device, non_blocking=True)
    if channels_last and t.dim() == 4:
        t = t.contiguous(memory_format=torch.channels_last)
    return t
