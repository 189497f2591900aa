"""Sample-quality metrics on feature vectors: one entry point over FID, KID, PR and DC.

The metrics themselves live in :mod:`.fid` (FID, KID), :mod:`.manifold` (precision,
recall, density, coverage, and the collapse check :func:`near_duplicates`) and
:mod:`.memorisation`; this module re-exports them and adds
:func:`sample_quality`, which computes any subset of them from one pair of feature sets.
Inputs are ``[N, D]`` torch tensors or numpy arrays of features (from the classifier
genvision trains per dataset); statistics are computed in float64; results are plain
floats and ints, ready for JSON.

What a *collapsed* sampler (every sample the same image x*, or a few images) does to each
number, and why genvision flags collapse separately (:func:`near_duplicates`):

* FID grows to at least the real features' total variance (the generated covariance is
  ~0), KID to the MMD between one point and the real set: both catch collapse, but do
  not name it;
* precision stays high (0.998 for a GAN whose 64 samples were one image) whenever x* is a
  realistic image; recall falls to ~0 (the generated k-NN balls have radius 0);
* density is (number of real balls holding x*) / k, large or small by where x* lies;
  coverage falls to the few real balls around x*;
* memorisation: every sample has x*'s nearest neighbour, so the share is ~0 or ~1 and its
  standard error ~0: a score of 1.0 then says that one image lies nearest a training
  image, not that the training set was memorised; near copies are 0% or 100% likewise;
* CAS: a classifier trained on one image per label scores about chance.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .fid import (
    ArrayLike,
    _same_dim,
    as_features,
    feature_stats,
    fid,
    frechet_distance,
    kid,
    mmd2_unbiased,
)
from .manifold import knn_radii, manifold_metrics, near_duplicates
from .memorisation import memorisation, nearest_distances

__all__ = [
    "METRICS",
    "feature_stats",
    "fid",
    "frechet_distance",
    "kid",
    "knn_radii",
    "manifold_metrics",
    "memorisation",
    "mmd2_unbiased",
    "near_duplicates",
    "nearest_distances",
    "sample_quality",
]

#: names accepted by :func:`sample_quality`: FID, KID, precision/recall, density/coverage
METRICS = ("fid", "kid", "pr", "dc")


def sample_quality(real: ArrayLike, fake: ArrayLike, *, metrics: Iterable[str] = METRICS,
                   k: int = 3, kid_subsets: int = 100, kid_subset_size: int = 1000,
                   seed: int = 0) -> dict[str, Any]:
    """Compute the requested sample-quality metrics of generated against real features.

    Args:
        real: [N, D] features of real (test) images.
        fake: [M, D] features of generated images.
        metrics: any of ``"fid"``, ``"kid"``, ``"pr"`` (precision + recall) and ``"dc"``
            (density + coverage); PR and DC share one set of distance passes.
        k: nearest neighbour for PR / DC radii, 1 <= k < min(N, M).
        kid_subsets: number of KID subsets.
        kid_subset_size: vectors per KID subset, at most min(N, M) (no silent shrinking:
            KID values at different subset sizes have different variances).
        seed: seed for the KID subsets.

    Returns:
        A flat dict with ``n_real``, ``n_fake`` and, per request: ``fid``; ``kid_mean``,
        ``kid_std``, ``kid_subsets``, ``kid_subset_size``; ``precision``, ``recall``;
        ``density``, ``coverage``; and ``k`` when PR or DC was asked for.

    Raises:
        ValueError: an unknown metric name, mismatched feature dimensions, or a k /
            subset size that the sample sizes cannot support.
    """
    wanted = list(dict.fromkeys(metrics))  # ordered, duplicates dropped
    unknown = [m for m in wanted if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown sample-quality metric(s) {unknown}; choose from {list(METRICS)}")
    r = as_features(real, "real")
    f = as_features(fake, "fake").to(r.device)
    _same_dim(r, f)
    out: dict[str, Any] = {"n_real": r.shape[0], "n_fake": f.shape[0]}
    if "fid" in wanted:
        out["fid"] = fid(r, f)
    if "kid" in wanted:
        res = kid(r, f, subsets=kid_subsets, subset_size=kid_subset_size, seed=seed)
        out.update({"kid_mean": res["kid_mean"], "kid_std": res["kid_std"],
                    "kid_subsets": res["subsets"], "kid_subset_size": res["subset_size"]})
    if "pr" in wanted or "dc" in wanted:
        mm = manifold_metrics(r, f, k=k)
        out["k"] = k
        if "pr" in wanted:
            out.update(precision=mm["precision"], recall=mm["recall"])
        if "dc" in wanted:
            out.update(density=mm["density"], coverage=mm["coverage"])
    return out
