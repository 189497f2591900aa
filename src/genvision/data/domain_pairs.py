"""Pairs of image domains for translation, built deterministically from embedded data.

No download is needed: every pair is made from data genvision ships with, seeded, so the
same name, split and seed always give the same images.

* ``mnist-mnistm``: MNIST digits (A) and MNIST-M (B), made as Ganin & Lempitsky
  ("Unsupervised Domain Adaptation by Backpropagation", 2015,
  https://arxiv.org/abs/1409.7495) made it: each digit blended with a random crop of a colour
  photograph, ``|crop - digit|`` per channel. The crops come from the scikit-image photos of
  the *same split* (:data:`~genvision.data.photos.PHOTO_SPLITS`), so the held-out photos
  never appear in training pairs. Image i of B is the blend of image i of A: the pairing is
  known by construction, so an unpaired method can still be scored against the truth.
* ``edges-photos``: edge maps (A, Canny on the grey patch, 1 channel, edges white) of
  colour photo patches (B; 96x96 crops downscaled to 32x32), paired, the pix2pix
  edges-to-photos setting at CPU scale.
* ``digits-mnist``: scikit-learn's 8x8 digits upsampled (bilinear) to 28x28 (A) and MNIST
  (B), unpaired (different images and counts), with labels on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UserError
from .base import ImageSet, check_split
from .embedded import load_embedded
from .photos import DEFAULT_PATCH_COUNT, DEFAULT_PATCH_SIZE, load_photos, random_patches

__all__ = ["DomainPair", "DOMAIN_PAIRS", "load_domain_pair", "blend_mnistm", "canny_edges"]

#: split name -> a number mixed into the seed, so each split draws its own crops
_SPLIT_STREAM = {"train": 0, "val": 1, "test": 2, "all": 3}
#: edges-photos patches are cut this many times larger, then downscaled: a full-resolution
#: 32x32 crop of these photos is mostly texture (fur, skin), a 96x96 one shows shapes
EDGE_PATCH_SCALE = 3
#: Canny's Gaussian width on 32x32 patches: 1.0 keeps object outlines, drops most texture
CANNY_SIGMA = 1.0


@dataclass
class DomainPair:
    """Two domains of images. ``paired``: image i of ``a`` corresponds to image i of ``b``.

    Attributes:
        name: the pair's name. a, b: the two domains (uint8 ImageSets, maybe of different
        channel counts). paired: whether the order pairs them. description: how it is made.
    """

    name: str
    a: ImageSet
    b: ImageSet
    paired: bool
    description: str


def blend_mnistm(digits: torch.Tensor, crops: np.ndarray) -> torch.Tensor:
    """MNIST-M images: ``|crop - digit|`` per channel.

    Args:
        digits: uint8 [N, 1, H, W] grey digits. crops: uint8 [N, H, W, 3] photo crops.

    Returns:
        uint8 [N, 3, H, W]: the crop where the digit is black, its negative where white.
    """
    crop = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).to(torch.int16)
    return (crop - digits.to(torch.int16)).abs().to(torch.uint8)


def canny_edges(patches: torch.Tensor, sigma: float = CANNY_SIGMA) -> torch.Tensor:
    """Canny edge maps of RGB patches: uint8 [N, 3, H, W] -> uint8 [N, 1, H, W] in {0, 255}."""
    # deferred: scikit-image's feature module is only needed by this pair
    from skimage.color import rgb2gray
    from skimage.feature import canny

    out = np.empty((len(patches), 1, *patches.shape[2:]), dtype=np.uint8)
    for i, p in enumerate(patches.permute(0, 2, 3, 1).numpy()):
        out[i, 0] = canny(rgb2gray(p), sigma=sigma) * 255
    return torch.from_numpy(out)


def _crops(split: str, n: int, size: int, seed: int) -> np.ndarray:
    """n random size x size crops of the split's photos, uint8 [n, size, size, 3]."""
    patches = random_patches(load_photos(split), n, size, seed, split)
    return patches.x.permute(0, 2, 3, 1).numpy()


def _mnistm(split: str, seed: int) -> DomainPair:
    digits = load_embedded("mnist5k", split, seed)
    size = digits.shape[1]
    crops = _crops(split, len(digits), size, seed * 4 + _SPLIT_STREAM[split])
    b = ImageSet(blend_mnistm(digits.x, crops), digits.y, "mnist-m", split,
                 digits.class_names)
    return DomainPair("mnist-mnistm", digits, b, True, DOMAIN_PAIRS["mnist-mnistm"])


def _edges(split: str, seed: int) -> DomainPair:
    side = DEFAULT_PATCH_SIZE * EDGE_PATCH_SCALE
    big = random_patches(load_photos(split), DEFAULT_PATCH_COUNT[split], side,
                         seed * 4 + _SPLIT_STREAM[split], split)
    small = F.interpolate(big.x.float(), size=(DEFAULT_PATCH_SIZE,) * 2, mode="bilinear",
                          antialias=True, align_corners=False)
    photos = ImageSet(small.round().clamp(0, 255).to(torch.uint8), None, "photos", split)
    edges = ImageSet(canny_edges(photos.x), None, "edges", split)
    return DomainPair("edges-photos", edges, photos, True, DOMAIN_PAIRS["edges-photos"])


def _digits_mnist(split: str, seed: int) -> DomainPair:
    small = load_embedded("digits", split, seed)
    big = load_embedded("mnist5k", split, seed)
    up = F.interpolate(small.x.float(), size=big.shape[1:], mode="bilinear",
                       align_corners=False)
    a = ImageSet(up.round().clamp(0, 255).to(torch.uint8), small.y, "digits-28", split,
                 small.class_names)
    return DomainPair("digits-mnist", a, big, False, DOMAIN_PAIRS["digits-mnist"])


#: name -> how the pair is made (shown by ``genvision data list``)
DOMAIN_PAIRS = {
    "mnist-mnistm": "MNIST-5k digits and MNIST-M (each digit blended with a crop of a "
                    "scikit-image photo of the same split), paired by construction, labelled",
    "edges-photos": "Canny edge maps and the 32x32 colour photo patches (96x96 crops, "
                    "downscaled) they come from, paired",
    "digits-mnist": "scikit-learn 8x8 digits upsampled to 28x28 and MNIST-5k digits, "
                    "unpaired, labelled",
}
_BUILDERS = {"mnist-mnistm": _mnistm, "edges-photos": _edges, "digits-mnist": _digits_mnist}


def load_domain_pair(name: str, split: str = "train", seed: int = 0) -> DomainPair:
    """The domain pair ``name`` (a key of :data:`DOMAIN_PAIRS`) restricted to ``split``.

    ``seed`` is the split seed of the digit sets and the seed of the photo crops; the held-out
    photos (split ``test``) contribute to no other split.
    """
    if name not in _BUILDERS:
        raise UserError(f"unknown domain pair {name!r}",
                        f"use one of {', '.join(DOMAIN_PAIRS)}, or give each side with "
                        "--a SPEC --b SPEC")
    check_split(split)
    return _BUILDERS[name](split, seed)
