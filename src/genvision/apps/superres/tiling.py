"""Super-resolution of large images in overlapping tiles, with bounded memory.

The low-resolution image is cut into ``tile x tile`` cores; each core is run with
``overlap`` pixels of real image context on every side (less at the image border, where
the untiled network sees its zero padding too), and only the core's part of the output is
kept. With ``overlap`` at least the network's receptive radius (the default) every output
pixel sees exactly the inputs it sees untiled, so tiled and untiled results agree up to
float rounding and no seam can show.

Memory: one tile's activations plus the output. :func:`upscale_to_pil` pastes each tile
into the final 8-bit image as it is done, so a 4000x3000 photo at x4 (a 16000x12000
output, 768 MB as a Pillow RGB image) never holds the output as float32 (2.3 GB).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from tqdm.auto import tqdm

from ...errors import UserError

DEFAULT_TILE = 128

UpscaleFn = Callable[[Tensor], Tensor]


def _spans(size: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """(core start, core end, padded start, padded end) along one axis."""
    out = []
    for start in range(0, size, tile):
        end = min(start + tile, size)
        out.append((start, end, max(0, start - overlap), min(size, end + overlap)))
    return out


def iter_tiles(fn: UpscaleFn, lr: Tensor, scale: int, tile: int = DEFAULT_TILE,
               overlap: int = 16, progress: bool = False) -> Iterator[tuple[int, int, Tensor]]:
    """Yield ``(top, left, out)``: the SR of each core, placed at (top, left) in the output.

    Args:
        fn: LR [1, C, h, w] -> SR [1, C, s*h, s*w] (called under ``torch.no_grad``).
        lr: [1, C, H, W] float in [0, 1] on the model's device.
        tile: core side in LR pixels; overlap: context in LR pixels on every side.
    """
    if tile < 1 or overlap < 0:
        raise UserError(f"--tile must be >= 1 and --overlap >= 0 (got {tile}, {overlap})",
                        "pass e.g. --tile 128")
    h, w = lr.shape[-2:]
    rows, cols = _spans(h, tile, overlap), _spans(w, tile, overlap)
    bar = tqdm(total=len(rows) * len(cols), unit="tile", disable=not progress,
               dynamic_ncols=True, leave=False)
    with torch.no_grad(), bar:
        for r0, r1, pr0, pr1 in rows:
            for c0, c1, pc0, pc1 in cols:
                out = fn(lr[..., pr0:pr1, pc0:pc1])
                top, left = (r0 - pr0) * scale, (c0 - pc0) * scale
                yield r0 * scale, c0 * scale, out[..., top:top + (r1 - r0) * scale,
                                                  left:left + (c1 - c0) * scale]
                bar.update(1)


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
