"""Inference on large images in overlapping tiles, with bounded memory (every task's).

An image is cut into ``tile x tile`` cores; each core is processed with ``overlap`` pixels
of real image context on every side (less at the image border, where the untiled network
sees its own padding too), and only the core's part of the output is kept. With
``overlap`` at least the network's receptive radius every output pixel sees exactly the
inputs it sees untiled, so tiled and untiled results agree up to float rounding and no
seam can show. A network that down-samples by ``align`` (a U-Net: ``2**depth``) also
needs every tile to start on its grid: ``tile`` and ``overlap`` are then multiples of
``align``.

Memory: one tile's activations plus the caller's output. Super-resolution
(:mod:`genvision.apps.superres.tiling`) and colorization
(:mod:`genvision.apps.colorize.compare`) both tile through here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import torch
from torch import Tensor

from ...errors import UserError
from ...progress import progress_bar

DEFAULT_TILE = 128

TileFn = Callable[[Tensor], Tensor]


@dataclasses.dataclass(frozen=True)
class Window:
    """One tile: its core rows/cols ``[r0, r1) x [c0, c1)`` and the padded region
    ``[pr0, pr1) x [pc0, pc1)`` (core plus context) the network sees."""

    r0: int
    r1: int
    pr0: int
    pr1: int
    c0: int
    c1: int
    pc0: int
    pc1: int

    @property
    def padded(self) -> tuple[slice, slice]:
        """(rows, cols) of the padded region in the input."""
        return slice(self.pr0, self.pr1), slice(self.pc0, self.pc1)

    def core_of_padded(self, scale: int = 1) -> tuple[slice, slice]:
        """(rows, cols) of the core inside the output of the padded region (``scale``:
        output pixels per input pixel)."""
        top, left = (self.r0 - self.pr0) * scale, (self.c0 - self.pc0) * scale
        return (slice(top, top + (self.r1 - self.r0) * scale),
                slice(left, left + (self.c1 - self.c0) * scale))


def check_tiling(tile: int, overlap: int) -> None:
    if tile < 1 or overlap < 0:
        raise UserError(f"--tile must be >= 1 and --overlap >= 0 (got {tile}, {overlap})",
                        "pass e.g. --tile 128")


def round_up(value: int, align: int) -> int:
    """The smallest multiple of ``align`` that is >= ``value``."""
    return -(-value // align) * align


def _spans(size: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """(core start, core end, padded start, padded end) along one axis."""
    out = []
    for start in range(0, size, tile):
        end = min(start + tile, size)
        out.append((start, end, max(0, start - overlap), min(size, end + overlap)))
    return out


def windows(height: int, width: int, tile: int = DEFAULT_TILE, overlap: int = 16,
            align: int = 1) -> list[Window]:
    """The tiles of a ``height x width`` image, row by row; ``tile`` and ``overlap`` are
    rounded up to multiples of ``align`` (so every padded region starts on its grid)."""
    check_tiling(tile, overlap)
    tile, overlap = round_up(tile, align), round_up(overlap, align)
    return [Window(r0, r1, pr0, pr1, c0, c1, pc0, pc1)
            for r0, r1, pr0, pr1 in _spans(height, tile, overlap)
            for c0, c1, pc0, pc1 in _spans(width, tile, overlap)]


def iter_tiles(fn: TileFn, x: Tensor, scale: int, tile: int = DEFAULT_TILE,
               overlap: int = 16, progress: bool = False, align: int = 1
               ) -> Iterator[tuple[int, int, Tensor]]:
    """Yield ``(top, left, out)``: ``fn`` of each core, placed at (top, left) in the output.

    Args:
        fn: input [1, C, h, w] -> output [1, C', s*h, s*w] (called under ``torch.no_grad``).
        x: [1, C, H, W] on the model's device.
        scale: output pixels per input pixel (1: same size).
        tile: core side in input pixels; overlap: context in input pixels on every side.
        align: the network's down-sampling factor (see :func:`windows`).
    """
    tiles = windows(x.shape[-2], x.shape[-1], tile, overlap, align)
    bar = progress_bar(total=len(tiles), unit="tile", disable=not progress, dynamic_ncols=True,
                       leave=False)
    with torch.no_grad(), bar:
        for win in tiles:
            out = fn(x[(..., *win.padded)])
            yield win.r0 * scale, win.c0 * scale, out[(..., *win.core_of_padded(scale))]
            bar.update(1)
