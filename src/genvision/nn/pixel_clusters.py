"""k-means clusters of training images, used as labels by a self-conditioned GAN.

Liu et al. 2020, "Diverse Image Generation via Self-Conditioned GANs",
https://arxiv.org/abs/2006.10728: cluster the training images, condition G and D on each
image's cluster, and sample clusters at their data frequencies. The paper clusters D's
features and re-clusters during training; this module clusters pixels once, which on small
grey data (MNIST digits) already separates most modes and costs seconds.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

#: images used to fit the centroids (k-means on more adds time, not better centroids)
MAX_FIT_IMAGES = 20_000


def fit_pixel_clusters(x: Tensor, k: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """k-means of images in pixel space.

    Args:
        x: [N, C, H, W] float images, N >= k. k: number of clusters. seed: k-means seed.

    Returns:
        ``centroids`` [k, C*H*W] float32 and ``freq`` [k] float32, the fraction of all N
        images nearest each centroid (sums to 1).
    """
    # deferred: scikit-learn takes ~1.4 s to import and only a self-conditioned GAN's
    # first step needs it; every model family is imported with genvision.models
    from sklearn.cluster import KMeans

    if x.shape[0] < k:
        raise ValueError(f"{x.shape[0]} images cannot make {k} clusters")
    flat = x.detach().flatten(1).float().cpu()
    fit = flat
    if fit.shape[0] > MAX_FIT_IMAGES:  # a seeded subset, so the clusters are reproducible
        g = torch.Generator().manual_seed(seed)
        fit = fit[torch.randperm(fit.shape[0], generator=g)[:MAX_FIT_IMAGES]]
    km = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(fit.numpy().astype(np.float64))
    centroids = torch.from_numpy(km.cluster_centers_).float()
    counts = torch.bincount(assign_clusters(flat, centroids), minlength=k).float()
    return centroids, counts / counts.sum()


def assign_clusters(x: Tensor, centroids: Tensor) -> Tensor:
    """Index [N] (int64) of the nearest centroid [k, D] to each image [N, ...] (D values)."""
    flat = x.flatten(1).to(centroids.dtype)
    # ||x - c||^2 = ||c||^2 - 2 x.c + const(x): one matrix product, no [N, k, D] tensor
    dist = (centroids * centroids).sum(1) - 2 * flat @ centroids.T
    return dist.argmin(1)
