"""Memorisation check: are generated samples closer to the training set than to held-out data?

A model that generalises draws new samples from (an approximation of) the data
distribution; training and test images are two i.i.d. samples of that distribution, so a
generated sample is as likely to land nearer a training image as nearer a test image. A
model that memorised its training set reproduces (noisy versions of) training images, whose
nearest neighbour is then almost always in the training set. This is the nearest-neighbour
test used e.g. by Meehan et al. 2020 (https://arxiv.org/abs/2004.05675) and, for exact
copies, by Carlini et al. 2023 (https://arxiv.org/abs/2301.13188), here on feature vectors.

How to read :func:`memorisation`:

* ``train_closer_share``: the share of samples whose nearest reference image (train and
  test pooled) is a training image. If the model's samples do not depend on *which* images
  it was trained on, the training and test images are exchangeable as far as a sample is
  concerned, so its nearest neighbour is each of the ``N_train + N_test`` images with equal
  probability: the share is then ``expected_share = N_train / (N_train + N_test)`` exactly,
  whatever the sample quality. A memorising model pushes it towards 1.
* ``memorisation_score = (share - expected) / (1 - expected)``: 0 = no sign of
  memorisation, 1 = every sample's nearest neighbour is a training image; clearly negative
  points at a train/test distribution shift rather than at the model. A bad model far from
  all data also scores ~ 0: this is a memorisation check, not a quality metric (use FID /
  precision / recall for that).
* ``near_copies``: samples whose nearest training vector lies within ``copy_threshold``
  times the median nearest-neighbour distance among training vectors themselves, i.e.
  far closer than two distinct training images usually are.

Both sets are used whole: subsampling the larger one to equal sizes (a common alternative)
hides copies of the training images it drops, so a copying model would look fresh.
"""

from __future__ import annotations

from typing import Any

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
    return _nearest_and_ties(a, b, chunk_size)[0]


def _nearest_and_ties(a: Tensor, b: Tensor, chunk_size: int | None) -> tuple[Tensor, Tensor]:
    """Nearest distance from each row of ``a`` to ``b`` [M], and how many rows of ``b`` are
    at exactly that distance [M] (binary images tie often: distances are sqrt(integers))."""
    step = _chunk_rows(b.shape[0], chunk_size)
    dists, counts = [], []
    for s in range(0, a.shape[0], step):
        d = torch.cdist(a[s:s + step], b)
        m = d.min(dim=1).values
        dists.append(m)
        counts.append((d == m[:, None]).sum(dim=1))
    return torch.cat(dists), torch.cat(counts)


def memorisation(fake: ArrayLike, train: ArrayLike, test: ArrayLike, *,
                 copy_threshold: float = 0.1, chunk_size: int | None = None) -> dict[str, Any]:
    """Compare each generated sample's distance to the training set and to a test set.

    Args:
        fake: [M, D] features of generated images.
        train: [N_train, D] features of the images the model was trained on, N_train >= 2.
        test: [N_test, D] features of held-out images of the same distribution.
        copy_threshold: a sample is a near copy when its nearest-train distance is below
            ``copy_threshold`` x the median nearest-neighbour distance within the training
            set (0.1 = ten times closer than typical neighbouring training images).
        chunk_size: rows per distance chunk; default keeps ~128 MB per chunk.

    Returns:
        ``{"train_closer_share", "expected_share", "memorisation_score", "near_copies",
        "train_closer_share_stderr", "memorisation_score_stderr",
        "near_copy_share", "copy_distance", "n_fake", "n_train", "n_test"}``.
        Where several reference images tie for nearest, ``train_closer_share`` counts the
        fraction of them that are training images; ``copy_distance`` is
        the absolute near-copy threshold. See the module docstring for how to read them.
    """
    f = as_features(fake, "fake")
    tr = as_features(train, "train", min_rows=2).to(f.device)
    te = as_features(test, "test").to(f.device)
    _same_dim(f, tr, ("fake", "train"))
    _same_dim(f, te, ("fake", "test"))
    if copy_threshold < 0:
        raise ValueError(f"copy_threshold must be >= 0, got {copy_threshold}")

    d_train, n_train_at = _nearest_and_ties(f, tr, chunk_size)
    d_test, n_test_at = _nearest_and_ties(f, te, chunk_size)
    # the share of training images among the reference images nearest to each sample; with
    # ties that is a fraction (exchangeability makes the tied set a uniform draw too)
    train_at = torch.where(d_train <= d_test, n_train_at, 0).double()
    test_at = torch.where(d_test <= d_train, n_test_at, 0).double()
    per_sample = train_at / (train_at + test_at)
    share = per_sample.mean().item()
    # standard error of the share: small evaluation sets leave the score noisy
    stderr = (per_sample.std().item() / f.shape[0] ** 0.5) if f.shape[0] > 1 else 0.0
    expected = tr.shape[0] / (tr.shape[0] + te.shape[0])

    typical = _knn_radii(tr, 1, chunk_size).median().item()
    copy_distance = copy_threshold * typical
    copies = int((d_train <= copy_distance).sum()) if copy_distance > 0 \
        else int((d_train == 0).sum())
    return {
        "train_closer_share": share,
        "train_closer_share_stderr": stderr,
        "expected_share": expected,
        "memorisation_score": (share - expected) / (1.0 - expected),
        "memorisation_score_stderr": stderr / (1.0 - expected),
        "near_copies": copies,
        "near_copy_share": copies / f.shape[0],
        "copy_distance": copy_distance,
        "n_fake": f.shape[0],
        "n_train": tr.shape[0],
        "n_test": te.shape[0],
    }
