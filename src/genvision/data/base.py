"""The one container every data source returns, and the seeded splits they share.

Every loader (embedded, file, download) produces an :class:`ImageSet` of uint8 pixels, so
preprocessing, models and metrics see one format whatever the source. Splits are seeded
index sets: the same spec, split and seed always give the same images, which is what makes
numbers from different runs comparable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import DataError

SPLITS = ("train", "val", "test", "all")
#: fraction of a source held out for each of val and test in the seeded 80/10/10 split
HOLDOUT_FRACTION = 0.1
#: the most classes a labelled set may have: a conditional model embeds every class, so a
#: stray label of 1e9 would otherwise ask for a 64 GB embedding table
MAX_CLASSES = 10_000


@dataclass
class ImageSet:
    """Images with optional labels and the spec they came from.

    Attributes:
        x: uint8 [N, C, H, W] pixels, 256 levels, C = 1 (grey) or 3 (RGB).
        y: int64 [N] class labels, or None for unlabelled data.
        source: the spec it came from, e.g. ``"mnist5k"`` or ``"idx:/data/mnist"``.
        split: ``"train"``, ``"val"``, ``"test"`` or ``"all"``.
        class_names: names of the classes (index = label), or None.
        notes: extra protocol entries of the source (e.g. how many unreadable files a
            ``folder:`` skipped), merged into the data protocol; or None.
    """

    x: Tensor
    y: Tensor | None
    source: str
    split: str
    class_names: list[str] | None = None
    notes: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        # Catch loader bugs here, once, instead of as odd numbers in a model later.
        if self.x.dtype != torch.uint8 or self.x.dim() != 4 or self.x.shape[1] not in (1, 3):
            raise ValueError(f"ImageSet.x must be uint8 [N, 1|3, H, W], got "
                             f"{self.x.dtype} {list(self.x.shape)}")
        if self.y is not None and (self.y.dtype != torch.int64 or self.y.shape != self.x.shape[:1]):
            raise ValueError(f"ImageSet.y must be int64 [N={len(self.x)}], got "
                             f"{self.y.dtype} {list(self.y.shape)}")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        c, h, w = self.x.shape[1:]
        return int(c), int(h), int(w)

    @property
    def num_classes(self) -> int:
        """0 without labels; else ``len(class_names)`` or ``max(y) + 1``."""
        if self.y is None:
            return 0
        if self.class_names is not None:
            return len(self.class_names)
        top = int(self.y.max()) if len(self.y) else -1
        if top >= MAX_CLASSES:
            raise DataError(f"{self.source} has a label {top}, but at most {MAX_CLASSES} "
                            f"classes (labels 0..{MAX_CLASSES - 1}) are supported",
                            "number the classes 0..K-1")
        return top + 1

    def subset(self, indices: Sequence[int] | np.ndarray | Tensor) -> ImageSet:
        """The images at ``indices`` (in that order), same source, split and class names."""
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.int64)
        y = None if self.y is None else self.y[idx]
        return ImageSet(self.x[idx], y, self.source, self.split, self.class_names, self.notes)

    def to_float(self) -> Tensor:
        """float32 [N, C, H, W] in [0, 1] (pixel / 255)."""
        return self.x.to(torch.float32) / 255.0


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}", f"use one of: {', '.join(SPLITS)}")


def split_sizes(n: int) -> dict[str, int]:
    """Sizes of the seeded 80/10/10 split of ``n`` items (val and test get n // 10 each)."""
    held = int(n * HOLDOUT_FRACTION)
    return {"train": n - 2 * held, "val": held, "test": held, "all": n}


def split_indices(n: int, split: str, seed: int = 0) -> np.ndarray:
    """Indices of ``split`` in a seeded 80/10/10 train/val/test split of ``n`` items.

    The permutation comes from NumPy's PCG64 (stable across NumPy versions by policy), so a
    split never changes under a user's feet. Indices are returned sorted, i.e. in the
    source's original order; ``"all"`` is ``arange(n)``.

    Returns:
        int64 [n_split] sorted indices.
    """
    check_split(split)
    if split == "all":
        return np.arange(n, dtype=np.int64)
    sizes = split_sizes(n)
    perm = np.random.default_rng(seed).permutation(n)
    parts = {"test": perm[: sizes["test"]],
             "val": perm[sizes["test"]: sizes["test"] + sizes["val"]],
             "train": perm[sizes["test"] + sizes["val"]:]}
    return np.sort(parts[split]).astype(np.int64)


def carve_val(n: int, split: str, seed: int = 0) -> np.ndarray:
    """Indices of a training file that belong to ``split`` once 10% is carved off for val.

    Used by sources with an official train/test split (IDX, CIFAR): ``"val"`` is a seeded
    10% of the training file and ``"train"`` the other 90%.

    Returns:
        int64 sorted indices into the training file.
    """
    if split not in ("train", "val"):
        raise ValueError(split)
    held = int(n * HOLDOUT_FRACTION)
    perm = np.random.default_rng(seed).permutation(n)
    part = perm[:held] if split == "val" else perm[held:]
    return np.sort(part).astype(np.int64)


def from_numpy(x: np.ndarray, y: np.ndarray | None, source: str, split: str,
               class_names: list[str] | None = None) -> ImageSet:
    """Wrap uint8 [N, C, H, W] / int [N] NumPy arrays as an :class:`ImageSet` (copies)."""
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.uint8).copy())
    yt = None if y is None else torch.from_numpy(np.asarray(y, dtype=np.int64).copy())
    return ImageSet(xt, yt, source, split, class_names)
