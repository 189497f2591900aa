"""Regression vs GAN colorization on whole images: PSNR, SSIM, colourfulness and a grid.

Each image's L channel is colored by every model; the result (L kept, ab predicted,
converted to 8-bit RGB) is scored against the true colour image with PSNR and SSIM on RGB
(:func:`genvision.tasks.common.metrics.fidelity`, no border) and with Hasler and
Suesstrunk's colourfulness, which shows the regression model's washed-out colours next to
the GAN's. ``grey`` (ab = 0) is the no-colour baseline. The figure has one row per image:
grey input | regression | GAN | truth.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...data.lab import compose, lightness
from ..common import figures
from ..common.images import NamedImage, write_comparison
from ..common.metrics import colourfulness, fidelity

LABELS = {"grey": "grey input (ab = 0)", "regression": "regression (L1)",
          "gan": "GAN (pix2pix)", "truth": "truth"}
PANEL_WIDTH = 256
PROTOCOL = {"psnr_ssim": "RGB in [0, 1] against the true colour image, no border, outputs "
                         "rounded to 8 bits; SSIM 11x11 Gaussian, sigma 1.5 (scikit-image)",
            "colourfulness": "Hasler and Suesstrunk 2003, M on 0..255 RGB",
            "input": "L of CIE Lab (D65) of the true image"}


def colorize_image(model, rgb: np.ndarray) -> np.ndarray:
    """Colour the lightness of uint8 RGB [H, W, 3] -> uint8 RGB (L kept, ab predicted)."""
    L = lightness(rgb)
    if model is None:
        return compose(L, torch.zeros(1, 2, *L.shape[-2:]))
    ab = model.predict_ab(L.to(model.device)).cpu()
    return compose(L, ab)


def compare_colorizers(models: dict[str, Any], images: list[NamedImage]
                       ) -> tuple[dict[str, Any], dict[str, list[np.ndarray]]]:
    """Score ``grey`` and every model on every image; outputs end with the truth."""
    methods = ["grey", *models]
    rows, outputs = [], {}
    for img in images:
        row: dict[str, Any] = {"image": img.name, "size": list(img.image.shape[:2]),
                               "truth_colourfulness": colourfulness(img.image), "methods": {}}
        outputs[img.name] = []
        for name in methods:
            out = colorize_image(models.get(name), img.image)
            s = fidelity(out, img.image)
            row["methods"][name] = {"psnr_rgb": s["psnr_rgb"], "ssim_rgb": s["ssim_rgb"],
                                    "colourfulness": colourfulness(out)}
            outputs[img.name].append(out)
        outputs[img.name].append(img.image)
        rows.append(row)
    mean = {m: {k: float(np.mean([r["methods"][m][k] for r in rows]))
                for k in ("psnr_rgb", "ssim_rgb", "colourfulness")} for m in methods}
    mean["truth"] = {"colourfulness": float(np.mean([r["truth_colourfulness"] for r in rows]))}
    return {"methods": methods, "images": rows, "mean": mean, "protocol": PROTOCOL}, outputs


def table(results: dict[str, Any]) -> str:
    header = ["method", "image", "PSNR-RGB (dB)", "SSIM-RGB", "colourfulness"]
    out = []
    for m in results["methods"]:
        for r in results["images"]:
            s = r["methods"][m]
            out.append([LABELS.get(m, m), r["image"], figures.fmt(s["psnr_rgb"], 2),
                         figures.fmt(s["ssim_rgb"], 4), f"{s['colourfulness']:.1f}"])
        s = results["mean"][m]
        out.append([f"**{LABELS.get(m, m)}**", "**mean**", figures.fmt(s["psnr_rgb"], 2),
                    figures.fmt(s["ssim_rgb"], 4), f"{s['colourfulness']:.1f}"])
    for r in results["images"]:
        out.append(["truth", r["image"], "", "", f"{r['truth_colourfulness']:.1f}"])
    p = results["protocol"]
    return (figures.markdown_table(header, out) + f"\n\nPSNR/SSIM: {p['psnr_ssim']}; "
            f"colourfulness: {p['colourfulness']}; input: {p['input']}\n")


def figure(results: dict[str, Any], outputs: dict[str, list[np.ndarray]]) -> np.ndarray:
    names = [*results["methods"], "truth"]
    rows = []
    for r in results["images"]:
        panels = [figures.fit_width(o, PANEL_WIDTH) for o in outputs[r["image"]]]
        labels = []
        for m in names:
            s = r["methods"].get(m)
            c = s["colourfulness"] if s else r["truth_colourfulness"]
            labels.append(f"{LABELS.get(m, m)}, M={c:.0f}")
        rows.append(figures.panel_row(panels, labels))
    return figures.vstack(rows)


def write_outputs(results: dict[str, Any], outputs: dict[str, list[np.ndarray]],
                  out_dir: Path) -> dict[str, Path]:
    """compare.md, compare.json and compare.png in ``out_dir``."""
    return write_comparison(out_dir, results, table(results), figure(results, outputs))
