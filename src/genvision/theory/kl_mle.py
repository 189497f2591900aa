"""Why minimising KL(p_D || p_theta) is maximum likelihood, checked exactly on 2x2 images.

For any model p_theta,

    KL(p_D || p_theta) = E_{p_D}[log p_D(x)] - E_{p_D}[log p_theta(x)]
                       = -H(p_D) + CE(p_D, p_theta),

and H(p_D) does not depend on theta, so argmin_theta KL = argmax_theta E_{p_D}[log p_theta]:
the cross-entropy (expected negative log-likelihood, NLL) and the KL move in lock-step and
differ by exactly the data entropy. (Derivation: ``docs/theory_kl_mle.md``; e.g. Goodfellow,
Bengio & Courville, "Deep Learning", sec. 5.5, https://www.deeplearningbook.org/.)

With 2x2 binary images there are only 16 states, so p_D is known exactly and KL, NLL and
H are exact sums, not estimates. Two model families are fitted by gradient ascent on the
log-likelihood:

* :class:`BernoulliMixture`: p(x) = sum_k pi_k prod_d Bern(x_d; mu_kd), the latent-variable
  model of the taxonomy in miniature;
* :class:`FVSBN`: the fully visible sigmoid belief network p(x) = prod_d
  Bern(x_d; sigmoid(b_d + sum_{j<d} W_dj x_j)) (Neal 1992,
  https://doi.org/10.1016/0004-3702(92)90065-6), the ancestor of NADE and PixelCNN.

Everything runs in float64, so the identity NLL - KL = H holds to ~1e-15. That identity
alone proves nothing about the model: it holds for *any* log q, even an unnormalised one
(NLL - KL = -sum p_D log q - sum p_D (log p_D - log q) = -sum p_D log p_D: log q cancels).
:func:`check_fit` therefore checks what does fail for a wrong model: sum_x p_theta(x) = 1,
KL >= 0, KL = 0 only at p_theta = p_D (Pinsker: KL >= 2 TV^2), KL(p_D || p_D) = 0, and the
fitted model's KL falling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: pixels of a 2x2 image, raster order (top-left, top-right, bottom-left, bottom-right)
PIXELS = 4
#: the named target distributions
TARGETS = ("bars", "random")
FAMILIES = ("mixture", "fvsbn")

#: the ``bars`` target: prototype images (raster order) and their weights; every pixel
#: of the prototype is flipped with probability BARS_FLIP
BARS = (((1, 1, 0, 0), 0.45), ((1, 0, 1, 0), 0.35), ((1, 0, 0, 1), 0.20))
BARS_FLIP = 0.1


def all_states(pixels: int = PIXELS) -> Tensor:
    """Every binary image of ``pixels`` pixels: float64 [2**pixels, pixels] in {0, 1}.

    Row i holds the bits of i, pixel d = bit d (so row 1 lights only the top-left pixel).
    """
    i = torch.arange(2**pixels)
    return ((i[:, None] >> torch.arange(pixels)) & 1).to(torch.float64)


def target_distribution(name: str = "bars", seed: int = 0) -> Tensor:
    """A known data distribution p_D over the 16 states: float64 [16], summing to 1.

    Args:
        name: ``bars``: a top bar, a left bar or a diagonal (weights 0.45/0.35/0.20),
            each pixel flipped with probability 0.1, so every state has p_D > 0;
            ``random``: a Dirichlet(0.5) draw seeded by ``seed`` (some states near 0).
        seed: seed of ``random``.
    """
    x = all_states()
    if name == "bars":
        p = torch.zeros(len(x), dtype=torch.float64)
        for proto, weight in BARS:
            flips = (x != torch.tensor(proto, dtype=torch.float64)).sum(1)
            p += weight * BARS_FLIP**flips * (1 - BARS_FLIP)**(PIXELS - flips)
        return p / p.sum()
    if name == "random":
        p = torch.from_numpy(np.random.default_rng(seed).dirichlet(np.full(len(x), 0.5)))
        return p / p.sum()
    raise ValueError(f"unknown target {name!r}; use one of {TARGETS}")


class BernoulliMixture(nn.Module):
    """Mixture of ``k`` product-of-Bernoulli components over ``pixels`` binary pixels."""

    def __init__(self, k: int = 2, pixels: int = PIXELS, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.weight_logits = nn.Parameter(torch.zeros(k, dtype=torch.float64))
        # random means break the symmetry between components (equal ones stay equal)
        self.logits = nn.Parameter(torch.randn(k, pixels, generator=g, dtype=torch.float64))

    def log_prob(self, x: Tensor) -> Tensor:
        """log p(x) in nats: x float64 [N, pixels] in {0, 1} -> [N]."""
        # log Bern(x; sigmoid(l)) = -BCE(l, x), summed over pixels: [N, K]
        per_comp = -F.binary_cross_entropy_with_logits(
            self.logits[None].expand(len(x), -1, -1), x[:, None].expand(-1, len(self.logits), -1),
            reduction="none").sum(2)
        return torch.logsumexp(per_comp + F.log_softmax(self.weight_logits, 0), 1)


class FVSBN(nn.Module):
    """Fully visible sigmoid belief net: a logistic autoregressive model in raster order."""

    def __init__(self, pixels: int = PIXELS, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.bias = nn.Parameter(torch.zeros(pixels, dtype=torch.float64))
        self.weight = nn.Parameter(0.1 * torch.randn(pixels, pixels, generator=g,
                                                     dtype=torch.float64))
        # pixel d sees pixels j < d only: that is what makes the product a normalised p(x)
        self.register_buffer("mask", torch.tril(torch.ones(pixels, pixels,
                                                           dtype=torch.float64), -1))

    def log_prob(self, x: Tensor) -> Tensor:
        """log p(x) in nats: x float64 [N, pixels] in {0, 1} -> [N]."""
        logits = self.bias + x @ (self.weight * self.mask).T
        return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)


def make_model(family: str, components: int = 2, seed: int = 0) -> nn.Module:
    """A fresh model of ``family`` (``mixture`` or ``fvsbn``)."""
    if family == "mixture":
        return BernoulliMixture(components, seed=seed)
    if family == "fvsbn":
        return FVSBN(seed=seed)
    raise ValueError(f"unknown family {family!r}; use one of {FAMILIES}")


def entropy(p: Tensor) -> float:
    """H(p) = -sum p log p in nats, with 0 log 0 = 0."""
    nz = p[p > 0]
    return float(-(nz * nz.log()).sum())


def kl_divergence(p: Tensor, log_q: Tensor) -> float:
    """KL(p || q) = sum_x p log(p / q) in nats over states with p > 0: p, log_q float64 [S]."""
    nz = p > 0
    return float((p[nz] * (p[nz].log() - log_q[nz])).sum())


def exact_terms(model: nn.Module, p_data: Tensor) -> dict[str, float]:
    """Exact KL, cross-entropy and entropy by enumerating all 16 states.

    KL is computed *directly* as sum p_D log(p_D / p_theta), not as NLL - H, so the
    identity ``nll - kl == entropy`` is a real check.

    Returns:
        ``kl``, ``nll`` (= E_{p_D}[-log p_theta], the cross-entropy), ``entropy`` (H(p_D)),
        ``nll_minus_kl``, ``total_prob`` (sum of p_theta over the states, 1 for a
        normalised model), all in nats, and ``tv``, the total variation distance
        0.5 sum |p_D - p_theta| (a probability).
    """
    with torch.no_grad():
        log_q = model.log_prob(all_states())
        kl = kl_divergence(p_data, log_q)
        nll = float(-(p_data * log_q).sum())
        return {"kl": kl, "nll": nll, "entropy": entropy(p_data), "nll_minus_kl": nll - kl,
                "total_prob": float(log_q.exp().sum()),
                "tv": float(0.5 * (p_data - log_q.exp()).abs().sum())}


@dataclass
class FitResult:
    """The trajectory of one fit: a row of :func:`exact_terms` (plus ``step`` and, when
    fitting on samples, ``train_nll``: the average NLL of the training set) per record."""

    family: str
    rows: list[dict[str, float]]
    model: nn.Module


def record_steps(steps: int, n: int = 12) -> list[int]:
    """About ``n`` steps from 0 to ``steps``, denser early (where the curves move)."""
    if steps <= 0:
        return [0]
    pts = {0, steps} | {round(steps * (i / (n - 1))**2) for i in range(n)}
    return sorted(pts)


def fit(family: str, p_data: Tensor, *, steps: int = 500, lr: float = 0.05,
        samples: int = 0, components: int = 2, seed: int = 0) -> FitResult:
    """Fit ``family`` to ``p_data`` by maximum likelihood with Adam.

    Args:
        family: ``mixture`` or ``fvsbn``.
        p_data: float64 [16] target distribution.
        steps: optimiser steps.
        lr: Adam learning rate.
        samples: 0 = ascend the exact expected log-likelihood sum_x p_D(x) log p_theta(x);
            N > 0 = ascend the average log-likelihood of N images drawn once from p_D (a
            training set, as in practice), seeded by ``seed``.
        components: mixture components.
        seed: seed of the initial weights and of the training set.
    """
    if steps < 0 or lr <= 0 or samples < 0:
        raise ValueError("steps >= 0, lr > 0 and samples >= 0 are required")
    model = make_model(family, components, seed)
    states = all_states()
    train_x = None
    if samples:
        g = torch.Generator().manual_seed(seed + 1)
        train_x = states[torch.multinomial(p_data, samples, replacement=True, generator=g)]
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    marks = set(record_steps(steps))
    rows = []
    for step in range(steps + 1):
        if train_x is None:
            loss = -(p_data * model.log_prob(states)).sum()  # exact E_{p_D}[-log p_theta]
        else:
            loss = -model.log_prob(train_x).mean()  # empirical NLL of the training set
        if step in marks:
            row = {"step": step, **exact_terms(model, p_data)}
            if train_x is not None:
                row["train_nll"] = float(loss.detach())
            rows.append(row)
        if step == steps:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    return FitResult(family, rows, model)


#: float64 enumeration over 16 states: every check holds to ~1e-15; 1e-9 leaves room
CHECK_TOLERANCE = 1e-9


def check_fit(rows: list[dict[str, float]], p_data: Tensor,
              tol: float = CHECK_TOLERANCE) -> dict[str, tuple[bool, str]]:
    """The checks of a fit that fail for a wrong model (unlike NLL - KL = H alone).

    Args:
        rows: a fit's rows of :func:`exact_terms` (first = initial model, last = fitted).
        p_data: float64 [16] target distribution.
        tol: allowed rounding.

    Returns:
        check name -> (passed, detail): ``normalised`` (|sum_x p_theta - 1| <= tol at every
        row), ``kl_nonnegative`` (KL >= -tol), ``kl_zero_only_at_p_data`` (Pinsker's
        KL >= 2 TV^2 at every row, so KL = 0 forces p_theta = p_D, and KL(p_D || p_D) = 0),
        ``kl_falls`` (the fitted model's KL below the initial one's) and
        ``nll_minus_kl_is_entropy`` (the arithmetic identity, true for any log q).
    """
    if not rows:
        raise ValueError("check_fit needs at least one row")
    norm = max(abs(r["total_prob"] - 1.0) for r in rows)
    min_kl = min(r["kl"] for r in rows)
    pinsker = max(2 * r["tv"] ** 2 - r["kl"] for r in rows)
    self_kl = kl_divergence(p_data, p_data.log())
    first, last = rows[0]["kl"], rows[-1]["kl"]
    falls = len(rows) == 1 or last < first - tol
    ident = max_identity_error(rows)
    return {
        "normalised": (norm <= tol, f"max |sum p_theta - 1| = {norm:.1e}"),
        "kl_nonnegative": (min_kl >= -tol, f"min KL = {min_kl:.3g}"),
        "kl_zero_only_at_p_data": (pinsker <= tol and abs(self_kl) <= tol,
                                   f"max 2 TV^2 - KL = {pinsker:.1e}, "
                                   f"KL(p_D||p_D) = {self_kl:.1e}"),
        "kl_falls": (falls, f"KL {first:.4g} -> {last:.4g}"),
        "nll_minus_kl_is_entropy": (ident <= tol, f"max |(NLL - KL) - H| = {ident:.1e}"),
    }


def max_identity_error(rows: list[dict[str, float]]) -> float:
    """max over rows of |(NLL - KL) - H(p_D)|: 0 up to rounding when KL = CE - H."""
    return max(abs(r["nll_minus_kl"] - r["entropy"]) for r in rows) if rows else math.nan
