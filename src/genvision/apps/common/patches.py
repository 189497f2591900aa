"""Random training patches cut from whole images, and their per-batch augmentation.

Patches are cut once per run from a seeded generator (so a resumed run sees the same
data) and augmented per batch by the 8 flips/rotations of the square, which the training
loop draws from its checkpointed generator. Nearly flat patches (the black sky of the
Hubble field, the border of the retina photo) teach an image-to-image model nothing, so a
patch whose pixel standard deviation is below ``min_std`` is redrawn (up to
:data:`MAX_REDRAWS` times), a common step in super-resolution training pipelines.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ...errors import DataError

MAX_REDRAWS = 10


def sample_patches(images: list[np.ndarray], n: int, size: int, seed: int = 0,
                   min_std: float = 0.0) -> Tensor:
    """Cut ``n`` random ``size x size`` patches: an image uniformly, then a position.

    Args:
        images: uint8 [H, W, 3] arrays; those smaller than ``size`` are skipped.
        min_std: redraw patches whose pixel std (in [0, 1] units) is below this.

    Returns:
        uint8 [n, 3, size, size].
    """
    fit = [im for im in images if min(im.shape[:2]) >= size]
    if not fit:
        raise DataError(f"no training image is at least {size}x{size} pixels",
                        "use larger images or a smaller --patch")
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        for _ in range(MAX_REDRAWS + 1):
            img = fit[rng.integers(len(fit))]
            top = rng.integers(img.shape[0] - size + 1)
            left = rng.integers(img.shape[1] - size + 1)
            patch = img[top:top + size, left:left + size]
            if min_std <= 0 or patch.std() / 255.0 >= min_std:
                break
        out[i] = patch
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def dihedral(x: Tensor, k: int) -> Tensor:
    """Element ``k`` (0..7) of the symmetry group of the square, applied to [..., H, W]."""
    if k >= 4:
        x = x.transpose(-1, -2)
    return torch.rot90(x, k % 4, dims=(-2, -1))


def augment_dihedral(x: Tensor, generator: torch.Generator) -> Tensor:
    """A random flip/rotation per image of the square batch [B, C, S, S]; the randomness
    comes from ``generator`` only (the training loop checkpoints it)."""
    ks = torch.randint(0, 8, (len(x),), generator=generator)
    out = torch.empty_like(x)
    for k in range(8):
        sel = (ks == k).nonzero().flatten()
        if len(sel):
            out[sel] = dihedral(x[sel], k)
    return out
