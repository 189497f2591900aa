"""k-nearest-neighbour manifold metrics: precision, recall, density and coverage.

Each sample set is approximated by the union of balls around its points, the ball of point
i reaching its k-th nearest neighbour in the same set (radius ``r_i``):

* **precision** = share of generated samples inside at least one real ball (fidelity);
* **recall** = share of real samples inside at least one generated ball (diversity)
  (Kynkaanniemi et al. 2019, https://arxiv.org/abs/1904.06991);
* **density** = ``(1 / (k M)) sum_j sum_i 1[fake_j in B(real_i, r_i)]``: how many real
  balls a generated sample falls in, relative to k; about 1 when the distributions match
  and above 1 when samples crowd into dense regions of the real data;
* **coverage** = share of real balls that contain at least one generated sample; about
  ``1 - 2^-k`` (0.875 for k = 3) when the distributions match
  (Naeem et al. 2020, https://arxiv.org/abs/2002.09797). Density and coverage use only
  real balls, so they are robust to generated outliers, which inflate recall.

Membership is ``distance <= radius`` as in NVlabs' precision/recall code
(stylegan2-ada-pytorch ``metrics/precision_recall.py``); Naeem et al.'s ``prdc`` uses
``<`` for density and coverage. The two differ only for exact ties (duplicated vectors).

A *collapsed* sampler (many samples alike) games these numbers: its few distinct images can
sit deep inside real balls, so precision stays high (0.998 for a GAN whose 64 samples were
one image) while recall and coverage fall; :func:`near_duplicates` measures the collapse
itself (the share of samples with a near-identical other sample) and flags it.

All four numbers come from three chunked passes over pairwise distances (real-real,
fake-fake, fake-real), never holding a full N x M matrix: memory is
``O(chunk x max(N, M))``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .fid import ArrayLike, _same_dim, as_features

__all__ = ["COLLAPSE_SHARE", "knn_radii", "manifold_metrics", "near_duplicates"]

#: ``near_duplicates`` flags a collapse when more than this share of samples have a near
#: duplicate (and more than twice the real images' own share): real image sets have ~0
COLLAPSE_SHARE = 0.1

# ~128 MB of float64 distances per chunk: fast matmul blocks, far below 2 GB at N = 10,000+
_CHUNK_BYTES = 128 * 2**20


def _chunk_rows(n_cols: int, chunk_size: int | None) -> int:
    if chunk_size is not None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        return chunk_size
    return max(1, _CHUNK_BYTES // (8 * max(n_cols, 1)))


def _check_k(k: int, n: int, name: str) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got k={k}")
    if k >= n:
        what = f"{name} samples" if name else "samples"
        raise ValueError(f"k={k} nearest neighbours need more than k {what}, got n={n}; "
                         f"use k < {n} or pass more samples")


def knn_radii(features: ArrayLike, k: int = 3, *, chunk_size: int | None = None) -> Tensor:
    """Distance from every point to its k-th nearest neighbour in the same set.

    The point itself is not its own neighbour: with distances to all N points sorted,
    the point's own 0 comes first and the k-th neighbour sits at index k (0-based). Exact
    duplicates of a point do count as neighbours (at distance 0).

    Args:
        features: [N, D] feature vectors.
        k: which neighbour, 1 <= k < N.
        chunk_size: rows of the distance matrix per pass; default keeps ~128 MB per chunk.

    Returns:
        [N] float64 radii on the input's device.

    Raises:
        ValueError: ``k >= N`` or ``k < 1`` (the message names k and n).
    """
    x = as_features(features)
    _check_k(k, x.shape[0], "")
    return _knn_radii(x, k, chunk_size)


def _knn_radii(x: Tensor, k: int, chunk_size: int | None) -> Tensor:
    step = _chunk_rows(x.shape[0], chunk_size)
    out = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
    for start in range(0, x.shape[0], step):
        d = torch.cdist(x[start:start + step], x)
        # (k+1)-th smallest including self (kthvalue is 1-based) = k-th neighbour excluding it
        out[start:start + step] = d.kthvalue(k + 1, dim=1).values
    return out


def manifold_metrics(real: ArrayLike, fake: ArrayLike, k: int = 3, *,
                     chunk_size: int | None = None) -> dict[str, Any]:
    """Precision, recall, density and coverage of generated features against real ones.

    Args:
        real: [N, D] features of real images.
        fake: [M, D] features of generated images.
        k: nearest neighbour defining the ball radii (3 in both papers), 1 <= k < min(N, M).
        chunk_size: rows per distance chunk; default keeps ~128 MB per chunk.

    Returns:
        ``{"precision", "recall", "density", "coverage", "k", "n_real", "n_fake"}``;
        precision, recall and coverage lie in [0, 1], density in [0, N / k].

    Raises:
        ValueError: ``k >= N`` or ``k >= M`` (the message names k and n), or mismatched D.
    """
    r = as_features(real, "real")
    f = as_features(fake, "fake").to(r.device)
    _same_dim(r, f)
    _check_k(k, r.shape[0], "real")
    _check_k(k, f.shape[0], "fake")
    r_real = _knn_radii(r, k, chunk_size)
    r_fake = _knn_radii(f, k, chunk_size)

    n, m = r.shape[0], f.shape[0]
    in_real_ball = 0  # fake samples inside >= 1 real ball (precision)
    ball_hits = 0  # (fake, real ball) pairs with the fake inside the ball (density)
    real_in_fake_ball = torch.zeros(n, dtype=torch.bool, device=r.device)  # recall
    nearest_fake = torch.full((n,), torch.inf, dtype=r.dtype, device=r.device)  # coverage
    step = _chunk_rows(n, chunk_size)
    for start in range(0, m, step):
        d = torch.cdist(f[start:start + step], r)  # [chunk of fakes, n]
        inside = d <= r_real.unsqueeze(0)
        in_real_ball += int(inside.any(dim=1).sum())
        ball_hits += int(inside.sum())
        real_in_fake_ball |= (d <= r_fake[start:start + step].unsqueeze(1)).any(dim=0)
        nearest_fake = torch.minimum(nearest_fake, d.min(dim=0).values)
    return {
        "precision": in_real_ball / m,
        "recall": real_in_fake_ball.double().mean().item(),
        "density": ball_hits / (k * m),
        # a real ball holds a fake sample exactly when its nearest fake lies within r_i
        "coverage": (nearest_fake <= r_real).double().mean().item(),
        "k": k,
        "n_real": n,
        "n_fake": m,
    }


def near_duplicates(real: ArrayLike, fake: ArrayLike, *, threshold: float = 0.1,
                    chunk_size: int | None = None) -> dict[str, Any]:
    """Mode-collapse check: how many generated samples have a near-identical other sample.

    Two samples are near duplicates when their distance is at most ``threshold`` x the
    median nearest-neighbour distance among the real vectors (0.1: ten times closer than
    neighbouring real images usually are). A sampler that collapsed to a few outputs has
    most samples in such pairs; i.i.d. draws of real images have almost none.

    Args:
        real: [N, D] real vectors (the scale of "near"), N >= 2.
        fake: [M, D] generated vectors, M >= 2.
        threshold: the near-duplicate distance relative to the real median, >= 0
            (0: exact duplicates only, up to rounding: 1e-6 x the largest real norm).
        chunk_size: rows per distance chunk; default keeps ~128 MB per chunk.

    Returns:
        ``{"duplicate_share", "real_duplicate_share", "collapsed", "duplicate_distance"}``:
        the share of samples whose nearest other sample is within ``duplicate_distance``,
        the same share among the real vectors, and whether the samples are flagged as
        collapsed (``duplicate_share`` above :data:`COLLAPSE_SHARE` and above twice
        ``real_duplicate_share``).
    """
    r = as_features(real, "real", min_rows=2)
    f = as_features(fake, "fake", min_rows=2).to(r.device)
    _same_dim(r, f)
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    r_real = _knn_radii(r, 1, chunk_size)
    # cdist's matmul path leaves identical rows ~1e-8 x |x| apart, not 0: a floor far above
    # that keeps exact duplicates duplicates (threshold 0, or real data mostly duplicates)
    floor = 1e-6 * r.norm(dim=1).max().item()
    distance = max(threshold * r_real.median().item(), floor)
    dup = (_knn_radii(f, 1, chunk_size) <= distance).double().mean().item()
    real_dup = (r_real <= distance).double().mean().item()
    return {"duplicate_share": dup, "real_duplicate_share": real_dup,
            "collapsed": bool(dup > max(COLLAPSE_SHARE, 2 * real_dup)),
            "duplicate_distance": distance}
