"""The partition function of a binary RBM: exact by enumeration, or estimated by AIS.

A binary RBM with weights W [D, H], visible biases b [D] and hidden biases c [H] has
energy E(v, h) = -v.b - h.c - v W h, free energy
F(v) = -log sum_h exp(-E(v, h)) = -v.b - sum_j softplus(c_j + (v W)_j) and
p(v) = exp(-F(v)) / Z. Every function here takes (W, b, c); a class-conditional RBM
passes c + U[y] (its label units clamped) and adds its label bias d_y to log Z itself.

**Annealed importance sampling** (Neal 2001, https://arxiv.org/abs/physics/9803008; for
RBMs Salakhutdinov & Murray 2008, "On the quantitative analysis of deep belief networks",
https://www.cs.toronto.edu/~rsalakhu/papers/dbn_ais.pdf). The base model A has the same
hidden layer with no weights and no hidden biases, and visible biases b_A (the logits of
the training data's pixel marginals, the "base-rate" model), so
Z_A = 2^H prod_i (1 + exp(b_A,i)) exactly. The intermediate distributions are

    p*_beta(v) = exp((1 - beta) v.b_A + beta v.b) prod_j (1 + exp(beta (c_j + (v W)_j)))

for 0 = beta_0 < beta_1 < ... < beta_K = 1; each run draws v_1 ~ p_A, moves it with one
Gibbs sweep that leaves p_beta_k invariant after step k, and carries the importance
weight w = prod_k p*_beta_k(v_k) / p*_beta_(k-1)(v_k). The mean of M weights times Z_A is
an unbiased estimate of Z; its log is therefore biased *low* in expectation (Jensen), so
-log p(x) = F(x) + log Z-hat is optimistic on average: an estimate, never a bound.

Error bar: with weights w_1..w_M, Z-hat = Z_A mean(w) and its standard error
sd(w) / sqrt(M); the delta method gives the standard error of log Z-hat as
sd(w) / (sqrt(M) mean(w)). Salakhutdinov & Murray's interval log(Z-hat -/+ 3 s.e.) and the
effective sample size (sum w)^2 / sum w^2 are recorded too. A small ESS or a wide
interval says: more intermediate distributions.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import UserError

__all__ = ["AISResult", "ais_log_z", "beta_schedule", "binary_grid", "free_energy",
           "log_z_exact", "MAX_ENUMERATED"]

#: the most units :func:`log_z_exact` enumerates (2^20 states, in chunks)
MAX_ENUMERATED = 20
#: Salakhutdinov & Murray's schedule: 500 betas on [0, 0.5], 4,000 on [0.5, 0.9] and
#: 10,000 on [0.9, 1] (of 14,500), kept in proportion for any number of betas
_PIECES = ((0.5, 500), (0.9, 4000), (1.0, 10000))


def free_energy(v: Tensor, W: Tensor, b: Tensor, c: Tensor) -> Tensor:
    """F(v) = -v.b - sum_j softplus(c_j + (v W)_j): v [N, D], W [D, H], b [D], c [H] or
    [N, H] -> [N]."""
    return -(v @ b) - F.softplus(v @ W + c).sum(-1)


def binary_grid(n: int, dtype: torch.dtype = torch.float32,
                device: torch.device | str = "cpu") -> Tensor:
    """Every binary vector of length n, [2^n, n], in counting order (first unit slowest)."""
    bits = torch.arange(n - 1, -1, -1, device=device)
    return ((torch.arange(2 ** n, device=device)[:, None] >> bits) & 1).to(dtype)


def log_z_exact(W: Tensor, b: Tensor, c: Tensor) -> Tensor:
    """log Z by summing over every state of the smaller layer (a scalar in W's dtype).

    Summing h out leaves log Z = logsumexp_v -F(v); summing v out instead gives
    log Z = logsumexp_h [h.c + sum_i softplus(b_i + (W h)_i)]. Differentiable (the tests
    compare the contrastive-divergence gradient with its autograd gradient).

    Raises:
        UserError: both layers have more than :data:`MAX_ENUMERATED` units.
    """
    d, h = W.shape
    if min(d, h) > MAX_ENUMERATED:
        raise UserError(f"exact log Z enumerates 2^{min(d, h)} states",
                        f"use AIS, or an RBM with at most {MAX_ENUMERATED} units in a layer")
    parts = []
    n = min(d, h)
    grid = binary_grid(n, W.dtype, W.device)
    for chunk in grid.split(2 ** 14):
        if h <= d:  # enumerate the hidden layer
            parts.append(chunk @ c + F.softplus(chunk @ W.T + b).sum(-1))
        else:
            parts.append(-free_energy(chunk, W, b, c))
    return torch.logsumexp(torch.cat(parts), 0)


def beta_schedule(k: int) -> Tensor:
    """K + 1 inverse temperatures 0 = beta_0 < ... < beta_K = 1 (float64), piecewise
    linear in the proportions of Salakhutdinov & Murray 2008 (denser near beta = 1, where
    the distributions change fastest)."""
    if k < 1:
        raise ValueError(f"AIS needs at least one intermediate step, got {k}")
    total = sum(n for _, n in _PIECES)
    counts = [int(round(k * n / total)) for _, n in _PIECES[:-1]]
    counts.append(k - sum(counts))
    out, start = [torch.zeros(1, dtype=torch.float64)], 0.0
    for (end, _), n in zip(_PIECES, counts, strict=True):
        if n > 0:
            out.append(torch.linspace(start, end, n + 1, dtype=torch.float64)[1:])
            start = end
    return torch.cat(out)


@dataclasses.dataclass(frozen=True)
class AISResult:
    """One AIS estimate of log Z (nats) and its error bar.

    Attributes:
        log_z: log Z-hat = log Z_A + log mean(w).
        stderr: delta-method standard error of log Z-hat, sd(w) / (sqrt(M) mean(w)).
        interval: (log(Z-hat - 3 s.e.), log(Z-hat + 3 s.e.)); the lower end is None when
            Z-hat - 3 s.e. <= 0.
        ess: effective sample size (sum w)^2 / sum w^2, between 1 and ``runs``.
        runs, betas: M runs and K intermediate distributions.
        log_z_base: log Z_A of the base-rate model.
    """

    log_z: float
    stderr: float
    interval: tuple[float | None, float]
    ess: float
    runs: int
    betas: int
    log_z_base: float


def _bernoulli(p: Tensor, gen: torch.Generator) -> Tensor:
    """{0, 1} draws of probabilities p; the uniforms come from a CPU generator so a seed
    means the same chains on every device."""
    u = torch.rand(p.shape, generator=gen, dtype=p.dtype)
    return (u.to(p.device) < p).to(p.dtype)


@torch.no_grad()
def ais_log_z(W: Tensor, b: Tensor, c: Tensor, base_logits: Tensor, runs: int, betas: int,
              seed: int) -> AISResult:
    """Estimate log Z of the RBM (W [D, H], b [D], c [H]) by annealed importance sampling
    from the base-rate model with visible logits ``base_logits`` [D] (see the module
    docstring): ``runs`` independent runs through ``betas`` intermediate distributions,
    seeded by ``seed``. Arithmetic in W's dtype, importance weights in float64."""
    if runs < 2:
        raise ValueError("AIS needs at least 2 runs for an error bar")
    d, h = W.shape
    gen = torch.Generator().manual_seed(int(seed))
    b_a = base_logits.to(W)
    beta = beta_schedule(betas).tolist()
    db = b - b_a
    v = _bernoulli(torch.sigmoid(b_a).expand(runs, d), gen)  # exact draws from p_A
    log_w = torch.zeros(runs, dtype=torch.float64, device=W.device)
    for k in range(1, len(beta)):
        a = v @ W + c  # [M, H], shared by the weight increment and the Gibbs sweep
        b_k, b_prev = beta[k], beta[k - 1]
        # log p*_k(v) - log p*_(k-1)(v), computed as one difference (no cancellation of
        # two large log-probabilities)
        step = (b_k - b_prev) * (v @ db) + (F.softplus(b_k * a) - F.softplus(b_prev * a)).sum(-1)
        log_w += step.double()
        if k < len(beta) - 1:  # a Gibbs sweep that leaves p_beta_k invariant
            hid = _bernoulli(torch.sigmoid(b_k * a), gen)
            v = _bernoulli(torch.sigmoid((1 - b_k) * b_a + b_k * (hid @ W.T + b)), gen)
    log_z_a = h * math.log(2.0) + float(F.softplus(b_a.double()).sum())
    return _summary(log_w.cpu(), log_z_a, runs, betas)


def _summary(log_w: Tensor, log_z_a: float, runs: int, betas: int) -> AISResult:
    """log Z-hat, its delta-method standard error, the +-3 s.e. interval and the ESS."""
    top = float(log_w.max())
    w = (log_w - top).exp()  # rescaled weights; the scale cancels in every ratio
    mean, sd = float(w.mean()), float(w.std(unbiased=True))
    se = sd / math.sqrt(runs)
    log_mean = top + math.log(mean)
    lo = log_z_a + top + math.log(mean - 3 * se) if mean - 3 * se > 0 else None
    hi = log_z_a + top + math.log(mean + 3 * se)
    ess = float(w.sum() ** 2 / (w ** 2).sum())
    return AISResult(log_z=log_z_a + log_mean, stderr=se / mean, interval=(lo, hi),
                     ess=ess, runs=runs, betas=betas, log_z_base=log_z_a)
