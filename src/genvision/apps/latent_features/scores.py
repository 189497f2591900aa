"""How much class information a representation holds: linear probe and k-means clustering.

* Linear probe: standardise the features (mean and variance of the labelled images),
  then a multinomial logistic regression (scikit-learn, L2, ``C``), trained on ``n``
  class-balanced labelled images and scored by test accuracy. Several seeds draw several
  label subsets; the spread says how much the number depends on which images got labels.
* Clustering: k-means (k-means++ init, ``n_init`` restarts) on the unscaled evaluation
  features with k = number of classes, scored against the labels by normalised mutual
  information (NMI, arithmetic mean normalisation; Strehl & Ghosh 2002) and the adjusted
  Rand index (ARI; Hubert & Arabie 1985). Both are 0 for a labelling unrelated to the
  classes and 1 for the classes themselves, whatever the cluster numbering.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

PROBE_MAX_ITER = 1000


def balanced_subset(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of ``n`` labelled images, as class-balanced as the pool allows.

    Every class gets ``n // k`` images (all it has, if fewer); the rest are drawn uniformly
    from the images left. The draw depends only on ``y``, ``n`` and ``seed``.

    Args:
        y: int labels [N]. n: how many to pick (``k <= n <= N``). seed: the draw's seed.

    Returns:
        int64 [n] indices into ``y``, sorted.
    """
    y = np.asarray(y)
    if not len(np.unique(y)) <= n <= len(y):
        raise ValueError(f"need between {len(np.unique(y))} and {len(y)} labels, got {n}")
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    per = n // len(classes)
    picked = [rng.permutation(np.flatnonzero(y == c))[:per] for c in classes]
    chosen = np.concatenate(picked)
    rest = np.setdiff1d(np.arange(len(y)), chosen)
    extra = rng.choice(rest, size=n - len(chosen), replace=False)
    return np.sort(np.concatenate([chosen, extra])).astype(np.int64)


def linear_probe(train_f: np.ndarray, train_y: np.ndarray, eval_f: np.ndarray,
                 eval_y: np.ndarray, n_labels: int, seeds: list[int], *, C: float = 1.0
                 ) -> dict[str, Any]:
    """Test accuracy of a logistic regression trained on ``n_labels`` labelled images.

    Args:
        train_f: pool features [N, D]; train_y: labels [N].
        eval_f: evaluation features [M, D]; eval_y: labels [M].
        n_labels: labelled images per fit. seeds: one label subset (and fit) per seed.
        C: inverse L2 strength of the logistic regression.

    Returns:
        ``{"n_labels", "seeds", "accuracy": [per seed], "mean", "std", "converged"}``.
    """
    accs, converged = [], True
    for seed in seeds:
        idx = balanced_subset(train_y, n_labels, seed)
        clf = make_pipeline(StandardScaler(),
                            LogisticRegression(C=C, max_iter=PROBE_MAX_ITER, random_state=seed))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            clf.fit(train_f[idx], train_y[idx])
        converged &= not any(issubclass(w.category, ConvergenceWarning) for w in caught)
        accs.append(float((clf.predict(eval_f) == eval_y).mean()))
    return {"n_labels": n_labels, "seeds": list(seeds), "accuracy": accs,
            "mean": float(np.mean(accs)), "std": float(np.std(accs)), "converged": converged}


def cluster_scores(features: np.ndarray, y: np.ndarray, *, seed: int = 0, n_init: int = 4
                   ) -> dict[str, Any]:
    """k-means with k = number of classes in ``y``; NMI and ARI of the clusters vs ``y``.

    Args:
        features: [M, D]. y: labels [M]. seed: k-means' seed. n_init: restarts (best kept).

    Returns:
        ``{"k", "nmi", "ari", "seed", "n_init"}``.
    """
    k = len(np.unique(y))
    pred = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit_predict(features)
    return {"k": k, "nmi": float(normalized_mutual_info_score(y, pred)),
            "ari": float(adjusted_rand_score(y, pred)), "seed": seed, "n_init": n_init}
