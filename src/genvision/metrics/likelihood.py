"""Likelihood bookkeeping: nats per image, bits per dimension and the protocol record.

Every likelihood number genvision reports is computed in **nats per image** by a model's
``log_prob`` and converted to bits per dimension by :func:`bits_per_dim` (written
once, in :mod:`genvision.distributions.units`, and re-exported here). A summary always
carries the protocol that produced it (exact / bound, estimator, k, binarisation, ...)
because numbers without their protocol are not comparable (see the design guide).

**Conditioning.** A class-conditional model's ``log_prob(x, y)`` is log p(x|y), not log p(x):
knowing the label makes an image cheaper to code, so -log p(x|y) sits below any -log p(x)
and the two never share a column. :func:`conditioning_protocol` names the quantity in every
likelihood record; :func:`marginal_log_prob` turns the K per-label values into
log p(x) = log sum_y p(x|y) p(y), with p(y) from :func:`label_log_prior`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ..distributions.units import bits_per_dim
from ..errors import UserError

__all__ = ["CONDITIONAL", "MARGINAL", "UNCONDITIONAL", "bits_per_dim", "conditioning_protocol",
           "estimator_kwargs", "label_log_prior", "log_prob_kwargs", "marginal_log_prob",
           "nll_summary"]

#: what a likelihood record is of: ``conditioning`` values of its protocol
UNCONDITIONAL, CONDITIONAL, MARGINAL = "none", "label", "marginal over labels"
#: the quantity each conditioning measures (the record's ``quantity`` field)
QUANTITY = {UNCONDITIONAL: "-log p(x)", CONDITIONAL: "-log p(x|y)", MARGINAL: "-log p(x)"}


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


def estimator_kwargs(model: Any, k: int | None, betas: int | None = None) -> dict[str, Any]:
    """The estimator settings of ``model.log_prob`` / ``likelihood_protocol`` that were
    given: ``k`` (importance samples, timesteps or AIS runs) and ``betas`` (AIS
    distributions); a user error for a model whose estimator has no such setting."""
    params = model.likelihood_options  # declared by the model (see models.base)
    kwargs: dict[str, Any] = {}
    if k is not None:
        if "k" not in params:
            raise UserError(f"{model.name} computes an {model.likelihood_kind} likelihood "
                            "without importance samples", "drop --k")
        kwargs["k"] = k
    if betas is not None:
        if "betas" not in params:
            raise UserError(f"{model.name}'s likelihood is not an AIS estimate",
                            "drop --ais-betas")
        kwargs["betas"] = betas
    return kwargs


def log_prob_kwargs(model: Any, k: int | None, seed: int,
                    device: torch.device, betas: int | None = None) -> dict[str, Any]:
    """Keyword arguments of ``model.log_prob``: :func:`estimator_kwargs` and, when it takes
    one, a generator seeded with ``seed``. Callers seed the global RNG themselves when no
    generator is taken."""
    kwargs = estimator_kwargs(model, k, betas)
    if "generator" in model.likelihood_options:
        kwargs["generator"] = torch.Generator(device=device).manual_seed(seed)
    return kwargs


def conditioning_protocol(conditioning: str) -> dict[str, str]:
    """The protocol fields that say what a likelihood number is of.

    Args:
        conditioning: :data:`UNCONDITIONAL` (an unconditional model's log p(x)),
            :data:`CONDITIONAL` (log p(x|y) given each image's own label) or
            :data:`MARGINAL` (log p(x) of a conditional model, summed over labels).

    Returns:
        ``{"conditioning": ..., "quantity": "-log p(x)" | "-log p(x|y)"}``.
    """
    if conditioning not in QUANTITY:
        raise ValueError(f"unknown conditioning {conditioning!r}")
    return {"conditioning": conditioning, "quantity": QUANTITY[conditioning]}


def label_log_prior(counts: list[int] | None, num_classes: int, source: str
                    ) -> tuple[Tensor, dict[str, Any]]:
    """log p(y) [K] for the marginal likelihood, and how it was chosen.

    Args:
        counts: training images per label (length ``num_classes``), or None for a uniform
            p(y) (a run that recorded no training labels).
        num_classes: K.
        source: where ``counts`` came from (or why p(y) is uniform), recorded verbatim.

    Returns:
        (float64 [K] log-probabilities, ``-inf`` for labels never seen in training;
        protocol dict ``{"kind": "training label frequencies" | "uniform", "counts",
        "source"}``).
    """
    if num_classes < 1:
        raise ValueError("a label prior needs at least one class")
    if counts is None:
        return (torch.full((num_classes,), -math.log(num_classes), dtype=torch.float64),
                {"kind": "uniform", "source": source})
    c = torch.as_tensor(counts, dtype=torch.float64)
    if c.shape != (num_classes,) or bool((c < 0).any()) or float(c.sum()) <= 0:
        raise ValueError(f"label counts must be {num_classes} non-negative numbers with a "
                         f"positive sum, got {counts}")
    return (c / c.sum()).log(), {"kind": "training label frequencies",
                                 "counts": [int(v) for v in counts], "source": source}


def marginal_log_prob(log_px_given_y: Tensor, log_prior: Tensor) -> Tensor:
    """log p(x) = log sum_y p(x|y) p(y), computed with logsumexp.

    For an exact model this is the exact marginal. For a bound model whose per-label value
    is an IWAE-k estimate (whose exp is unbiased for p(x|y)), sum_y p(y) exp(value) is
    unbiased for p(x), so its log is a lower bound on log p(x) in expectation, as IWAE-k
    itself is; a value that bounds every log p(x|y) gives a bound on log p(x).

    Args:
        log_px_given_y: [N, K] log p(x|y=k) in nats (columns of labels with p(y) = 0 may
            hold anything finite; they get weight 0).
        log_prior: [K] log p(y).

    Returns:
        float64 [N] log p(x) in nats per image.
    """
    lp = torch.as_tensor(log_px_given_y, dtype=torch.float64)
    prior = torch.as_tensor(log_prior, dtype=torch.float64)
    if lp.dim() != 2 or lp.shape[1] != prior.numel():
        raise ValueError(f"need [N, {prior.numel()}] per-label log-likelihoods, "
                         f"got {list(lp.shape)}")
    return torch.logsumexp(lp + prior.reshape(1, -1), dim=1)
