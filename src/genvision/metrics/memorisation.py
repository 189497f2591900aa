"""Memorisation check: are generated samples closer to the training set than to held-out data?

A model that generalises draws new samples from (an approximation of) the data
distribution; training and test images are two i.i.d. samples of that distribution, so a
generated sample is as likely to land nearer a training image as nearer a test image. A
model that memorised its training set reproduces (noisy versions of) training images, whose
nearest neighbour is then almost always in the training set. This is the nearest-neighbour
test used e.g. by Meehan et al. 2020 (https://arxiv.org/abs/2004.05675) and, for exact
copies, by Carlini et al. 2023 (https://arxiv.org/abs/2301.13188), here on feature vectors.

How to read :func:`memorisation`:

* ``train_closer_share`` ~ 0.5: no sign of memorisation. ~ 1: samples sit on training
  images (memorised). Clearly below 0.5: samples resemble the test set more than the
  training set, which points at a train/test distribution shift rather than at the model.
  A bad model far from all data also scores ~ 0.5: this is a memorisation check, not a
  quality metric (use FID / precision / recall for that).
* ``median_distance_ratio`` = median of nearest-train / nearest-test distance: ~ 1 when
  generalising, well below 1 when memorising (it shows *how much* closer, which the share
  cannot).
* ``near_copies``: samples whose nearest training vector lies within ``copy_threshold``
  times the median nearest-neighbour distance among training vectors themselves, i.e.
  far closer than two distinct training images usually are.

Fairness: the nearest of more reference points is nearer, so a larger training set would
win more often by its size alone. When train and test differ in size the larger one is
subsampled (seeded) to the size of the smaller for the share and the ratio. Near copies
are always searched in the *full* training set, so a copy of an image dropped by the
subsampling is still counted.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from .fid import ArrayLike, _same_dim, as_features
from .manifold import _chunk_rows, _knn_radii

__all__ = ["memorisation", "nearest_distances"]


def nearest_distances(x: ArrayLike, ref: ArrayLike, *, chunk_size: int | None = None) -> Tensor:
    """Euclidean distance from every row of ``x`` to its nearest row of ``ref``.

    Args:
        x: [M, D] query features.
        ref: [N, D] reference features.
        chunk_size: query rows per distance chunk; default keeps ~128 MB per chunk.

    Returns:
        [M] float64 distances on the device of ``x``.
    """
    a = as_features(x, "query")
    b = as_features(ref, "reference").to(a.device)
    _same_dim(a, b, ("query", "reference"))
    return _nearest(a, b, chunk_size)


def _nearest(a: Tensor, b: Tensor, chunk_size: int | None) -> Tensor:
    step = _chunk_rows(b.shape[0], chunk_size)
    return torch.cat([torch.cdist(a[s:s + step], b).min(dim=1).values
                      for s in range(0, a.shape[0], step)])


def _subsample(x: Tensor, n: int, g: torch.Generator) -> Tensor:
    """``n`` rows of ``x`` drawn without replacement, or ``x`` itself when it has n rows."""
    if x.shape[0] <= n:
        return x
    return x[torch.randperm(x.shape[0], generator=g)[:n].to(x.device)]


def memorisation(fake: ArrayLike, train: ArrayLike, test: ArrayLike, *,
                 copy_threshold: float = 0.1, seed: int = 0,
                 chunk_size: int | None = None) -> dict[str, Any]:
    """Compare each generated sample's distance to the training set and to a test set.

    Args:
        fake: [M, D] features of generated images.
        train: [N_train, D] features of the images the model was trained on, N_train >= 2.
        test: [N_test, D] features of held-out images of the same distribution.
        copy_threshold: a sample is a near copy when its nearest-train distance is below
            ``copy_threshold`` x the median nearest-neighbour distance within the training
            set (0.1 = ten times closer than typical neighbouring training images).
        seed: seed of the generator that subsamples the larger of train / test.
        chunk_size: rows per distance chunk; default keeps ~128 MB per chunk.

    Returns:
        ``{"train_closer_share", "median_distance_ratio", "near_copies",
        "near_copy_share", "copy_distance", "n_fake", "n_reference"}``.
        ``train_closer_share`` counts ties (equal distances) as half. ``copy_distance`` is
        the absolute near-copy threshold, ``n_reference`` the size of each of the equal-size
        train and test sets used for the share and the ratio. See the module docstring
        for how to read the numbers.
    """
    f = as_features(fake, "fake")
    tr = as_features(train, "train", min_rows=2).to(f.device)
    te = as_features(test, "test").to(f.device)
    _same_dim(f, tr, ("fake", "train"))
    _same_dim(f, te, ("fake", "test"))
    if copy_threshold < 0:
        raise ValueError(f"copy_threshold must be >= 0, got {copy_threshold}")

    # equal-size references so that neither wins by having more points
    n_ref = min(tr.shape[0], te.shape[0])
    g = torch.Generator().manual_seed(seed)
    tr_ref, te_ref = _subsample(tr, n_ref, g), _subsample(te, n_ref, g)

    d_train = _nearest(f, tr_ref, chunk_size)
    d_test = _nearest(f, te_ref, chunk_size)
    closer = (d_train < d_test).double() + 0.5 * (d_train == d_test).double()
    ratio = torch.where(d_test > 0, d_train / d_test,
                        torch.where(d_train > 0, torch.inf, 1.0))

    d_train_full = d_train if tr_ref is tr else _nearest(f, tr, chunk_size)
    typical = _knn_radii(tr, 1, chunk_size).median().item()
    copy_distance = copy_threshold * typical
    copies = int((d_train_full <= copy_distance).sum()) if copy_distance > 0 \
        else int((d_train_full == 0).sum())
    return {
        "train_closer_share": closer.mean().item(),
        "median_distance_ratio": float(np.median(ratio.cpu().numpy())),
        "near_copies": copies,
        "near_copy_share": copies / f.shape[0],
        "copy_distance": copy_distance,
        "n_fake": f.shape[0],
        "n_reference": n_ref,
    }
