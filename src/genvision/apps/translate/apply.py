"""``translate apply``: translate image files with a trained run, all checked before any is
written.

Every input is read and checked first (a readable image, at most :data:`MAX_PIXELS`
pixels, read from its header before any pixel is decoded, and the source domain's channel
count: grey or colour), and every output name is checked to be new; only then is anything
translated and written. So a bad file among several writes nothing, and an existing file is
never replaced. The U-Net is fully convolutional: any size translates, but sizes far from
the run's training images are outside what it learnt.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ...errors import DataError, UserError
from ..common.images import GREY_MODES, write_image
from .scores import to8bit

#: the largest image (in pixels) apply translates: the U-Net runs on the whole image at
#: once, and at its default width a 2048 x 2048 image already holds ~0.5 GB per activation
MAX_PIXELS = 2048 * 2048


@dataclass(frozen=True)
class SourceImage:
    """One input: its path, pixels [1, C, H, W] in [0, 1] and the output path."""

    path: Path
    x: torch.Tensor
    output: Path


def read_source(path: str | os.PathLike, channels: int, domain: str) -> torch.Tensor:
    """An image file as float [1, channels, H, W] in [0, 1], checked.

    Raises:
        DataError: missing, not an image, corrupt, or larger than :data:`MAX_PIXELS`.
        UserError: grey where the domain is colour, or colour where it is grey.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"image {p} does not exist", "check the path")
    try:
        with Image.open(p) as im:
            w, h = im.size
            if w * h > MAX_PIXELS:  # refused from the header, before decoding
                raise DataError(f"{p.name} is {w}x{h} pixels, more than apply translates "
                                f"({MAX_PIXELS:,} pixels)",
                                "downscale or crop it to at most 2048x2048")
            im.load()
            grey = im.mode in GREY_MODES
            arr = np.asarray(im.convert("L" if grey else "RGB"))
    except DataError:
        raise
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError,
            Image.DecompressionBombError) as exc:
        raise DataError(f"cannot read image {p} ({type(exc).__name__})",
                        "pass a PNG/JPEG/BMP/WEBP file that opens in an image viewer") from None
    have = 1 if grey else 3
    if have != channels:
        kind = {1: "grey", 3: "colour (RGB)"}
        raise UserError(f"{p.name} is a {kind[have]} image but domain {domain} of this run "
                        f"is {kind[channels]}",
                        f"convert it to {'grey' if channels == 1 else 'RGB'} first, or pass "
                        "an image of the source domain (--direction picks it)")
    x = torch.from_numpy(arr.copy()).float() / 255.0
    return (x[None] if grey else x.permute(2, 0, 1))[None]


def output_paths(images: list[str], out_dir: Path, direction: str) -> list[Path]:
    """``OUT/<stem>_<direction>.png`` for every input; refuses names that exist or repeat."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir} is a file", "pass a folder for the translations")
    outputs = [out_dir / f"{Path(p).stem}_{direction}.png" for p in images]
    seen: set[Path] = set()
    for src, out in zip(images, outputs, strict=True):
        if os.path.lexists(out):
            raise UserError(f"{out} already exists (translate apply never replaces a file)",
                            "move it away, or pass another --out folder")
        if out in seen:
            raise UserError(f"two inputs would both be written to {out.name} ({src})",
                            "rename one of them, or translate them in separate calls")
        seen.add(out)
    return outputs


def check_sources(images: list[str], channels: int, domain: str, out_dir: Path,
                  direction: str) -> list[SourceImage]:
    """Read and check every input and output before anything is written."""
    outputs = output_paths(images, out_dir, direction)
    return [SourceImage(Path(p), read_source(p, channels, domain), o)
            for p, o in zip(images, outputs, strict=True)]


@torch.no_grad()
def translate_files(model, sources: list[SourceImage], direction: str) -> list[Path]:
    """Translate each checked source and write it (grey targets as one-channel PNGs)."""
    device = next(model.parameters()).device
    written = []
    for src in sources:
        out = to8bit(model.translate(src.x.to(device), direction).cpu())[0]
        arr = (out * 255).round().byte().permute(1, 2, 0).numpy()
        src.output.parent.mkdir(parents=True, exist_ok=True)
        image = Image.fromarray(arr[..., 0]) if arr.shape[-1] == 1 else Image.fromarray(arr)
        written.append(write_image(src.output, image))
    return written
