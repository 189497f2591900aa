"""Likelihood bookkeeping: nats per image, bits per dimension and the protocol record.

Every likelihood number genvision reports is computed in **nats per image** by a model's
``log_prob`` and converted to bits per dimension by :func:`bits_per_dim` (written
once, in :mod:`genvision.distributions.units`, and re-exported here). A summary always
carries the protocol that produced it (exact / bound, estimator, k, binarisation, ...)
because numbers without their protocol are not comparable (see the design guide).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ..distributions.units import bits_per_dim
from ..errors import UserError

__all__ = ["bits_per_dim", "log_prob_kwargs", "nll_summary"]


def nll_summary(log_probs: Tensor, dims: int, protocol: dict[str, Any]) -> dict[str, Any]:
    """Summarise per-image log-likelihoods as a JSON-ready record.

    Args:
        log_probs: [N] log p(x) (or a lower bound on it) in nats per image.
        dims: dimensions per image (C * H * W), for bits/dim.
        protocol: how ``log_probs`` were obtained, e.g. ``model.likelihood_protocol(k=1000)``
            plus data facts such as the binarisation; copied into the result.

    Returns:
        ``{"nll_nats": mean NLL, "nll_nats_stderr": standard error of that mean,
        "bits_per_dim": mean NLL in bits/dim, "bits_per_dim_stderr", "n": N,
        "protocol": protocol}``. The standard error is 0 for a single image.
    """
    lp = torch.as_tensor(log_probs, dtype=torch.float64).reshape(-1)
    n = lp.numel()
    if n == 0:
        raise ValueError("nll_summary needs at least one log-probability")
    if not torch.isfinite(lp).all():
        raise ValueError("log_probs contain NaN or infinite values")
    nll = -lp
    mean = nll.mean().item()
    # standard error of the mean: sample std (ddof=1) / sqrt(n)
    stderr = (nll.std(unbiased=True).item() / math.sqrt(n)) if n > 1 else 0.0
    return {
        "nll_nats": mean,
        "nll_nats_stderr": stderr,
        "bits_per_dim": float(bits_per_dim(mean, dims)),
        "bits_per_dim_stderr": float(bits_per_dim(stderr, dims)),
        "n": n,
        "protocol": dict(protocol),
    }


def log_prob_kwargs(model: Any, k: int | None, seed: int,
                    device: torch.device) -> dict[str, Any]:
    """Keyword arguments of ``model.log_prob``: ``k`` importance samples (bound models only;
    a user error for exact ones) and, when it takes one, a generator seeded with ``seed``.
    Callers seed the global RNG themselves when no generator is taken."""
    params = model.likelihood_options  # declared by the model (see models.base)
    kwargs: dict[str, Any] = {}
    if k is not None:
        if "k" not in params:
            raise UserError(f"{model.name} computes an {model.likelihood_kind} likelihood "
                            "without importance samples", "drop --k")
        kwargs["k"] = k
    if "generator" in params:
        kwargs["generator"] = torch.Generator(device=device).manual_seed(seed)
    return kwargs
