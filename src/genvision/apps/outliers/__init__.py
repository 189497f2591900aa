"""Outlier (out-of-distribution) detection with likelihood models: ``genvision outliers``.

Three scores of an image x under a trained likelihood run (exact: PixelCNN, Gated
PixelCNN, MADE, NADE; bound: VAE with IWAE-k), each "higher = more anomalous":
NLL in bits/dim, the likelihood ratio against a local background model (Ren et al. 2019,
https://arxiv.org/abs/1906.02845) and the typicality test (Nalisnick et al. 2019,
https://arxiv.org/abs/1906.02994), reported as AUROC and FPR at 95% TPR per outlier set.

Modules: :mod:`.data` (sets, prepared like the model's inputs), :mod:`.likelihood`
(log p(x) in batches), :mod:`.background` (the background model), :mod:`.scores`,
:mod:`.metrics`, :mod:`.detect` (the pipeline), :mod:`.report` (table, histogram); the
command line is :mod:`genvision.cli.outliers`.
"""

from .detect import OutlierOptions, detect_outliers
from .metrics import detection_metrics
from .scores import batch_typicality, nll_bits, ratio_score, typicality_score

__all__ = ["OutlierOptions", "batch_typicality", "detect_outliers", "detection_metrics",
           "nll_bits", "ratio_score", "typicality_score"]
