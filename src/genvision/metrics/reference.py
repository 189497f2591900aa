"""Cached features of real image sets (the reference side of FID, KID, PR, DC).

The real side of every sample metric is the same for every model evaluated on one dataset
split, so its features are computed once and cached under
``<cache>/reference/<key>/`` as ``features.safetensors`` (the [N, D] features, plus the FID
Gaussian's mean and covariance) and ``info.json``. The key hashes everything that changes
them: the feature space's key and weights hash, the data protocol (source, split, n,
binarisation and its seed, resizing, ...) and the SHA-256 of the image tensor itself, so
edited files in an ``idx:``/``folder:`` source can never be answered from a stale cache.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..data.download import cache_root
from ..errors import CheckpointError
from ..storage import atomic_write_json, load_tensors, read_json, save_tensors
from .feature_space import FeatureSpace
from .fid import feature_stats

__all__ = ["REFERENCE_VERSION", "reference_features", "reference_key"]

#: bump when the cached content changes meaning
REFERENCE_VERSION = 1


def _tensor_digest(images: Tensor) -> str:
    t = images.detach().cpu().contiguous()
    h = hashlib.sha256()
    h.update(json.dumps([str(t.dtype), list(t.shape)]).encode())
    h.update(t.numpy().tobytes())
    return h.hexdigest()


def reference_key(space: FeatureSpace, images: Tensor, protocol: dict[str, Any]) -> str:
    """16 hex digits identifying the features of ``images`` in ``space``.

    Args:
        space: the feature space.
        images: float [N, C, H, W] real images, exactly as they are embedded.
        protocol: the data protocol of ``images`` (JSON-ready).
    """
    blob = {"version": REFERENCE_VERSION, "features": space.key,
            # a network retrained under the same key (another machine, a deleted cache)
            # must not reuse the old network's reference features
            "weights_sha256": space.identity.get("weights_sha256"), "data": protocol,
            "images_sha256": _tensor_digest(images)}
    text = json.dumps(blob, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def reference_features(space: FeatureSpace, images: Tensor, protocol: dict[str, Any], *,
                       desc: str = "reference features", progress: bool = True,
                       cache_dir: str | Path | None = None) -> tuple[Tensor, dict[str, Any]]:
    """Features of real ``images`` in ``space``, from the cache when possible.

    Args:
        space: the feature space.
        images: float [N, C, H, W] in [0, 1].
        protocol: the data protocol of ``images``; recorded in the cache's info.json.
        desc: progress-bar label.
        progress: show a progress bar while embedding.
        cache_dir: cache root (default ``$GENVISION_CACHE`` or ``~/.cache/genvision``).

    Returns:
        (float32 [N, D] features, info dict with ``key``, ``cached`` (bool) and ``path``).
    """
    key = reference_key(space, images, protocol)
    entry = cache_root(cache_dir) / "reference" / key
    if entry.is_dir():
        try:
            feats = load_tensors(entry / "features.safetensors")["features"]
            if feats.shape[0] == images.shape[0]:
                return feats, {"key": key, "cached": True, "path": str(entry)}
            warnings.warn(f"cached reference features at {entry} have the wrong size; "
                          "recomputing", stacklevel=2)
        except (CheckpointError, KeyError) as exc:
            warnings.warn(f"cached reference features unusable, recomputing: {exc}",
                          stacklevel=2)
    feats = space.extract(images, desc=desc, progress=progress)
    tensors = {"features": feats.contiguous()}
    if feats.shape[0] >= 2:
        mu, sigma = feature_stats(feats)
        tensors.update(mu=torch.from_numpy(mu), sigma=torch.from_numpy(sigma))
    entry.mkdir(parents=True, exist_ok=True)
    # files are written atomically one by one; info.json last marks the entry complete
    save_tensors(entry / "features.safetensors", tensors,
                 metadata={"format": "genvision-reference", "version": str(REFERENCE_VERSION)})
    atomic_write_json(entry / "info.json", {"key": key, "features": space.identity,
                                            "data": protocol, "n": int(feats.shape[0])})
    return feats, {"key": key, "cached": False, "path": str(entry)}


def read_reference_info(entry: str | Path) -> dict[str, Any]:
    """The info.json of a cached reference entry."""
    return read_json(Path(entry) / "info.json", what="reference info")
