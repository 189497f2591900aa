"""Training data of the image-to-image tasks: patches of the train split's whole images.

The training patches come only from the ``train`` split's images and the validation
patches only from the ``val`` split's; the ``test`` ("heldout") images are never read
while training (a test replaces their loader with one that fails).
"""

from __future__ import annotations

import dataclasses
from dataclasses import field
from typing import Any

from torch import Tensor

from ...errors import DataError
from .images import split_images, split_names
from .patches import sample_patches


@dataclasses.dataclass
class PatchOptions:
    """Where training patches come from and how many (one flag per field)."""

    data: str = field(default="photos", metadata={
        "help": "photos (scikit-image colour photos, split by photo) or folder:DIR"})
    patch: int = field(default=64, metadata={
        "help": "training patch side in target pixels (rounded down to a multiple of the "
                "scale)"})
    patches: int = field(default=4096, metadata={"help": "training patches cut once per run"})
    val_patches: int = field(default=256, metadata={"help": "validation patches (val split)"})
    min_std: float = field(default=0.04, metadata={
        "help": "redraw nearly flat patches whose pixel std is below this (0 = keep all)"})
    split_seed: int = field(default=0, metadata={"help": "seed of a folder's 80/10/10 split"})

    def __post_init__(self) -> None:
        if self.patch < 8 or self.patches < 1 or self.val_patches < 0 or self.min_std < 0:
            raise ValueError("need patch >= 8, patches >= 1, val_patches >= 0, min_std >= 0")


def build_patches(opts: PatchOptions, size: int, seed: int
                  ) -> tuple[Tensor, Tensor | None, dict[str, Any]]:
    """uint8 train patches [N, 3, size, size], val patches (or None) and the data protocol."""
    train_images = split_images(opts.data, "train", opts.split_seed)
    x = sample_patches([im.image for im in train_images], opts.patches, size, seed, opts.min_std)
    val_x, val_names = None, []
    if opts.val_patches:
        try:
            val_images = split_images(opts.data, "val", opts.split_seed)
            val_x = sample_patches([im.image for im in val_images], opts.val_patches, size,
                                   seed + 1, opts.min_std)
            val_names = [im.name for im in val_images]
        except DataError:
            val_x = None  # a folder too small for a val split trains without validation
    protocol = {"source": opts.data, "split": "by image", "split_seed": opts.split_seed,
                "train_images": [im.name for im in train_images], "val_images": val_names,
                "heldout_images": _heldout(opts), "patch": size, "patches": opts.patches,
                "val_patches": 0 if val_x is None else opts.val_patches,
                "min_std": opts.min_std, "patch_seed": seed,
                "augmentation": "random flip/rotation (8 symmetries of the square)"}
    return x, val_x, protocol


def _heldout(opts: PatchOptions) -> list[str]:
    try:
        return split_names(opts.data, "test", opts.split_seed)
    except DataError:
        return []
