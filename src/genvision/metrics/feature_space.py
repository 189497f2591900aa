"""The feature space that FID, KID, precision/recall and the other sample metrics live in.

Sample metrics compare *feature vectors* of real and generated images, so every number
depends on the network that made the features. A :class:`FeatureSpace` bundles that
network with its identity (a JSON dict recorded in every result's protocol, whose ``key``
changes whenever the features would), and knows how to embed images in batches.

Two kinds, chosen by the ``--features`` option of ``genvision evaluate``:

* ``auto`` (default) or a directory: genvision's own per-dataset classifier
  (:mod:`.features`), trained on the run's training data on first use and cached;
  a directory written by ``genvision features train --out DIR`` is used as is, after
  checking it was trained on the same dataset and image shape.
* ``inception:PATH``: the FID Inception-v3 (:mod:`.inception`) with weights from a local
  file, for the standard FID on natural images (Heusel et al. 2017,
  https://arxiv.org/abs/1706.08500).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..data.config import DataConfig
from ..errors import UserError
from ..progress import progress_bar
from .feature_net import FeatureNet, load_feature_net, load_or_train_feature_net
from .inception import load_inception

__all__ = ["FeatureSpace", "resolve_feature_space"]


@dataclass
class FeatureSpace:
    """A feature network plus the identity that goes into every result's protocol.

    Attributes:
        name: ``"genvision-classifier"`` or ``"inception-v3-fid"``.
        net: the network; ``embed(x)`` maps float [B, C, H, W] in [0, 1] to [B, D].
        identity: JSON-ready description: ``name``, ``key`` (changes whenever the
            features would), ``dim``, where the network came from and, for genvision's
            classifier, ``weights_sha256`` (the SHA-256 of its weights: equal hashes, equal
            network; Inception's key holds its file's hash).
        classify: maps features [B, D] to class logits [B, K] when the network is a
            classifier of the evaluation data (used to report its accuracy), else None.
    """

    name: str
    net: nn.Module
    identity: dict[str, Any]
    embed: Callable[[Tensor], Tensor]
    classify: Callable[[Tensor], Tensor] | None = None
    batch_size: int = 500
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def key(self) -> str:
        return str(self.identity["key"])

    @torch.no_grad()
    def extract(self, images: Tensor, *, desc: str = "features", progress: bool = True
                ) -> Tensor:
        """Features of float [N, C, H, W] images in [0, 1]: float32 [N, D] on the CPU."""
        self.net.eval()
        out = []
        for i in progress_bar(range(0, images.shape[0], self.batch_size), desc=desc,
                              unit="batch", leave=False, disable=not progress):
            xb = images[i:i + self.batch_size].to(self.device, torch.float32)
            out.append(self.embed(xb).float().cpu())
        if not out:
            return torch.zeros(0, int(self.identity["dim"]))
        return torch.cat(out)

    @torch.no_grad()
    def accuracy(self, features: Tensor, labels: Tensor | None) -> float | None:
        """Top-1 accuracy of the feature network's classifier on [N, D] features, or None."""
        if self.classify is None or labels is None or len(labels) == 0:
            return None
        logits = self.classify(features.to(self.device)).cpu()
        if logits.shape[1] <= int(labels.max()):
            return None  # a classifier of other classes: its accuracy means nothing here
        return float((logits.argmax(1) == labels).float().mean())


def _classifier_space(net: FeatureNet, info: dict[str, Any], source: str,
                      device: torch.device) -> FeatureSpace:
    net = net.to(device).eval()
    test = info.get("test_accuracy") or {}
    identity = {"name": "genvision-classifier", "key": info.get("key"),
                "dim": net.config.feature_dim, "source": source,
                "weights_sha256": info.get("weights_sha256"),
                "trained_on": {k: v for k, v in info.get("data", {}).items()
                               if k in ("spec", "split", "n", "image_size", "grayscale",
                                        "split_seed")},
                "seed": net.config.seed,
                "test_accuracy": {k: test[k] for k in ("spec", "split", "grey", "binarized")
                                  if k in test} or None}
    return FeatureSpace("genvision-classifier", net, identity, net.features,
                        classify=net.classifier, device=device)


def _inception_space(path: str, device: torch.device) -> FeatureSpace:
    net, info = load_inception(path)
    net = net.to(device).eval()
    identity = {"name": info["name"], "key": f"inception-{info['sha256']}", "dim": info["dim"],
                "source": f"inception:{info['path']}"}  # its key holds the file's SHA-256
    # 299x299 forwards are heavy: smaller batches keep memory bounded on a laptop
    return FeatureSpace(info["name"], net, identity, net.features, batch_size=50,
                        device=device)


def resolve_feature_space(spec: str, data_cfg: DataConfig, shape: tuple[int, int, int], *,
                          device: torch.device | None = None, progress: bool = True,
                          cache_dir: str | Path | None = None) -> FeatureSpace:
    """The feature space named by ``spec`` for a run trained with ``data_cfg``.

    Args:
        spec: ``"auto"``, a directory holding a saved feature network, or
            ``"inception:PATH"``.
        data_cfg: the run's data config: the classifier is trained on (or must have been
            trained on) its dataset, training split and preprocessing.
        shape: (C, H, W) of the run's images.
        device: where to run the network (default CPU).
        progress: show a progress bar when a classifier has to be trained.
        cache_dir: cache root (default ``$GENVISION_CACHE`` or ``~/.cache/genvision``).

    Raises:
        UserError: an unknown spec, a network trained on another dataset or image shape,
            or an unreadable weights file.
    """
    device = device or torch.device("cpu")
    if spec.startswith("inception:"):
        path = spec.split(":", 1)[1]
        if not path:
            raise UserError("--features inception: needs a weights file",
                            "pass --features inception:/path/to/pt_inception-2015-12-05.pth")
        return _inception_space(path, device)
    if spec == "auto":
        if progress:  # in a log too: it says what the lines that follow are about
            print(f"feature network for {data_cfg.data} ({data_cfg.split} split): loading "
                  "from the cache or training it once", file=sys.stderr)
        net, info = load_or_train_feature_net(
            data_cfg.data, split=data_cfg.split, cache_dir=cache_dir, progress=progress,
            image_size=data_cfg.image_size, grayscale=data_cfg.grayscale,
            split_seed=data_cfg.split_seed)
        return _classifier_space(net, info, "auto", device)
    path = Path(spec[len("genvision:"):] if spec.startswith("genvision:") else spec)
    if not path.is_dir():
        raise UserError(f"unknown feature network {spec!r}",
                        "pass --features auto, a directory written by `genvision features "
                        "train --out DIR`, or inception:PATH")
    net, info = load_feature_net(path, expect_data=data_cfg.data, expect_shape=shape)
    return _classifier_space(net, info, str(path.resolve()), device)
