"""Metrics of generative models, importable from one place.

Example::

    from genvision.metrics import fid, kid, manifold_metrics, psnr, ssim
    net, info = load_or_train_feature_net("mnist5k")        # the feature space
    real, fake = extract_features(net, x_real), extract_features(net, model.sample(1000))
    fid(real, fake)                       # Frechet distance of [N, D] / [M, D] features
    kid(real, fake)["kid"]                # unbiased MMD^2 (Binkowski et al. 2018)
    manifold_metrics(real, fake)          # precision, recall, density, coverage

Sample metrics take **features** (rows of [N, D]), not images, so that every number says
which feature network made it (``genvision evaluate`` records its SHA-256); likelihood
models score images with their own ``log_prob`` (nats per image) and
:func:`bits_per_dim`. PSNR and SSIM compare images directly.

The light metrics (torch and numpy only) are imported here; the feature networks and the
scikit-image fidelity metrics on first use (PEP 562), so importing any metrics module does
not pay for them. Functions that share their module's name (``fid``, ``memorisation``,
``sample_quality``) are bound here eagerly, so ``genvision.metrics.fid`` is the function
whichever submodule was imported first.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..distributions.units import bits_per_dim
from .fid import feature_stats, fid, frechet_distance, kid, mmd2_unbiased
from .likelihood import marginal_log_prob, nll_summary
from .manifold import knn_radii, manifold_metrics, near_duplicates
from .memorisation import memorisation
from .sample_quality import sample_quality

#: names resolved on first use -> their module: feature networks (data loading, training)
#: and the image fidelity metrics (scikit-image)
_LAZY = {
    "FeatureNet": ".feature_net", "load_or_train_feature_net": ".feature_net",
    "load_feature_net": ".feature_net", "extract_features": ".feature_net",
    "classification_accuracy_score": ".cas", "load_inception": ".inception",
    "psnr": ".image_fidelity", "ssim": ".image_fidelity", "fidelity": ".image_fidelity",
    "colourfulness": ".image_fidelity",
}

__all__ = [  # noqa: F822 (the lazy names resolve through __getattr__)
    "FeatureNet", "bits_per_dim", "classification_accuracy_score", "colourfulness",
    "extract_features", "feature_stats", "fid", "fidelity", "frechet_distance", "kid",
    "knn_radii", "load_feature_net", "load_inception", "load_or_train_feature_net",
    "manifold_metrics", "marginal_log_prob", "memorisation", "mmd2_unbiased",
    "near_duplicates", "nll_summary", "psnr", "sample_quality", "ssim",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
