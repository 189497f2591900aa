"""log p(x) of every image of a set, in batches, for any model with a likelihood (exact, a
bound, or an RBM's AIS estimate, whose log Z is computed once and shared by every set, so
the sets' scores differ only through the free energy).

Class-conditional models are scored by their marginal under a uniform label prior,
log p(x) = logsumexp_y log p(x | y) - log C, since an outlier has no label.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ...errors import UserError
from ...metrics.likelihood import log_prob_kwargs
from ...models.base import GenerativeModel
from ...progress import progress_bar


def refuse_without_likelihood(model: GenerativeModel) -> None:
    """One-line error for models with no density (GANs)."""
    if model.likelihood_kind == "none":
        raise UserError(f"{model.name} has no likelihood, so it cannot score outliers by "
                        "log p(x)", "pass a likelihood run: pixelcnn, gated-pixelcnn, "
                                    "made, nade, vae, vqvae, ddpm, flow-matching, rbm, "
                                    "realnvp or glow")


def protocol(model: GenerativeModel, k: int | None) -> dict[str, Any]:
    """How log p(x) was computed (exact / bound, estimator, k, marginalised labels)."""
    out = model.likelihood_protocol(**({"k": k} if k is not None else {}))
    if model.config.num_classes:
        out["conditional"] = (f"marginal over {model.config.num_classes} classes, "
                              "uniform prior")
    return out


@torch.no_grad()
def log_probs(model: GenerativeModel, x: Tensor, *, k: int | None = None, seed: int = 0,
              batch_size: int = 100, desc: str = "log p(x)") -> Tensor:
    """log p(x) (or its bound) in nats per image.

    Args:
        x: [N, C, H, W] model-ready images (CPU).
        k: importance samples of bound models (IWAE-k); None = the model's default.
        seed: seed of the estimator noise (the same for every set, so sets are comparable).

    Returns:
        [N] float64 on the CPU.
    """
    device = model.device
    kwargs = log_prob_kwargs(model, k, seed, device)
    if "generator" not in kwargs:
        torch.manual_seed(seed)
    classes = model.config.num_classes
    out = []
    for i in progress_bar(range(0, len(x), batch_size), desc=desc, unit="batch", leave=False):
        xb = x[i:i + batch_size].to(device)
        if not classes:
            out.append(model.log_prob(xb, None, **kwargs).double().cpu())
            continue
        per_class = torch.stack([
            model.log_prob(xb, torch.full((len(xb),), c, device=device, dtype=torch.long),
                           **kwargs).double() for c in range(classes)])
        out.append((torch.logsumexp(per_class, 0) - math.log(classes)).cpu())
    lp = torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)
    if not torch.isfinite(lp).all():
        raise UserError(f"{model.name} gave a non-finite log-likelihood for {desc}",
                        "check the images are in the model's value range")
    return lp
