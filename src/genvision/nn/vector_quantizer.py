"""Vector quantisation with an EMA codebook (the bottleneck of a VQ-VAE).

van den Oord et al. 2017, "Neural Discrete Representation Learning",
https://arxiv.org/abs/1711.00937: each D-dim encoder vector z_e is replaced by its nearest
code e_k of a codebook of K vectors; the decoder's gradient is copied straight through
to z_e (the straight-through estimator, ``z_e + sg(e_k - z_e)``), and a commitment loss
``beta * ||z_e - sg(e_k)||^2`` keeps the encoder near the codes.

The codebook is not trained by gradients but by exponential moving averages of the
vectors assigned to each code (the paper's appendix A.1), with decay gamma:

    N_k <- gamma * N_k + (1 - gamma) * n_k          (n_k: vectors assigned to k)
    m_k <- gamma * m_k + (1 - gamma) * sum_{i -> k} z_e,i
    e_k  = m_k / Nbar_k,  Nbar_k = (N_k + eps) / (n + K * eps) * n,  n = sum_k N_k

``Nbar`` is N Laplace-smoothed (as in Sonnet's ``VectorQuantizerEMA``) so a code that
lost its vectors is never divided by zero. Codes whose count ``N_k`` falls below
``restart_threshold`` are *dead*: they are re-seeded with encoder outputs drawn from the
current batch (Dhariwal et al. 2020, Jukebox, https://arxiv.org/abs/2005.00341), with
``N_k = restart_threshold`` and ``m_k = e_k * N_k``. The counts start at 0, so the first
update re-seeds the whole codebook from data (a random-sample initialisation).

The buffers change only in :meth:`VectorQuantizer.update`, which the training phase
calls; ``forward`` never changes them (validation, evaluation and sampling are pure).
Under torchrun the loop broadcasts rank 0's buffers after each step, so every replica
keeps rank 0's codebook.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor, nn

__all__ = ["Quantized", "VectorQuantizer", "codebook_usage", "ema_codebook"]


@dataclasses.dataclass
class Quantized:
    """What :meth:`VectorQuantizer.forward` returns.

    Attributes:
        z_q: [N, D, h, w] the codes with the straight-through gradient to z_e.
        codes: [N, h, w] int64 code indices.
        commitment: [N] ``||z_e - sg(e)||^2`` summed over the code map (unweighted).
        flat: [N*h*w, D] the encoder vectors (for :meth:`VectorQuantizer.update`).
    """

    z_q: Tensor
    codes: Tensor
    commitment: Tensor
    flat: Tensor


def codebook_usage(codes: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """Perplexity and number of codes used by an assignment.

    Args:
        codes: int64 code indices of any shape. size: K.

    Returns:
        (perplexity, used): ``exp(-sum_k p_k log p_k)`` with p_k the share of ``codes``
        equal to k (K when every code is used equally, 1 when one code takes all), and
        how many codes appear at least once; float scalars.
    """
    counts = torch.bincount(codes.reshape(-1), minlength=size).double()
    p = counts / counts.sum().clamp(min=1)
    entropy = -(p * torch.log(p.clamp(min=1e-30))).sum()
    return entropy.exp().float(), (counts > 0).sum().float()


def ema_codebook(count: Tensor, total: Tensor, n: Tensor, s: Tensor, decay: float,
                 eps: float) -> tuple[Tensor, Tensor, Tensor]:
    """One EMA step of the codebook statistics (the module docstring's formulas).

    Args:
        count: N [K] EMA counts. total: m [K, D] EMA sums.
        n: [K] vectors assigned to each code in this batch. s: [K, D] their sums.
        decay: gamma in [0, 1). eps: Laplace smoothing > 0.

    Returns:
        (N', m', e'): new counts [K], sums [K, D] and codebook [K, D].
    """
    count = decay * count + (1 - decay) * n
    total = decay * total + (1 - decay) * s
    k, mass = count.shape[0], count.sum()
    smoothed = (count + eps) / (mass + k * eps) * mass
    return count, total, total / smoothed.clamp(min=1e-12)[:, None]


class VectorQuantizer(nn.Module):
    """Nearest-code quantiser of [N, D, h, w] maps with an EMA codebook of K codes.

    Args:
        size: K codes. dim: D, the code dimension.
        decay: gamma of the EMA. eps: Laplace smoothing of the counts.
        restart_threshold: EMA count below which a code is re-seeded (0 = never).
    """

    def __init__(self, size: int, dim: int, decay: float = 0.99, eps: float = 1e-5,
                 restart_threshold: float = 1.0):
        super().__init__()
        self.size, self.dim = size, dim
        self.decay, self.eps, self.restart_threshold = decay, eps, restart_threshold
        self.register_buffer("codebook", torch.randn(size, dim))
        self.register_buffer("count", torch.zeros(size))
        self.register_buffer("total", torch.zeros(size, dim))

    def nearest(self, flat: Tensor) -> Tensor:
        """Index [M] of the code nearest (Euclidean) to each row of ``flat`` [M, D]; ties
        go to the lower index."""
        e = self.codebook
        # float32 even under autocast: a half-precision distance can pick a farther code
        with torch.autocast(flat.device.type, enabled=False):
            # ||z||^2 is the same for every code: argmin of ||e||^2 - 2 z.e
            dist = (e * e).sum(1)[None] - 2 * flat.to(e.dtype) @ e.t()
        return dist.argmin(1)

    def lookup(self, codes: Tensor) -> Tensor:
        """Code vectors of an index map: [N, h, w] -> [N, D, h, w]."""
        return self.codebook[codes].permute(0, 3, 1, 2)

    def forward(self, z_e: Tensor) -> Quantized:
        """Quantise z_e [N, D, h, w] (buffers unchanged; see :meth:`update`)."""
        n, d, h, w = z_e.shape
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, d)
        codes = self.nearest(flat.detach()).view(n, h, w)
        e = self.lookup(codes)
        commitment = (z_e - e.detach()).pow(2).flatten(1).sum(1)
        z_q = z_e + (e - z_e).detach()  # straight-through: d z_q / d z_e = I
        return Quantized(z_q, codes, commitment, flat.detach())

    @torch.no_grad()
    def update(self, q: Quantized) -> int:
        """EMA step on a training batch's assignment, then dead-code restarts.

        Restarted codes take encoder vectors of this batch drawn with torch's global RNG
        (which the training loop checkpoints), distinct when the batch has enough.

        Returns:
            How many codes were re-seeded.
        """
        flat, codes = q.flat.float(), q.codes.reshape(-1)
        n = torch.bincount(codes, minlength=self.size).to(flat.dtype)
        s = flat.new_zeros(self.size, self.dim).index_add_(0, codes, flat)
        count, total, book = ema_codebook(self.count, self.total, n, s, self.decay, self.eps)
        self.count.copy_(count)
        self.total.copy_(total)
        self.codebook.copy_(book)
        return self.restart_dead(flat)

    @torch.no_grad()
    def restart_dead(self, flat: Tensor) -> int:
        """Re-seed codes whose count is below the threshold with rows of ``flat`` [M, D]."""
        dead = (self.count < self.restart_threshold).nonzero()[:, 0]
        if not len(dead):
            return 0
        m = flat.shape[0]
        pick = (torch.randperm(m, device=flat.device)[:len(dead)] if m >= len(dead)
                else torch.randint(m, (len(dead),), device=flat.device))
        fresh = flat[pick]
        self.codebook[dead] = fresh
        self.count[dead] = self.restart_threshold
        self.total[dead] = fresh * self.restart_threshold
        return len(dead)
