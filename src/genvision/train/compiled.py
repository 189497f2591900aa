"""``--compile``: a phase's loss through ``torch.compile`` (TorchDynamo + a backend).

What is compiled is the phase's *loss function* (``phase.loss(x, y, ctx)``: the forward
pass and the loss; AOTAutograd compiles the matching backward), not the model: the
modules keep their own ``state_dict`` keys, so checkpoints written with and without
``--compile`` are the same files and either loads the other. The optimiser step, EMA,
clipping and the non-finite checks stay eager (:mod:`.phases`).

Python that Dynamo cannot trace (a sampler's loop, ``.item()`` on a data-dependent
value) becomes a graph break and runs eagerly, so every family trains with the flag; how
much it gains depends on how much of the loss ends up in graphs. A changing Python
number read inside the loss (e.g. a warm-up weight computed from ``ctx.step``) costs one
recompile, after which Dynamo treats it as dynamic.

See https://pytorch.org/docs/stable/torch.compiler.html.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..errors import UserError

#: the torch.compile backend (inductor: Triton kernels on CUDA, C++/OpenMP on the CPU).
#: Tests swap in a counting backend so they check tracing without a compiler.
BACKEND: str | Callable[..., Any] = "inductor"


def compile_loss(loss: Callable[..., Any]) -> Callable[..., Any]:
    """``loss`` compiled on first call; a backend failure (no C++ compiler for inductor on
    the CPU, no Triton for an old GPU) becomes a one-line error naming the fix."""
    compiled = torch.compile(loss, backend=BACKEND)

    def call(*args: Any) -> Any:
        try:
            return compiled(*args)
        except torch._dynamo.exc.BackendCompilerFailed as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise UserError(f"--compile failed: {first[:300]}",
                            "train without --compile (eager mode gives the same model)") from None

    return call
