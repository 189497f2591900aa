"""Colorization of large images in overlapping tiles, with bounded memory.

``colorize apply`` on a 4000x4000 photo once ran the U-Net on the whole image (32-channel
float32 activations of 16M pixels: about 6 GB with a tiny model). Here each tile's
lightness is computed, coloured and converted back to 8-bit RGB on its own, and only its
core is written into the uint8 output (:mod:`genvision.apps.common.tiling`), so memory is
one tile's activations plus the input and output images.

Exactness: the U-Net down-samples by ``2**depth``, so tiles start on that grid, and the
overlap is the network's receptive radius, *measured* on a structural copy of it
(:func:`receptive_radius`). Every output pixel then sees exactly the inputs it sees
untiled, and tiled and untiled colours agree up to float rounding.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from ...data.lab import compose, lightness
from ...nn.unet import UNet
from ...progress import progress_bar
from ..common.tiling import round_up, windows

#: tile side in pixels (the U-Net's activations of a 256 + 2 * overlap tile: ~25 MB per
#: layer at width 32)
DEFAULT_TILE = 256


@torch.no_grad()
def receptive_radius(unet: UNet) -> int:
    """Input pixels of context an output pixel of ``unet`` depends on, along one axis.

    Measured, not derived: a float64 copy with every convolution weight 1 and bias 0
    (and no input offset) maps a zero image to zero exactly, and since every layer is
    then monotone with no cancellation (LeakyReLU, tanh, nearest up-sampling, positive
    sums), an output pixel is non-zero exactly when it depends on a lit input pixel. One
    lit column per position on the down-sampling grid gives the worst case.
    """
    probe = copy.deepcopy(unet).double().cpu()
    probe.input_offset = 0.0
    for module in probe.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.ones_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    m, width = unet.multiple, 32 * unet.multiple
    while True:
        centre = width // 2
        x = torch.zeros(m, 1, m, width, dtype=torch.float64)
        for j in range(m):
            x[j, 0, :, centre + j] = 1.0
        reached = probe(x).abs().sum(dim=(1, 2)) > 0  # [m, width]
        cols = [torch.nonzero(reached[j]).flatten() for j in range(m)]
        if all(int(c.min()) > 0 and int(c.max()) < width - 1 for c in cols):
            return max(max(centre + j - int(c.min()), int(c.max()) - centre - j)
                       for j, c in enumerate(cols))
        width *= 2  # the probe was too narrow to see the whole reach


def colorize_tiled(model, rgb: np.ndarray, tile: int = DEFAULT_TILE,
                   overlap: int | None = None, progress: bool = False) -> np.ndarray:
    """Colour the lightness of uint8 RGB [H, W, 3] -> uint8 RGB [H, W, 3], tile by tile.

    Args:
        model: a colorizer (``predict_ab`` and a U-Net ``generator``).
        tile: core side in pixels (rounded up to the U-Net's grid); smaller uses less memory.
        overlap: context pixels on every side (default: the receptive radius, exact).
        progress: a progress bar over the tiles.
    """
    align = model.generator.multiple
    if overlap is None:
        overlap = receptive_radius(model.generator)
    h, w = rgb.shape[:2]
    out = np.empty((h, w, 3), dtype=np.uint8)
    tiles = windows(h, w, tile, overlap, align)
    device = model.device
    for win in progress_bar(tiles, unit="tile", disable=not progress, dynamic_ncols=True,
                            leave=False):
        L = lightness(rgb[win.padded])
        ab = model.predict_ab(L.to(device)).cpu()
        core = (..., *win.core_of_padded())
        out[win.r0:win.r1, win.c0:win.c1] = compose(L[core], ab[core])
    return out


def tile_overlap(model, tile: int = DEFAULT_TILE, overlap: int | None = None
                 ) -> tuple[int, int]:
    """The (tile, overlap) :func:`colorize_tiled` uses, on the U-Net's grid."""
    align = model.generator.multiple
    overlap = receptive_radius(model.generator) if overlap is None else overlap
    return round_up(tile, align), round_up(overlap, align)
