"""Colour photographs shipped with scikit-image, for patch-based and super-resolution tasks.

The photos have different sizes, so they are kept as a list of full images and training
data is cut from them as random square patches. The split is by *image*: the ``test``
photos never contribute a pixel to ``train``, so a super-resolution score on them measures
generalisation, not memorisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import torch

from ..errors import DataError
from .base import ImageSet, check_split

#: name -> loader of an RGB uint8 [H, W, 3] photo; only those that load without a network.
_LOADERS = {
    "astronaut": lambda d: d.astronaut(),
    "chelsea": lambda d: d.chelsea(),
    "coffee": lambda d: d.coffee(),
    "hubble_deep_field": lambda d: d.hubble_deep_field(),
    "immunohistochemistry": lambda d: d.immunohistochemistry(),
    "motorcycle": lambda d: d.stereo_motorcycle()[0],  # left view of the stereo pair
    "retina": lambda d: d.retina(),
    "rocket": lambda d: d.rocket(),
}
#: fixed split by photo name (never seeded: the held-out photos must stay held out)
PHOTO_SPLITS = {
    "test": ("chelsea", "coffee"),
    "val": ("rocket",),
    "train": ("astronaut", "hubble_deep_field", "immunohistochemistry", "motorcycle", "retina"),
}
PHOTO_SPLITS["all"] = tuple(_LOADERS)

#: default patch side and patch count per split for ``load_dataset("photos", split)``
DEFAULT_PATCH_SIZE = 32
DEFAULT_PATCH_COUNT = {"train": 4096, "val": 512, "test": 1024, "all": 4096}


@dataclass(frozen=True)
class Photo:
    """One full-size photograph: ``image`` is uint8 [H, W, 3]."""

    name: str
    image: np.ndarray


@cache
def _load_one(name: str) -> np.ndarray:
    import skimage.data

    img = np.asarray(_LOADERS[name](skimage.data), dtype=np.uint8)
    img.setflags(write=False)  # cached and shared: callers must copy before editing
    return img


def load_photos(split: str = "all") -> list[Photo]:
    """The photos of ``split`` (see :data:`PHOTO_SPLITS`), each uint8 [H, W, 3], read-only."""
    check_split(split)
    return [Photo(name, _load_one(name)) for name in PHOTO_SPLITS[split]]


def random_patches(photos: list[Photo], n: int, size: int, seed: int = 0,
                   split: str = "all") -> ImageSet:
    """Cut ``n`` random ``size x size`` patches, photo chosen uniformly, then position.

    Args:
        photos: the photos to cut from.
        n: number of patches.
        size: patch side in pixels (must fit inside every photo).
        seed: seed of the NumPy generator that picks photos and positions.
        split: recorded in the returned set.

    Returns:
        ImageSet with x uint8 [n, 3, size, size] and no labels.
    """
    small = [p.name for p in photos if min(p.image.shape[:2]) < size]
    if small or not photos:
        raise DataError(f"patch size {size} does not fit photos {small or '(none given)'}",
                        "use a smaller --image-size")
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for i, k in enumerate(rng.integers(len(photos), size=n)):
        img = photos[k].image
        top = rng.integers(img.shape[0] - size + 1)
        left = rng.integers(img.shape[1] - size + 1)
        out[i] = img[top:top + size, left:left + size]
    x = torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()
    return ImageSet(x, None, "photos", split)


def load_photo_patches(split: str, image_size: int | None = None, seed: int = 0) -> ImageSet:
    """``load_dataset("photos", ...)``: :data:`DEFAULT_PATCH_COUNT` patches of the split's photos.

    ``image_size`` is the patch side (default :data:`DEFAULT_PATCH_SIZE`), not a resize.
    """
    size = image_size or DEFAULT_PATCH_SIZE
    return random_patches(load_photos(split), DEFAULT_PATCH_COUNT[split], size, seed, split)
