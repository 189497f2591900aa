"""Scores of a translation: label preservation, fidelity to the true counterpart, realism in
the target domain, cycle error; each computed the same way for the identity baseline.

* **Label preservation** (as CyCADA measures it, Hoffman et al. 2018,
  https://arxiv.org/abs/1711.03213): a classifier trained on the *target* domain's
  labelled training images classifies the translated images, scored against the *source*
  images' labels.
* **PSNR / SSIM** against the true counterpart, where the pair has one
  (:mod:`genvision.apps.common.metrics`: scikit-image, data range 1, SSIM 11x11 Gaussian
  window with sigma 1.5, averaged over channels; per image, then the mean).
* **FID / KID** in the target domain (:mod:`genvision.metrics.fid`) on the 64 penultimate
  features of the same classifier, translated test images against the target domain's real
  test images. On an unlabelled target domain the classifier learns to tell the four
  rotations of its training images apart (RotNet, Gidaris et al. 2018,
  https://arxiv.org/abs/1803.07728), a label-free task whose features still describe the
  domain's images.
* **Cycle error** ``mean |G_ba(G_ab(a)) - a|`` (CycleGAN, and the identity baseline).

Outputs are rounded to 8 bits before scoring (the images a user gets).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ...data.base import ImageSet
from ...errors import CheckpointError
from ...metrics.fid import fid, kid
from ...nn.small_cnn import random_shift
from ...storage import load_tensors, save_tensors
from ..common.metrics import psnr, ssim
from ..common.small_cnn import SmallCNN
from .data import convert_channels

#: training images of a domain classifier (a seeded subset when the domain has more)
CLASSIFIER_IMAGES = 4000
#: largest random shift (pixels per axis) of a classifier's training images: 4,000 images
#: are few, and shifts teach it that a digit one pixel off is still the same digit
MAX_SHIFT = 2
#: bump when a change to the classifier's training makes cached classifiers stale
CACHE_VERSION = 1
#: KID: subsets drawn and their largest size
KID_SUBSETS, KID_SUBSET_SIZE = 50, 100
#: images translated per forward pass
BATCH = 256
PROTOCOL = {
    "label_preservation": "accuracy of the target-domain classifier on the translated test "
                          "images, against the source images' labels",
    "psnr_ssim": "against the true counterpart; RGB (or the grey channel) in [0, 1], data "
                 "range 1, outputs rounded to 8 bits; SSIM 11x11 Gaussian, sigma 1.5 "
                 "(scikit-image); mean over images",
    "fid_kid": f"translated vs real held-out target images, on the 64 penultimate features "
               f"of the target-domain classifier; KID: {KID_SUBSETS} subsets of up to "
               f"{KID_SUBSET_SIZE}, cubic kernel",
    "cycle": "mean |back(forward(x)) - x| in [0, 1] pixel units (identity: the channel "
             "conversion there and back)",
    "identity": "the source image unchanged, converted grey <-> RGB (BT.601) when the "
                "domains differ in channels",
}


#: a domain classifier below CHANCE_FACTOR / classes held-out accuracy has not learned
CHANCE_FACTOR = 1.5


@dataclasses.dataclass
class DomainClassifier:
    """A small CNN trained on one domain: its labels, or (unlabelled) image rotations."""

    cnn: SmallCNN
    task: str  #: ``labels`` or ``rotations``
    what: str  #: which network, trained on what
    accuracy: float | None = None  #: on the domain's held-out test images (same task)
    classes: int = 0  #: labels or rotations it tells apart

    @property
    def learned(self) -> bool:
        """False when its held-out accuracy is near chance (below 1.5 / classes): its
        features then say nothing about the domain, and FID/KID on them would be noise
        (BENCHMARKS.md, edges <-> photos: every translation scored FID 0.00)."""
        return self.accuracy is None or not self.classes or \
            self.accuracy >= CHANCE_FACTOR / self.classes

    @torch.no_grad()
    def features(self, x: Tensor) -> Tensor:
        """The 64 penultimate activations (after the hidden layer's ReLU): [N, 64]."""
        net = self.cnn.net
        assert net is not None
        net.eval()
        hidden = net.head[:3]  # Flatten, Linear(., 64), ReLU
        return torch.cat([hidden(net.features(x[i:i + BATCH])) for i in range(0, len(x), BATCH)])

    def predict(self, x: Tensor) -> Tensor:
        return self.cnn.predict(x)


def _rotations(x: Tensor) -> tuple[Tensor, Tensor]:
    """Every image in each of its rotations (4 quarter turns of a square image, 0 and 180
    degrees otherwise) and the rotation index as its label."""
    turns = (0, 1, 2, 3) if x.shape[2] == x.shape[3] else (0, 2)
    xs = [torch.rot90(x, k, dims=(2, 3)) for k in turns]
    ys = [torch.full((len(x),), i, dtype=torch.int64) for i in range(len(turns))]
    return torch.cat(xs), torch.cat(ys)


def _shift_augment(x: Tensor, gen: torch.Generator) -> Tensor:
    """Random shifts of up to MAX_SHIFT pixels, edges repeated (no black frame on photos)."""
    return random_shift(x, MAX_SHIFT, gen, pad_mode="replicate")


def domain_classifier(train: ImageSet, test: ImageSet, steps: int, seed: int = 0,
                      cache: Path | None = None) -> DomainClassifier:
    """Train the classifier of one domain on its train images; accuracy on its test ones.

    Args:
        train, test: the domain's train images (a seeded subset of CLASSIFIER_IMAGES when
            it has more) and held-out images (accuracy on the same task).
        steps: optimiser steps. seed: seeds the subset, weights, order and shifts.
        cache: a folder that keeps trained classifiers, keyed by a hash of the training
            images, labels and settings, so that a second ``compare`` on the same pair
            reuses them instead of retraining (None: always train).
    """
    if len(train) > CLASSIFIER_IMAGES:
        keep = np.sort(np.random.default_rng(seed).choice(len(train), CLASSIFIER_IMAGES,
                                                          replace=False))
        train = train.subset(keep)
    x, test_x = train.to_float(), test.to_float()
    if train.y is not None and train.num_classes >= 2:
        y, test_y, task, k = train.y, test.y, "labels", train.num_classes
    else:
        (x, y), task = _rotations(x), "rotations"
        test_x, test_y = _rotations(test_x)
        k = int(y.max()) + 1
    cnn = SmallCNN.build(k, tuple(x.shape[1:]))
    path = None if cache is None else cache / f"classifier-{_cache_key(train, k, steps, seed)}"
    if path is None or not _restore(cnn, path, steps):
        cnn.fit(x, y, seed=seed, steps=steps, augment=_shift_augment)
        if path is not None and cache is not None:
            cache.mkdir(parents=True, exist_ok=True)
            save_tensors(path.with_suffix(".safetensors"), cnn.state())
    acc = None
    if test_y is not None and len(test_y):
        acc = float((cnn.predict(test_x) == test_y).float().mean())
    what = (f"SmallCNN (genvision.apps.common.small_cnn) trained {steps} steps on "
            f"{len(train)} {train.source} train images (random shifts of up to "
            f"{MAX_SHIFT} px) to "
            + (f"classify their {k} labels" if task == "labels" else
               f"tell their {k} rotations apart (RotNet; the domain is unlabelled)"))
    return DomainClassifier(cnn, task, what, acc, k)


def _cache_key(train: ImageSet, classes: int, steps: int, seed: int) -> str:
    """A hash of everything a trained classifier depends on."""
    h = hashlib.sha256(json.dumps({"v": CACHE_VERSION, "steps": steps, "seed": seed,
                                   "classes": classes, "max_shift": MAX_SHIFT,
                                   "shape": list(train.x.shape)}).encode())
    h.update(train.x.numpy().tobytes())
    if train.y is not None:
        h.update(train.y.numpy().tobytes())
    return h.hexdigest()[:16]


def _restore(cnn: SmallCNN, path: Path, steps: int) -> bool:
    """Load a cached classifier into ``cnn``; False (retrain) when absent or unreadable."""
    file = path.with_suffix(".safetensors")
    if not file.is_file() or file.is_symlink():
        return False
    try:
        cnn.restore(load_tensors(file), steps)
    except (CheckpointError, RuntimeError):
        return False  # a corrupt or foreign file: train afresh and overwrite it
    return True


def to8bit(x: Tensor) -> Tensor:
    """Float images rounded to the 256 levels a saved image has."""
    return (x.clamp(0, 1) * 255).round() / 255


@torch.no_grad()
def translate_all(model: Any, x: Tensor, direction: str) -> Tensor:
    """``model.translate`` over [N, C, H, W] in batches, on the model's device, 8-bit."""
    device = next(model.parameters()).device
    out = [model.translate(x[i:i + BATCH].to(device), direction).cpu()
           for i in range(0, len(x), BATCH)]
    return to8bit(torch.cat(out))


def fidelity(pred: Tensor, target: Tensor) -> dict[str, float]:
    """Mean per-image PSNR (dB) and SSIM of [N, C, H, W] in [0, 1] against the truth."""
    p = pred.permute(0, 2, 3, 1).double().numpy()
    t = target.permute(0, 2, 3, 1).double().numpy()
    if p.shape[-1] == 1:
        p, t = p[..., 0], t[..., 0]
    return {"psnr": float(np.mean([psnr(a, b, 1.0) for a, b in zip(p, t, strict=True)])),
            "ssim": float(np.mean([ssim(a, b, 1.0) for a, b in zip(p, t, strict=True)]))}


def realism(clf: DomainClassifier, fake: Tensor, real: Tensor) -> dict[str, float]:
    """FID and KID (mean, std) of ``fake`` against ``real`` in ``clf``'s feature space."""
    f, r = clf.features(fake), clf.features(real)
    size = min(KID_SUBSET_SIZE, len(f), len(r))
    k = kid(r, f, subsets=KID_SUBSETS, subset_size=size, seed=0)
    return {"fid": fid(r, f), "kid_mean": k["kid_mean"], "kid_std": k["kid_std"]}


def score_direction(out: Tensor, source: ImageSet, target: ImageSet, clf: DomainClassifier,
                    paired: bool, back: Tensor | None) -> dict[str, Any]:
    """Every score of one translation of ``source`` into ``target``'s domain.

    Args:
        out: the translated source images, float [N, C_target, H, W], 8-bit levels.
        source, target: the held-out test images of the two domains (``target`` in the same
            order as ``source`` when ``paired``).
        clf: the target domain's classifier.
        back: ``out`` translated back to the source domain (None: no cycle error).
    """
    row: dict[str, Any] = {}
    if clf.task == "labels" and source.y is not None:
        row["label_accuracy"] = float((clf.predict(out) == source.y[:len(out)]).float().mean())
    if paired:
        row.update(fidelity(out, target.to_float()[:len(out)]))
    if clf.learned:
        row.update(realism(clf, out, target.to_float()))
    if back is not None:
        row["cycle_l1"] = float((back - source.to_float()).abs().mean())
    return row


def identity_outputs(source: ImageSet, channels: int) -> tuple[Tensor, Tensor]:
    """The identity baseline: the source as ``channels`` channels, and back (8-bit)."""
    x = source.to_float()
    out = to8bit(convert_channels(x, channels))
    return out, to8bit(convert_channels(out, x.shape[1]))
