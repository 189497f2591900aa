"""Classification Accuracy Score: train a classifier on generated images, test it on real ones.

For a class-conditional model, CAS (Ravuri and Vinyals 2019,
https://arxiv.org/abs/1905.10887) trains a classifier only on samples ``x ~ p(x | y)``
with their conditioning labels ``y`` and reports its accuracy on real labelled test images.
It is high only when every class's samples are both recognisable and diverse enough to
generalise, so it catches conditional models that ignore ``y`` or drop the variety within a
class, which FID on the pooled samples can miss. The classifier is genvision's feature-net
CNN (:mod:`.features`) with the same recipe as the feature network, so the accuracy of the
feature network itself (trained on real images) is the natural ceiling to compare against.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import Tensor

from .feature_net import default_config, evaluate_accuracy, train_feature_net

__all__ = ["classification_accuracy_score"]


def classification_accuracy_score(fake: Tensor, fake_labels: Tensor, real: Tensor,
                                  real_labels: Tensor, *, num_classes: int, seed: int = 0,
                                  epochs: int | None = None, progress: bool = True
                                  ) -> dict[str, Any]:
    """Accuracy on real images of a classifier trained on generated ones.

    Args:
        fake: float [M, C, H, W] generated images in [0, 1].
        fake_labels: int64 [M] labels the images were generated for.
        real: float [N, C, H, W] real test images in [0, 1].
        real_labels: int64 [N] their labels.
        num_classes: number of classes.
        seed: seed of the classifier's training.
        epochs: training epochs (default: the feature network's).
        progress: show a progress bar.

    Returns:
        ``{"cas_accuracy": float, "cas_config": {...}}``.

    Raises:
        ValueError: shapes or label counts that do not match.
    """
    if fake.shape[1:] != real.shape[1:]:
        raise ValueError(f"generated images {list(fake.shape[1:])} and real images "
                         f"{list(real.shape[1:])} differ in shape")
    if len(fake_labels) != len(fake) or len(real_labels) != len(real):
        raise ValueError("need one label per image for CAS")
    if len(fake) < num_classes:
        raise ValueError(f"CAS needs at least one generated image per class ({num_classes}), "
                         f"got {len(fake)}")
    c, h, _ = fake.shape[1:]
    cfg = default_config((c, h, h), num_classes, seed=seed,
                         # samples of a binary model are already binary; do not add more bits
                         binarize_prob=0.0)
    if epochs is not None:
        cfg = dataclasses.replace(cfg, epochs=epochs)
    net = train_feature_net(fake, fake_labels, cfg, progress=progress)
    acc = evaluate_accuracy(net, real, real_labels)
    return {"cas_accuracy": acc, "cas_config": cfg.to_dict()}
