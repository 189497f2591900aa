"""A small convolutional classifier: the discriminative baseline of the classify, augment and
feature-probe tasks.

Two conv-ReLU-maxpool stages (16 and 32 channels) and a 64-unit hidden layer, in the spirit
of LeNet (LeCun et al. 1998, http://yann.lecun.com/exdb/publis/pdf/lecun-98.pdf): big
enough to reach ~98% on MNIST from a few thousand images, small enough (~100k parameters at
28x28) to train in seconds on one CPU thread.

Example:
    >>> clf = SmallCNN.build(num_classes=10, shape=(1, 28, 28))   # doctest: +SKIP
    >>> clf.fit(x_train, y_train, epochs=20, seed=0)               # x: [N, 1, 28, 28] in [0, 1]
    >>> proba = clf.predict_proba(x_test)                          # [M, 10], rows sum to 1
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...errors import UserError
from ...nn.small_cnn import BatchFn, conv_body, fit_classifier, steps_for

#: per-batch augmentation: ``f(x [B, C, H, W], generator) -> x`` (same shape)
Augment = BatchFn


class _Net(nn.Module):
    """conv3x3(16) - ReLU - pool2 - conv3x3(32) - ReLU - pool2 - fc(64) - ReLU - fc(K).

    The body is :func:`genvision.nn.small_cnn.conv_body` without BatchNorm.
    """

    def __init__(self, channels: int, size: tuple[int, int], num_classes: int, width: int):
        super().__init__()
        self.features, (c, h, w) = conv_body(channels, [width, 2 * width], size,
                                             batch_norm=False)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, 64), nn.ReLU(),
                                  nn.Dropout(0.25), nn.Linear(64, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


@dataclass
class SmallCNN:
    """A small CNN classifier with a scikit-learn-like ``fit`` / ``predict_proba``.

    Attributes:
        num_classes: K; labels are 0..K-1.
        shape: (C, H, W) of the images; H and W must be >= 4 (two 2x poolings).
        width: channels of the first conv (the second has twice as many).
        batch_size, lr, weight_decay: AdamW training settings.
        min_steps: fewest optimiser steps ``fit`` takes however small the data set (10
            images at batch 64 would otherwise be one step per epoch).
    """

    num_classes: int
    shape: tuple[int, int, int]
    width: int = 16
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    min_steps: int = 200
    net: _Net | None = None
    steps_done: int = 0

    @classmethod
    def build(cls, num_classes: int, shape: tuple[int, int, int], **options) -> SmallCNN:
        """A fresh, untrained classifier for K classes of images of ``shape`` (C, H, W)."""
        if num_classes < 2:
            raise UserError(f"a classifier needs at least 2 classes, got {num_classes}",
                            "pass data with two or more classes")
        if min(shape[1:]) < 4:
            raise UserError(f"images of {shape[1]}x{shape[2]} are too small for the CNN",
                            "use images of at least 4x4 pixels")
        return cls(num_classes=num_classes, shape=tuple(shape), **options)

    def num_parameters(self) -> int:
        return 0 if self.net is None else sum(p.numel() for p in self.net.parameters())

    def fit(self, x: Tensor, y: Tensor, epochs: float = 20, seed: int = 0, *,
            steps: int | None = None, augment: Augment | None = None) -> SmallCNN:
        """Train from scratch (weights, data order and augmentation all seeded by ``seed``).

        Args:
            x: float32 [N, C, H, W] in [0, 1]. y: int64 [N] labels in 0..K-1.
            epochs: passes over the data; the step count is
                ``max(min_steps, ceil(epochs * N / batch_size))``.
            seed: seed of everything random in training.
            steps: an exact number of optimiser steps instead (overrides ``epochs``):
                used to give runs on data sets of different sizes the same budget.
            augment: optional per-batch augmentation of the training images.

        Returns:
            self (trained, in eval mode).
        """
        self._check(x, y)
        gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)  # weight init and dropout draw from the global RNG
        self.net = _Net(self.shape[0], self.shape[1:], self.num_classes, self.width)
        total = steps if steps is not None else steps_for(epochs, len(x), self.batch_size,
                                                          self.min_steps)
        fit_classifier(self.net, x, y, steps=total, batch_size=self.batch_size, lr=self.lr,
                       weight_decay=self.weight_decay, generator=gen, augment=augment)
        self.steps_done = total
        self.net.eval()
        return self

    def state(self) -> dict[str, Tensor]:
        """The trained weights (a flat dict for :func:`genvision.storage.save_tensors`)."""
        if self.net is None:
            raise UserError("the CNN has not been trained", "call fit() first")
        return dict(self.net.state_dict())

    def restore(self, state: dict[str, Tensor], steps_done: int = 0) -> SmallCNN:
        """Load weights saved by :meth:`state` into a fresh net (eval mode); a file of
        another architecture raises ``RuntimeError`` from ``load_state_dict``."""
        self.net = _Net(self.shape[0], self.shape[1:], self.num_classes, self.width)
        self.net.load_state_dict(state, strict=True)
        self.net.eval()
        self.steps_done = steps_done
        return self

    @torch.no_grad()
    def predict_log_proba(self, x: Tensor, batch: int = 1000) -> Tensor:
        """log p(y|x): float32 [N, K] (log-softmax of the logits)."""
        if self.net is None:
            raise UserError("the CNN has not been trained", "call fit() first")
        self.net.eval()
        out = [F.log_softmax(self.net(x[i:i + batch]), dim=1) for i in range(0, len(x), batch)]
        return torch.cat(out) if out else torch.empty(0, self.num_classes)

    def predict_proba(self, x: Tensor, batch: int = 1000) -> Tensor:
        """p(y|x): float32 [N, K], rows sum to 1."""
        return self.predict_log_proba(x, batch).exp()

    def predict(self, x: Tensor) -> Tensor:
        """Most probable class per image: int64 [N]."""
        return self.predict_log_proba(x).argmax(1)

    def _check(self, x: Tensor, y: Tensor) -> None:
        if x.dim() != 4 or tuple(x.shape[1:]) != tuple(self.shape):
            raise UserError(f"the CNN expects images [N, {', '.join(map(str, self.shape))}], "
                            f"got {list(x.shape)}", "pass images of the shape it was built for")
        if len(y) != len(x) or len(x) == 0:
            raise UserError(f"fit needs one label per image, got {len(x)} images and "
                            f"{len(y)} labels", "pass matching, non-empty x and y")
        if int(y.min()) < 0 or int(y.max()) >= self.num_classes:
            raise UserError(f"labels must lie in 0..{self.num_classes - 1}",
                            "map the classes to 0..K-1 first")
