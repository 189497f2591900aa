"""Bayes' rule for generative classifiers, and the simplest class-conditional model.

A generative classifier models p(x|y) and p(y) and inverts them:

    log p(y|x) = log p(x|y) + log p(y) - logsumexp_y' [log p(x|y') + log p(y')]

computed in log space: image log-likelihoods are hundreds of nats, so exp() of them would
underflow to 0 (Ng & Jordan 2002, "On Discriminative vs. Generative Classifiers",
https://papers.nips.cc/paper/2020-on-discriminative-vs-generative-classifiers-a-comparison-of-logistic-regression-and-naive-bayes).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ...errors import UserError


def log_prior(y: Tensor, num_classes: int, alpha: float = 1.0) -> Tensor:
    """log p(y) from training label counts with add-``alpha`` smoothing: float64 [K]."""
    counts = torch.bincount(y, minlength=num_classes).to(torch.float64) + alpha
    return (counts / counts.sum()).log()


def posterior_log_proba(log_lik: Tensor, prior: Tensor) -> Tensor:
    """log p(y|x) from log p(x|y) [N, K] and log p(y) [K]: float64 [N, K], rows logsumexp to 0.

    Float64 because the joint is hundreds to thousands of nats: float32's spacing there
    (~1e-4 at 1,000) would show up as posteriors that do not sum to one.
    """
    joint = log_lik.double() + prior.double()
    return joint - torch.logsumexp(joint, dim=1, keepdim=True)


@torch.no_grad()
def class_log_likelihoods(log_prob, x: Tensor, num_classes: int, batch: int = 256) -> Tensor:
    """log p(x|y) for every class: call ``log_prob(x, y)`` with y filled with each class.

    Args:
        log_prob: ``f(x [B, C, H, W], y [B]) -> [B]`` nats per image (any genvision
            conditional model's ``log_prob``, or :meth:`BernoulliNaiveBayes.log_prob`).
        x: [N, C, H, W]. num_classes: K. batch: images per call.

    Returns:
        float64 [N, K].
    """
    out = torch.empty(len(x), num_classes, dtype=torch.float64)
    for i in range(0, len(x), batch):
        xb = x[i:i + batch]
        for k in range(num_classes):
            yb = torch.full((len(xb),), k, dtype=torch.int64, device=xb.device)
            out[i:i + batch, k] = log_prob(xb, yb).double().cpu()
    return out


class BernoulliNaiveBayes:
    """p(x|y) = prod_i theta_{y,i}^{x_i} (1 - theta_{y,i})^{1 - x_i}: pixels independent
    given the class. Trained in closed form (counts with add-``alpha`` smoothing).

    Args:
        num_classes: K. alpha: Laplace smoothing (1 = add one on and one off pixel).
    """

    name = "naive-bayes"
    likelihood_kind = "exact"

    def __init__(self, num_classes: int, alpha: float = 1.0):
        if alpha <= 0:
            raise UserError(f"naive Bayes smoothing must be > 0, got {alpha}",
                            "pass a positive --nb-alpha")
        self.num_classes, self.alpha = num_classes, alpha
        self.log_theta: Tensor | None = None  # float64 [K, D] log theta
        self.log_1m_theta: Tensor | None = None  # float64 [K, D] log (1 - theta)

    def fit(self, x: Tensor, y: Tensor) -> BernoulliNaiveBayes:
        """x: {0, 1} [N, C, H, W]; y: [N] in 0..K-1."""
        flat = x.flatten(1).double()
        ones = torch.zeros(self.num_classes, flat.shape[1], dtype=torch.float64)
        ones.index_add_(0, y, flat)
        counts = torch.bincount(y, minlength=self.num_classes).double()[:, None]
        theta = (ones + self.alpha) / (counts + 2 * self.alpha)
        self.log_theta, self.log_1m_theta = theta.log(), (-theta).log1p()
        return self

    def log_prob(self, x: Tensor, y: Tensor) -> Tensor:
        """log p(x|y) in nats per image: [N]."""
        if self.log_theta is None:
            raise UserError("naive Bayes has not been fitted", "call fit() first")
        flat = x.flatten(1).double()
        a, b = self.log_theta[y], self.log_1m_theta[y]
        return (flat * a + (1 - flat) * b).sum(1)

    def all_class_log_prob(self, x: Tensor) -> Tensor:
        """log p(x|y) for every class at once (one matrix product): float64 [N, K]."""
        flat = x.flatten(1).double()
        return flat @ (self.log_theta - self.log_1m_theta).T + self.log_1m_theta.sum(1)
