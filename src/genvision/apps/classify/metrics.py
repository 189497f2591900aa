"""Scores of a probabilistic classifier: accuracy, log-loss, expected calibration error.

ECE follows Guo et al. 2017, "On Calibration of Modern Neural Networks",
https://arxiv.org/abs/1706.04599: predictions are binned by confidence (the top
probability) into equal-width bins, and ECE = sum_b (n_b / N) |accuracy_b - confidence_b|.
"""

from __future__ import annotations

import torch
from torch import Tensor

ECE_BINS = 15


def accuracy(log_proba: Tensor, y: Tensor) -> float:
    """Fraction of images whose most probable class is the true one."""
    return float((log_proba.argmax(1) == y).double().mean())


def log_loss(log_proba: Tensor, y: Tensor) -> float:
    """Mean -log p(true class | x) in nats (the cross-entropy of the predictions).

    Computed from log-probabilities, so a confidently wrong generative classifier gets its
    true (possibly huge) loss rather than one clipped at log(1e-15)."""
    return float(-log_proba.double().gather(1, y[:, None]).mean())


def expected_calibration_error(log_proba: Tensor, y: Tensor, bins: int = ECE_BINS) -> float:
    """ECE with ``bins`` equal-width confidence bins on (0, 1]."""
    proba = log_proba.double().exp()
    conf, pred = proba.max(1)
    correct = (pred == y).double()
    # bin b holds confidences in (b/B, (b+1)/B]; conf >= 1/K > 0 so bin -1 never occurs
    idx = (conf * bins).ceil().long().clamp(1, bins) - 1
    total = torch.zeros(bins, dtype=torch.float64).index_add_(0, idx, torch.ones_like(conf))
    acc = torch.zeros(bins, dtype=torch.float64).index_add_(0, idx, correct)
    cnf = torch.zeros(bins, dtype=torch.float64).index_add_(0, idx, conf)
    used = total > 0
    gap = (acc[used] - cnf[used]).abs()
    return float((gap).sum() / len(y))


def scores(log_proba: Tensor, y: Tensor) -> dict[str, float]:
    """accuracy, log_loss (nats), ece, and the test size n."""
    return {"accuracy": accuracy(log_proba, y), "log_loss": log_loss(log_proba, y),
            "ece": expected_calibration_error(log_proba, y), "n": int(len(y))}
