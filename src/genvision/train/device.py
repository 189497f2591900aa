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
