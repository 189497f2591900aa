"""The validation pass: the model's own loss terms averaged over a held-out set."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager

from torch import Tensor

from ..models.base import GenerativeModel


def validate(model: GenerativeModel, x: Tensor, y: Tensor | None, batch_size: int,
             autocast: Callable[[], AbstractContextManager]) -> tuple[dict[str, float], float]:
    """Mean loss terms over ``x`` [N, C, H, W] (labels ``y`` [N]), per image, and the
    images/s of the pass. The caller sets eval mode, no grad and the EMA weights."""
    sums: dict[str, float] = {}
    t0 = time.perf_counter()
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size].to(model.device)
        yb = None if y is None else y[i:i + batch_size].to(model.device)
        with autocast():
            out = model.loss(xb, yb)
        for k, v in out.items():
            sums[k] = sums.get(k, 0.0) + float(v.float().mean()) * len(xb)
    rate = len(x) / max(time.perf_counter() - t0, 1e-9)
    return {k: v / len(x) for k, v in sums.items()}, rate
