"""Side-by-side figures and tables of the image-to-image comparisons."""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

LABEL_HEIGHT = 16
LABEL_FONT_SIZE = 12
PAD = 4
BACKGROUND = 255


@functools.cache
def _label_font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The labels' font, loaded once. An explicit size: Pillow's implicit default font
    drops some spaces ("held-outsource")."""
    return ImageFont.load_default(size=LABEL_FONT_SIZE)


def labelled(image: np.ndarray, label: str) -> np.ndarray:
    """uint8 [H, W, 3] with a white strip above it holding ``label``."""
    h, w = image.shape[:2]
    canvas = Image.new("RGB", (w, h + LABEL_HEIGHT), (BACKGROUND,) * 3)
    canvas.paste(Image.fromarray(image), (0, LABEL_HEIGHT))
    ImageDraw.Draw(canvas).text((2, 1), label, fill=(0, 0, 0), font=_label_font())
    return np.asarray(canvas)


def zoom(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement, so single pixels stay visible."""
    return image.repeat(factor, axis=0).repeat(factor, axis=1) if factor > 1 else image


def hstack(images: list[np.ndarray], pad: int = PAD) -> np.ndarray:
    """Images side by side (tops aligned), ``pad`` white pixels between and around."""
    h = max(im.shape[0] for im in images) + 2 * pad
    w = sum(im.shape[1] for im in images) + pad * (len(images) + 1)
    out = np.full((h, w, 3), BACKGROUND, dtype=np.uint8)
    x = pad
    for im in images:
        out[pad:pad + im.shape[0], x:x + im.shape[1]] = im
        x += im.shape[1] + pad
    return out


def vstack(rows: list[np.ndarray]) -> np.ndarray:
    """Rows one below the other, left-aligned, padded white to the widest."""
    w = max(r.shape[1] for r in rows)
    out = np.full((sum(r.shape[0] for r in rows), w, 3), BACKGROUND, dtype=np.uint8)
    y = 0
    for r in rows:
        out[y:y + r.shape[0], :r.shape[1]] = r
        y += r.shape[0]
    return out


def panel_row(images: list[np.ndarray], labels: list[str]) -> np.ndarray:
    """One row of labelled panels."""
    return hstack([labelled(im, lab) for im, lab in zip(images, labels, strict=True)])


def fit_width(image: np.ndarray, width: int) -> np.ndarray:
    """Shrink (never enlarge) an image to at most ``width`` pixels wide."""
    if image.shape[1] <= width:
        return image
    h = max(1, round(image.shape[0] * width / image.shape[1]))
    return np.asarray(Image.fromarray(image).resize((width, h), Image.BICUBIC))


def fmt(value: float, digits: int) -> str:
    return "inf" if math.isinf(value) else f"{value:.{digits}f}"


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
