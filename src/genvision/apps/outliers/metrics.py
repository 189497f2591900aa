"""Detection metrics: AUROC and FPR at 95% TPR (scikit-learn), out-of-distribution = positive.

AUROC is the probability that a random outlier scores higher than a random in-distribution
image (0.5 = chance, 1 = perfect, below 0.5 = the score ranks them the wrong way round).
FPR@95%TPR is the fraction of in-distribution images flagged when the threshold is set to
catch 95% of the outliers (lower is better).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve
from torch import Tensor

#: the true-positive rate at which the false-positive rate is reported
TPR_LEVEL = 0.95


def detection_metrics(in_scores: Tensor, ood_scores: Tensor) -> dict[str, float]:
    """AUROC and FPR@95%TPR of telling ``ood_scores`` from ``in_scores``.

    Args:
        in_scores: [N_in] scores of in-distribution inputs (higher = more anomalous).
        ood_scores: [N_ood] scores of outliers.

    Returns:
        ``{"auroc", "fpr_at_95_tpr", "n_in", "n_ood"}``.
    """
    s = np.concatenate([in_scores.double().numpy(), ood_scores.double().numpy()])
    y = np.concatenate([np.zeros(len(in_scores)), np.ones(len(ood_scores))])
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    # the first ROC point (lowest FPR) whose TPR reaches the level
    at = int(np.searchsorted(tpr, TPR_LEVEL, side="left"))
    return {"auroc": float(roc_auc_score(y, s)), "fpr_at_95_tpr": float(fpr[at]),
            "n_in": len(in_scores), "n_ood": len(ood_scores)}
