"""Super-resolution of large images in overlapping tiles, with bounded memory.

The low-resolution image is cut into ``tile x tile`` cores; each core is run with
``overlap`` pixels of real image context on every side (less at the image border, where
the untiled network sees its zero padding too), and only the core's part of the output is
kept. With ``overlap`` at least the network's receptive radius (the default) every output
pixel sees exactly the inputs it sees untiled, so tiled and untiled results agree up to
float rounding and no seam can show.

The tiles come from :mod:`genvision.apps.common.tiling` (shared with colorization).
Memory: one tile's activations plus the output. :func:`upscale_to_pil` pastes each tile
into the final 8-bit image as it is done, so a 4000x3000 photo at x4 (a 16000x12000
output, 768 MB as a Pillow RGB image) never holds the output as float32 (2.3 GB).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ..common.tiling import DEFAULT_TILE, TileFn, _spans, iter_tiles

__all__ = ["DEFAULT_TILE", "_spans", "image_tensor", "iter_tiles", "to_uint8", "upscale_array",
           "upscale_to_pil", "upscale_tensor"]

UpscaleFn = TileFn


def upscale_tensor(model, lr: Tensor, tile: int | None = DEFAULT_TILE,
                   overlap: int | None = None, progress: bool = False) -> Tensor:
    """SR of LR [N, C, H, W] as one float tensor [N, C, s*H, s*W] (``tile=None``: untiled)."""
    scale = model.scale
    device = model.device
    if tile is None:
        with torch.no_grad():
            return model.upscale(lr.to(device)).cpu()
    overlap = model.receptive_radius if overlap is None else overlap
    n, c, h, w = lr.shape
    out = torch.empty(n, c, h * scale, w * scale)
    for i in range(n):
        for top, left, t in iter_tiles(model.upscale, lr[i:i + 1].to(device), scale, tile,
                                       overlap, progress):
            out[i, :, top:top + t.shape[-2], left:left + t.shape[-1]] = t[0].cpu()
    return out


def to_uint8(x: Tensor) -> np.ndarray:
    """[1, 3, H, W] in [0, 1] -> uint8 [H, W, 3] (rounded)."""
    return (x[0].clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def image_tensor(image: np.ndarray, device: torch.device | str = "cpu") -> Tensor:
    """uint8 [H, W, 3] -> float [1, 3, H, W] in [0, 1]."""
    return torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1)[None].to(
        device).float() / 255.0


def upscale_to_pil(model, image: np.ndarray, tile: int = DEFAULT_TILE,
                   overlap: int | None = None, progress: bool = False) -> Image.Image:
    """SR of uint8 [H, W, 3] pasted tile by tile into an 8-bit Pillow image."""
    scale = model.scale
    overlap = model.receptive_radius if overlap is None else overlap
    lr = image_tensor(image, model.device)
    h, w = image.shape[:2]
    canvas = Image.new("RGB", (w * scale, h * scale))
    for top, left, t in iter_tiles(model.upscale, lr, scale, tile, overlap, progress):
        canvas.paste(Image.fromarray(to_uint8(t)), (left, top))
    return canvas


def upscale_array(model, image: np.ndarray, tile: int = DEFAULT_TILE,
                  overlap: int | None = None, progress: bool = False) -> np.ndarray:
    """SR of uint8 [H, W, 3] -> uint8 [s*H, s*W, 3], in tiles."""
    return np.asarray(upscale_to_pil(model, image, tile, overlap, progress))
