"""Image grids: the pictures of samples, reconstructions and interpolations.

A bottom-layer module (it imports only torch, numpy, Pillow and genvision.io), so the
training loop's sample-grid callback and the report both write grids with it."""

from __future__ import annotations

import io
import math
import os

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .storage import atomic_write_bytes


def make_grid(images: Tensor, nrow: int | None = None, padding: int = 2,
              pad_value: float = 1.0) -> np.ndarray:
    """Tile images [N, C, H, W] in [0, 1] into one uint8 array [H', W', C] (C in {1, 3}).

    Args:
        images: float tensor in [0, 1]; values outside are clipped.
        nrow: images per row (default: ceil(sqrt(N))).
        padding: pixels of ``pad_value`` between and around tiles.
    """
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"make_grid expects [N, 1|3, H, W], got {list(images.shape)}")
    n, c, h, w = images.shape
    nrow = nrow or max(1, math.ceil(math.sqrt(n)))
    ncol = math.ceil(n / nrow)
    grid = torch.full((c, ncol * (h + padding) + padding, nrow * (w + padding) + padding),
                      float(pad_value))
    for i, img in enumerate(images.detach().float().cpu().clamp(0, 1)):
        r, col = divmod(i, nrow)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, top:top + h, left:left + w] = img
    return (grid.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


def save_grid(images: Tensor, path: str | os.PathLike, nrow: int | None = None,
              scale: int | None = None) -> None:
    """Write a PNG grid of ``images`` [N, C, H, W] atomically; small images are upscaled
    (nearest neighbour) so that a 28x28 grid is readable in a browser."""
    arr = make_grid(images, nrow=nrow)
    pil = Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr)
    if scale is None:
        side = max(arr.shape[:2])
        scale = max(1, 256 // side + 1) if side < 256 else 1
        scale = min(scale, 4)
    if scale > 1:
        pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


def save_image_array(arr: np.ndarray, path: str | os.PathLike, scale: int | None = None) -> None:
    """Write a uint8 array [H, W, 3] (or [H, W]) as a PNG atomically, upscaled like
    :func:`save_grid` so small images stay readable."""
    pil = Image.fromarray(arr)
    if scale is None:
        side = max(arr.shape[:2])
        scale = min(4, max(1, 256 // side + 1)) if side < 256 else 1
    if scale > 1:
        pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
