"""The lecture's comparison: bicubic vs SRResNet vs SRGAN on whole images, PSNR and SSIM.

For every image: crop to a multiple of the scale, degrade (:mod:`.degrade`), upscale with
each method (in tiles), round to 8 bits and score against the original with
:func:`genvision.tasks.common.metrics.fidelity` (Y channel and RGB, ``scale`` border pixels
cropped). Outputs: a table (method, PSNR dB, SSIM per image and the mean), ``compare.json``
with every number and its protocol, and a figure of a zoomed crop per image,
bicubic | SRResNet | SRGAN | original, the crop placed where bicubic errs most.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...data.degrade import DEGRADATION_SHORT, Bicubic, downscale, mod_crop
from ...errors import DataError
from ..common import figures
from ..common.images import NamedImage, write_comparison
from ..common.metrics import MIN_SCORED_SIDE, fidelity, protocol
from .tiling import DEFAULT_TILE, image_tensor, to_uint8, upscale_tensor

LABELS = {"bicubic": "bicubic", "srresnet": "SRResNet", "srgan": "SRGAN", "original": "original"}
CROP = 96  # side of the zoomed crop, in high-resolution pixels
ZOOM_TO = 240  # display side of the zoomed crop


def min_side(scale: int) -> int:
    """Smallest image side that can be scored at ``scale`` (SSIM's window after the border)."""
    side = MIN_SCORED_SIDE + 2 * scale
    return side + (-side) % scale


def check_size(img: NamedImage, scale: int) -> None:
    need = min_side(scale)
    h, w = img.image.shape[:2]
    if min(h, w) < need:
        raise DataError(f"image {img.name} ({w}x{h}) is too small to evaluate at x{scale}: it "
                        f"needs at least {need}x{need} pixels",
                        "use larger images (the image is down-sampled by the scale, then "
                        f"{scale} border pixels are cropped before scoring)")
    if img.grey:
        raise DataError(f"image {img.name} is greyscale but the super-resolution models "
                        "work on colour images", "convert it to RGB first")


def compare_methods(models: dict[str, Any], images: list[NamedImage], scale: int,
                    tile: int | None = DEFAULT_TILE, progress: bool = False
                    ) -> tuple[dict[str, Any], dict[str, list[np.ndarray]]]:
    """Score every method on every image.

    Args:
        models: name -> model (``bicubic`` is added first when missing).

    Returns:
        ``(results, outputs)``: results is JSON-ready (per image, mean per method,
        protocol); outputs maps image name -> [each method's uint8 output..., original].
    """
    for img in images:
        check_size(img, scale)
    models = {"bicubic": Bicubic(scale), **models}
    per_image, outputs = [], {}
    for img in images:
        hr = mod_crop(image_tensor(img.image), scale)
        lr = downscale(hr, scale)
        hr8 = to_uint8(hr)
        row: dict[str, Any] = {"image": img.name, "size": list(hr8.shape[:2]), "methods": {}}
        outputs[img.name] = []
        for name, model in models.items():
            t0 = time.perf_counter()
            with torch.no_grad():
                sr8 = to_uint8(upscale_tensor(model, lr, tile=tile, progress=progress))
            seconds = time.perf_counter() - t0
            row["methods"][name] = {**fidelity(sr8, hr8, border=scale), "seconds": seconds}
            outputs[img.name].append(sr8)
        outputs[img.name].append(hr8)
        per_image.append(row)
    results = {"scale": scale, "methods": list(models), "images": per_image,
               "mean": _means(per_image, list(models)), "protocol": {
                   **protocol(scale), "degradation": DEGRADATION_SHORT}}
    return results, outputs


def _means(rows: list[dict[str, Any]], methods: list[str]) -> dict[str, dict[str, float]]:
    keys = ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb")
    return {m: {k: float(np.mean([r["methods"][m][k] for r in rows])) for k in keys}
            for m in methods}


def table(results: dict[str, Any]) -> str:
    """Markdown: method x (image, mean), PSNR dB / SSIM on Y and on RGB."""
    header = ["method", "image", "PSNR-Y (dB)", "SSIM-Y", "PSNR-RGB (dB)", "SSIM-RGB"]
    rows = []
    for m in results["methods"]:
        for r in results["images"]:
            s = r["methods"][m]
            rows.append([LABELS.get(m, m), r["image"], figures.fmt(s["psnr_y"], 2),
                         figures.fmt(s["ssim_y"], 4), figures.fmt(s["psnr_rgb"], 2),
                         figures.fmt(s["ssim_rgb"], 4)])
        mean = results["mean"][m]
        rows.append([f"**{LABELS.get(m, m)}**", "**mean**", figures.fmt(mean["psnr_y"], 2),
                     figures.fmt(mean["ssim_y"], 4), figures.fmt(mean["psnr_rgb"], 2),
                     figures.fmt(mean["ssim_rgb"], 4)])
    p = results["protocol"]
    note = (f"x{results['scale']}; Y = {p['y']}; RGB = {p['rgb']}; border: {p['border']}; "
            f"SSIM: {p['ssim']}; degradation: {p['degradation']}")
    return figures.markdown_table(header, rows) + "\n\n" + note + "\n"


def crop_box(bicubic: np.ndarray, original: np.ndarray, side: int) -> tuple[int, int]:
    """(top, left) of the ``side`` x ``side`` window where bicubic's error is largest."""
    err = np.abs(bicubic.astype(np.float64) - original.astype(np.float64)).sum(axis=2)
    h, w = err.shape
    side = min(side, h, w)
    integral = np.pad(err.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = (integral[side:, side:] - integral[:-side, side:] - integral[side:, :-side]
            + integral[:-side, :-side])
    top, left = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(top), int(left)


def figure(results: dict[str, Any], outputs: dict[str, list[np.ndarray]]) -> np.ndarray:
    """One row per image: zoomed crops of each method and the original, with scores."""
    names = [*results["methods"], "original"]
    rows = []
    for r in results["images"]:
        outs = outputs[r["image"]]
        side = min(CROP, *outs[-1].shape[:2])
        top, left = crop_box(outs[0], outs[-1], side)
        zoom = max(1, ZOOM_TO // side)
        crops = [figures.zoom(o[top:top + side, left:left + side], zoom) for o in outs]
        labels = []
        for m in names:
            s = r["methods"].get(m)
            score = f" {s['psnr_y']:.2f} dB / {s['ssim_y']:.3f}" if s else ""
            labels.append(f"{r['image']}: {LABELS.get(m, m)}{score}")
        rows.append(figures.panel_row(crops, labels))
    return figures.vstack(rows)


def write_outputs(results: dict[str, Any], outputs: dict[str, list[np.ndarray]],
                  out_dir: Path) -> dict[str, Path]:
    """compare.md, compare.json and compare.png in ``out_dir``."""
    return write_comparison(out_dir, results, table(results), figure(results, outputs))
