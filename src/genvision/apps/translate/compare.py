"""pix2pix vs CycleGAN vs doing nothing, on held-out images, in both directions.

For each direction (A -> B, B -> A) every trained method and the identity baseline are
scored on the same test images (:mod:`.scores`): label preservation (labelled pairs),
PSNR / SSIM against the true counterpart (paired pairs), FID / KID in the target domain
and the cycle error. pix2pix translates A -> B only; it is the paired upper bound of a
CycleGAN trained on the same data without the pairs. The figure shows, per direction, a
row of sources, a row per method and the true counterparts (where known).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ...errors import UserError
from ..common import figures
from ..common.images import write_comparison
from .data import PairOptions, Sides, load_sides
from .scores import (
    PROTOCOL,
    DomainClassifier,
    domain_classifier,
    identity_outputs,
    score_direction,
    translate_all,
)

DIRECTIONS = ("a2b", "b2a")
REVERSE = {"a2b": "b2a", "b2a": "a2b"}
LABELS = {"identity": "identity (do nothing)", "pix2pix": "pix2pix (paired)",
          "cyclegan": "CycleGAN (unpaired)"}
#: images per row of the figure, and their displayed side (nearest-neighbour zoom)
FIGURE_IMAGES, FIGURE_SIDE = 8, 64
#: table columns: result key -> (header, decimals, scale)
COLUMNS = {"label_accuracy": ("label acc. (%)", 1, 100.0), "psnr": ("PSNR (dB)", 2, 1.0),
           "ssim": ("SSIM", 4, 1.0), "fid": ("FID", 2, 1.0), "kid_mean": ("KID", 3, 1.0),
           "cycle_l1": ("cycle L1", 4, 1.0)}


def heldout_sides(opts: PairOptions, images: str, n: int) -> Sides:
    """``n`` images (seeded) of each side of the test split (``heldout``) or val split."""
    if images in ("heldout", "test"):
        split = "test"
    elif images == "val":
        split = "val"
    else:
        raise UserError(f"--images {images!r} is not a split of the run's pair",
                        "use heldout (the test split, never trained on) or val")
    if n < 2:
        raise UserError(f"--n {n} is too few images to score", "pass --n 2 or more")
    sides = load_sides(opts, split)
    if min(len(sides.a), len(sides.b)) < 2:
        raise UserError(f"the {split} split of {opts.name} has too few images "
                        f"({len(sides.a)} A, {len(sides.b)} B)", "give larger sources")
    # a seeded subset, not the first n: a split keeps its source's order, and embedded
    # digit sets are sorted by class; a paired pair keeps the same indices on both sides
    rng = np.random.default_rng(0)
    pick_a = np.sort(rng.permutation(len(sides.a))[:n])
    pick_b = pick_a if sides.paired else np.sort(rng.permutation(len(sides.b))[:n])
    return Sides(sides.a.subset(pick_a), sides.b.subset(pick_b), sides.paired,
                 sides.description)


def classifiers(opts: PairOptions, test: Sides, steps: int, seed: int = 0,
                cache: Path | None = None) -> dict[str, DomainClassifier]:
    """The classifier of each domain, trained on its train split (never on test), or
    reused from ``cache`` when the same one was trained before."""
    train = load_sides(opts, "train")
    return {"a": domain_classifier(train.a, test.a, steps, seed, cache),
            "b": domain_classifier(train.b, test.b, steps, seed, cache)}


def compare_translations(models: dict[str, Any], test: Sides,
                         clfs: dict[str, DomainClassifier]
                         ) -> tuple[dict[str, Any], dict[str, dict[str, Tensor]]]:
    """Score the identity baseline and every model in both directions.

    Args:
        models: label -> trained Pix2Pix / CycleGAN.
        test: the held-out images. clfs: ``a``/``b`` -> that domain's classifier.

    Returns:
        (results for JSON, direction -> row label -> the figure's images [k, C, H, W]).
    """
    rows, outputs = [], {}
    for direction in DIRECTIONS:
        src, tgt = (test.a, test.b) if direction == "a2b" else (test.b, test.a)
        clf = clfs["b" if direction == "a2b" else "a"]
        out, back = identity_outputs(src, tgt.shape[0])
        show = _spread(len(src))
        pictures = {"source": src.to_float()[show], "identity": out[show]}
        rows.append({"direction": direction, "method": "identity",
                     **score_direction(out, src, tgt, clf, test.paired, back)})
        for label, model in models.items():
            if direction == "b2a" and model.name != "cyclegan":
                continue  # pix2pix learns A -> B only
            out = translate_all(model, src.to_float(), direction)
            back = (translate_all(model, out, REVERSE[direction])
                    if model.name == "cyclegan" else None)
            rows.append({"direction": direction, "method": label, "model": model.name,
                         **score_direction(out, src, tgt, clf, test.paired, back)})
            pictures[label] = out[show]
        if test.paired:
            pictures["truth"] = tgt.to_float()[show]
        outputs[direction] = pictures
    results = {"methods": ["identity", *models], "rows": rows, "protocol": PROTOCOL,
               "n": {"a": len(test.a), "b": len(test.b)}, "paired": test.paired,
               "labelled": test.labelled,
               "classifiers": {k: {"what": c.what, "task": c.task, "test_accuracy": c.accuracy,
                                   "learned": c.learned} for k, c in clfs.items()}}
    return results, outputs


def _spread(n: int) -> torch.Tensor:
    """Indices of the figure's images, spread over the n test images (which keep their
    source's order, often by class)."""
    return torch.linspace(0, n - 1, min(FIGURE_IMAGES, n)).round().long().unique()


def _label(method: str) -> str:
    run, _, name = method.rpartition("/")
    return f"{run}/{LABELS.get(name, name)}" if run else LABELS.get(method, method)


def table(results: dict[str, Any]) -> str:
    """The Markdown table: one row per direction and method, identity first."""
    shown = [k for k in COLUMNS if any(k in r for r in results["rows"])]
    header = ["direction", "method", *[COLUMNS[k][0] for k in shown]]
    lines = []
    for r in results["rows"]:
        cells = []
        for k in shown:
            _, digits, scale = COLUMNS[k]
            cells.append(figures.fmt(r[k] * scale, digits) if k in r else "—")
        arrow = "A → B" if r["direction"] == "a2b" else "B → A"
        lines.append([arrow, _label(r["method"]), *cells])
    notes = [f"Held-out images: {results['n']['a']} of A, {results['n']['b']} of B "
             f"({results.get('images_spec', 'heldout')} split of {results.get('pair', '?')})."]
    for side, c in results["classifiers"].items():
        acc = c["test_accuracy"]
        score = f"; its accuracy on the held-out {side.upper()} images: {100 * acc:.1f}%" \
            if acc is not None else ""
        unlearned = (" It is near chance, so its features say nothing about the domain: "
                     f"FID/KID of translations into {side.upper()} are not reported."
                     if c.get("learned") is False else "")
        notes.append(f"Domain {side.upper()} classifier (labels and FID/KID features of "
                     f"translations into {side.upper()}): {c['what']}{score}.{unlearned}")
    p = results["protocol"]
    notes += [f"Label preservation: {p['label_preservation']}.", f"PSNR/SSIM: {p['psnr_ssim']}.",
              f"FID/KID: {p['fid_kid']}.", f"Cycle: {p['cycle']}.", f"Identity: {p['identity']}."]
    return figures.markdown_table(header, lines) + "\n\n" + "\n".join(notes) + "\n"


def _strip(images: Tensor) -> np.ndarray:
    """[k, C, H, W] in [0, 1] -> one uint8 RGB row of the images, zoomed."""
    arr = (images.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    factor = max(1, FIGURE_SIDE // max(arr.shape[1:3]))
    return figures.hstack([figures.zoom(im, factor) for im in arr], pad=2)


def figure(outputs: dict[str, dict[str, Tensor]]) -> np.ndarray:
    """Per direction: sources, each method's translations, the true counterparts."""
    rows = []
    for direction, pictures in outputs.items():
        src, tgt = ("A", "B") if direction == "a2b" else ("B", "A")
        for key, images in pictures.items():
            name = {"source": f"{src}: held-out source",
                    "truth": f"{tgt}: true counterpart"}.get(key, f"{src} -> {tgt}: "
                                                              f"{_label(key)}")
            rows.append(figures.labelled(_strip(images), name))
        rows.append(np.full((8, 8, 3), figures.BACKGROUND, dtype=np.uint8))
    return figures.vstack(rows[:-1])


def write_outputs(results: dict[str, Any], outputs: dict[str, dict[str, Tensor]],
                  out_dir: Path) -> dict[str, Path]:
    """compare.md, compare.json and compare.png in ``out_dir``."""
    return write_comparison(out_dir, results, table(results), figure(outputs))
