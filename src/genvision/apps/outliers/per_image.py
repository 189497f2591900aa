"""Per-image outlier results: the scores of every image (CSV), a gallery of the most and
least anomalous images of each set (PNG), and whether the background model of the
likelihood ratio is strong enough to be worth its score.

The strength check compares three negative log-likelihoods of the in-distribution test
images: an *independent-pixel* model (each pixel's marginal, fitted on the training
reference with add-one smoothing; it knows nothing about neighbours), the background and
the full model. The ratio score rests on the background explaining the low-level
statistics (Ren et al. 2019, https://arxiv.org/abs/1906.02845), i.e. most of what the
full model gains over independent pixels; a background that explains less than
:data:`WEAK_SHARE` of that gain leaves its own errors in the ratio, and one that beats the
full model leaves nothing but noise.
"""

from __future__ import annotations

import csv
import io
import math
import os
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ...grids import make_grid, save_image_array
from ...storage import atomic_write_text
from ..common.figures import panel_row, vstack, zoom

#: the least share of the full model's gain over independent pixels a useful background
#: explains on the in-distribution test images
WEAK_SHARE = 0.5
#: images per half-row of the gallery (least anomalous | most anomalous)
GALLERY_K = 8


def independent_pixel_nll(train: Tensor, x: Tensor, levels: int) -> Tensor:
    """NLL in nats per image of x [N, C, H, W] under independent per-pixel marginals fitted
    on ``train`` [M, C, H, W] with add-one smoothing (``levels`` = 2 binary, 256 8-bit).

    Returns:
        [N] float64.
    """
    def idx(t: Tensor) -> Tensor:
        return (t.double() * (levels - 1)).round().long().clamp(0, levels - 1).flatten(1)

    counts = torch.ones(levels, train[0].numel(), dtype=torch.float64)
    counts.scatter_add_(0, idx(train), torch.ones_like(idx(train), dtype=torch.float64))
    log_p = (counts / counts.sum(0, keepdim=True)).log()  # [levels, D]
    return -log_p.gather(0, idx(x)).sum(1)


def background_strength(nll_model: Tensor, nll_background: Tensor, nll_independent: Tensor
                        ) -> dict[str, Any]:
    """How much of the model's gain over independent pixels the background explains, on
    the in-distribution test images (each [N] NLL in nats per image), with a verdict.

    Returns:
        JSON-ready: the three mean NLLs, ``share`` and ``warning`` (None when useful).
    """
    m, b, i = (float(t.mean()) for t in (nll_model, nll_background, nll_independent))
    gain = i - m
    share = (i - b) / gain if gain > 0 else math.nan
    out: dict[str, Any] = {"nll_model_nats": m, "nll_background_nats": b,
                           "nll_independent_pixels_nats": i, "share": share, "warning": None}
    if not gain > 0:
        out["warning"] = ("the model is no better than independent pixels on its own test "
                          "images: train it longer before scoring outliers")
    elif share < WEAK_SHARE:
        out["warning"] = (f"the background model is too weak: it explains {share:.0%} of the "
                          f"model's gain over independent pixels (< {WEAK_SHARE:.0%}), so the "
                          "likelihood ratio mostly measures the background's errors; train it "
                          "longer (--background-steps) or pass a trained run (--background "
                          "RUN)")
    elif share > 1:
        out["warning"] = ("the background model fits the test images better than the model "
                          "itself: the likelihood ratio is mostly noise; train the model "
                          "longer or use a smaller background")
    return out


def ratio_vs_nll(ood: dict[str, Any], share: float | None = None) -> str | None:
    """A warning naming the outlier sets on which the ratio scored a lower AUROC than plain
    NLL, or None. ``share`` is the background's strength (:func:`background_strength`):
    below :data:`WEAK_SHARE` (or unknown) the background may be too weak; above it the set
    differs from the data in the low-level statistics the background captures, which the
    ratio cancels by design (uniform noise, whose pixels no image model predicts, is the
    usual case), so NLL or typicality is the score to read for it."""
    worse = [name for name, r in ood.items() if "ratio" in r["metrics"]
             and r["metrics"]["ratio"]["auroc"] < r["metrics"]["nll"]["auroc"]]
    if not worse:
        return None
    sets = ", ".join(worse)
    if share is None or not share >= WEAK_SHARE:
        return (f"the likelihood ratio separates {sets} worse than plain NLL: its background "
                "model may be too weak (--background-steps, or --background RUN)")
    return (f"the likelihood ratio separates {sets} worse than plain NLL although its "
            f"background explains {share:.0%} of the model's gain: {sets} differ(s) from the "
            "data in the low-level statistics the ratio cancels by design; read NLL or the "
            "typicality test for it")


def write_scores_csv(scored: list[Any], path: str | os.PathLike) -> None:
    """One row per image of every set: set, index in the set, NLL bits/dim, every score."""
    names = sorted({k for s in scored for k in s.scores if k != "typicality_batch"})
    buf = io.StringIO()
    out = csv.writer(buf)
    out.writerow(["set", "index", "nll_bits", *names])
    for s in scored:
        for i in range(len(s.nll_bits)):
            row = [s.name, i, f"{float(s.nll_bits[i]):.6g}"]
            row += [f"{float(s.scores[k][i]):.6g}" if k in s.scores else "" for k in names]
            out.writerow(row)
    atomic_write_text(path, buf.getvalue())


def gallery_rows(scored: list[Any], score: str, k: int = GALLERY_K
                 ) -> tuple[Tensor | None, list[str]]:
    """The gallery's images [R * 2k, C, H, W]: one row per set, the ``k`` least anomalous
    (left, most typical first) then the ``k`` most anomalous (right, most anomalous last)
    by ``score``; a set of fewer than ``k`` images is padded black in the middle.

    Returns:
        (images or None, the row names top to bottom; sets without that score skipped).
    """
    rows, names = [], []
    for s in scored:
        values = s.nll_bits if score == "nll" else s.scores.get(score)
        if values is None or s.x is None or len(s.x) == 0:
            continue
        order = torch.argsort(values.double())
        take = min(k, len(order))
        images = s.x[torch.cat([order[:take], order[-take:]])].float().cpu()
        pad = torch.zeros(2 * (k - take), *images.shape[1:])
        rows.append(torch.cat([images[:take], pad, images[take:]]))
        names.append(s.name)
    return (torch.cat(rows) if rows else None), names


def gallery(scored: list[Any], score: str, path: str | os.PathLike,
            k: int = GALLERY_K) -> list[str]:
    """Write :func:`gallery_rows` as a labelled PNG: per set, a panel of the ``k`` least
    anomalous and one of the ``k`` most anomalous images, each titled; returns the row
    names."""
    images, names = gallery_rows(scored, score, k)
    if images is None:
        return names
    side = images.shape[-1]
    factor = max(1, min(8, 48 // side))  # cells of about 48 px: an 8x8 image stays legible
    rows = []
    for r, name in enumerate(names):
        row = images[2 * k * r:2 * k * (r + 1)]
        halves = [zoom(_rgb(make_grid(half, nrow=k)), factor) for half in (row[:k], row[k:])]
        rows.append(panel_row(halves, [f"{name}: least anomalous ({score})",
                                       f"{name}: most anomalous"]))
    save_image_array(vstack(rows), path, scale=1)
    return names


def _rgb(grid: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 1|3] -> [H, W, 3]."""
    return grid.repeat(3, axis=2) if grid.shape[2] == 1 else grid
