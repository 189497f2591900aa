"""Outlier scores from log-likelihoods; every score is "higher = more anomalous".

* **NLL** in bits/dim: -log p(x) / (D ln 2). The naive detector, known to fail: deep
  likelihood models can give some outliers *higher* likelihood than their own test data
  (Nalisnick et al. 2019, "Do Deep Generative Models Know What They Don't Know?",
  https://arxiv.org/abs/1810.09136; Choi et al. 2018, https://arxiv.org/abs/1810.01392).
* **Likelihood ratio**: -(log p_model(x) - log p_background(x)) (Ren et al. 2019,
  "Likelihood Ratios for Out-of-Distribution Detection", https://arxiv.org/abs/1906.02845).
  The background model explains the low-level pixel statistics that dominate log p(x);
  the ratio keeps what only the full model knows (the "semantic" part).
* **Typicality**: |NLL(x) - mean training NLL|, per image (M = 1) or on the mean NLL of a
  batch of M images (Nalisnick et al. 2019, "Detecting Out-of-Distribution Inputs to Deep
  Generative Models Using Typicality", https://arxiv.org/abs/1906.02994): in-distribution
  data lies in the typical set, whose NLL is close to the entropy, not at the mode, so both
  too-likely and too-unlikely inputs are flagged.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ...metrics.likelihood import bits_per_dim


def nll_bits(log_prob: Tensor, dims: int) -> Tensor:
    """NLL in bits/dim: [N] log p(x) in nats per image -> [N] float64."""
    return bits_per_dim(-log_prob.double(), dims)


def ratio_score(log_prob: Tensor, background_log_prob: Tensor, dims: int) -> Tensor:
    """Negative log-likelihood ratio in bits/dim (higher = more anomalous): [N] float64.

    Args:
        log_prob: [N] log p_model(x), nats per image.
        background_log_prob: [N] log p_background(x), nats per image.
    """
    return bits_per_dim(-(log_prob.double() - background_log_prob.double()), dims)


def typicality_score(nll: Tensor, train_mean_nll: float) -> Tensor:
    """Per-image (M = 1) typicality score |NLL(x) - mean training NLL|: [N] float64."""
    return (nll.double() - train_mean_nll).abs()


def batch_typicality(nll: Tensor, train_mean_nll: float, m: int, seed: int = 0) -> Tensor:
    """Typicality of batches of ``m`` images: |mean NLL of the batch - mean training NLL|.

    The images are shuffled (seeded) and cut into floor(N / m) disjoint batches, so no image
    counts twice (the rest are dropped).

    Args:
        nll: [N] per-image NLL (any unit, the same as ``train_mean_nll``).
        m: images per batch (m = 1 gives :func:`typicality_score` in a shuffled order).

    Returns:
        [floor(N / m)] float64 scores.
    """
    if m < 1:
        raise ValueError(f"m must be >= 1, got {m}")
    batches = len(nll) // m
    perm = torch.randperm(len(nll), generator=torch.Generator().manual_seed(seed))
    means = nll.double()[perm[: batches * m]].view(batches, m).mean(1)
    return (means - train_mean_nll).abs()

