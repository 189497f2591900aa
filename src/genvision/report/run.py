"""Read the pieces of a run directory for the report, tolerating any of them being absent.

A run directory (``runs/NAME/``) holds ``run.json``, ``metrics.jsonl`` (one record per
logged step), an optional ``metrics.json`` (evaluations with their protocol) and PNG
figures. Nothing here raises for a missing or corrupt piece: readers return ``None`` or an
empty list and the caller decides what note to show.
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..models.base import get_model_class, list_models
from ..runs.layout import RunLayout

#: keys of a metrics.jsonl record that are bookkeeping, not curves to plot
BOOKKEEPING_KEYS = frozenset({"step", "epoch", "time_s", "split", "images_per_s", "lr"})

_FAMILIES: dict[str, tuple[str, ...]] = {
    "fully visible (autoregressive)": (
        "nade", "made", "pixelcnn", "gated_pixelcnn", "pixelrnn", "row_lstm", "rowlstm"),
    "explicit latent variable": ("vae", "beta_vae", "cvae", "conditional_vae", "vqvae", "vq_vae"),
    "change of variables (flow)": ("realnvp", "glow", "flow"),
    "implicit (GAN)": ("gan", "dcgan", "wgan", "wgan_gp", "sngan", "hinge_gan", "cgan", "cdcgan"),
    "diffusion": ("ddpm", "ddim", "diffusion"),
}
# substrings tried, in order, when the model name is not listed above
_FAMILY_HINTS = (("pixel", "fully visible (autoregressive)"), ("gan", "implicit (GAN)"),
                 ("diffusion", "diffusion"), ("vae", "explicit latent variable"),
                 ("flow", "change of variables (flow)"))

_STEP_RE = re.compile(r"step[-_]?(\d+)")


def read_json_or_none(path: str | os.PathLike) -> Any:
    """Parse a JSON file; ``None`` when it is missing or not valid JSON (with a warning)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        warnings.warn(f"{path}: not readable JSON ({exc}); ignored", stacklevel=2)
        return None


def read_metrics(source: str | os.PathLike | Iterable[dict[str, Any]] | None) -> list[dict]:
    """Records of a ``metrics.jsonl`` file (or an iterable of dicts), oldest first.

    Blank lines are ignored; malformed lines (bad JSON, not an object, e.g. a line cut off
    while training was writing it) are skipped with one warning naming how many and where.
    A missing file gives ``[]``.
    """
    if source is None:
        return []
    if not isinstance(source, (str, os.PathLike)):
        return [dict(r) for r in source if isinstance(r, dict)]
    path = Path(source)
    if not path.is_file():
        return []
    records, bad = [], []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                rec = None
            if isinstance(rec, dict):
                records.append(rec)
            else:
                bad.append(lineno)
    if bad:
        shown = ", ".join(map(str, bad[:5])) + (", ..." if len(bad) > 5 else "")
        warnings.warn(f"{path}: skipped {len(bad)} malformed line(s) (line {shown})",
                      stacklevel=2)
    return records


def as_number(value: Any) -> float | None:
    """``value`` as a float when it is a real number (bools and strings are not); NaN kept."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def curve_terms(records: list[dict]) -> list[str]:
    """Numeric non-bookkeeping keys of the records, ``loss`` first, then in order of appearance."""
    seen: dict[str, None] = {}
    for rec in records:
        for key, value in rec.items():
            if key not in BOOKKEEPING_KEYS and as_number(value) is not None:
                seen.setdefault(key, None)
    terms = list(seen)
    return sorted(terms, key=lambda t: t != "loss")


def summarise(records: list[dict]) -> dict[str, float]:
    """Last step/epoch/time, median training images/s and the final train/val ``loss``."""
    out: dict[str, float] = {}
    for key in ("step", "epoch", "time_s"):
        vals = [v for r in records if (v := as_number(r.get(key))) is not None]
        if vals:
            out[key] = max(vals)
    speeds = sorted(v for r in records if r.get("split", "train") == "train"
                    and (v := as_number(r.get("images_per_s"))) is not None and math.isfinite(v))
    if speeds:
        out["images_per_s"] = speeds[len(speeds) // 2]
    for split in ("train", "val"):
        losses = [v for r in records if r.get("split", "train") == split
                  and (v := as_number(r.get("loss"))) is not None]
        if losses:
            out[f"{split}_loss"] = losses[-1]
    return out


def model_family(model: str | None, run: dict | None = None) -> str | None:
    """The taxonomy family of a model name (``run.json`` ``family`` wins when recorded)."""
    if run and isinstance(run.get("family"), str) and run["family"].strip():
        return run["family"]
    if not model:
        return None
    name = model.lower().replace("-", "_")
    for family, names in _FAMILIES.items():
        if name in names:
            return family
    return next((fam for hint, fam in _FAMILY_HINTS if hint in name), None)


#: captions of the figures ``genvision train`` writes (``GenerativeModel.figures``), saying
#: what each row and column is; a model's own ``figure_captions`` win
_PAIRS = ("reconstructions: 4 pairs per row, each an input (left) followed by its "
          "reconstruction (right)")
_CAPTIONS: dict[tuple[str | None, str], str] = {
    ("explicit latent variable", "reconstructions"): _PAIRS,
    ("explicit latent variable", "interpolations"):
        "interpolations: one row per pair of real images; the latent code moves in 8 "
        "equal steps from the first image's (left) to the second's (right)",
    ("implicit (GAN)", "interpolations"):
        "interpolations: one row per pair of random latents, 8 points along the great "
        "circle between them (left to right); one class, code or cluster per row when "
        "the model has them",
    ("implicit (GAN)", "codes"):
        "codes: one row per InfoGAN code value, the same 8 latents in every column",
    ("implicit (GAN)", "clusters"):
        "clusters: one row per self-conditioning cluster (most to least frequent), the "
        "same 8 latents in every column",
    ("fully visible (autoregressive)", "completions"):
        "completions: two test images per row, each as 4 columns: the original, the "
        "top half given, then two samples of the bottom half",
    ("change of variables (flow)", "temperature"):
        "temperature: the same 8 seeds in every column, drawn at temperatures 0, 0.5, "
        "0.7 and 1 (top to bottom)",
    (None, "gibbs_chain"):
        "Gibbs chain: 4 chains (one per row) from the start state (left) through more "
        "and more Gibbs sweeps (right, spaced geometrically)",
    (None, "filters"): "filters: the receptive fields of the 32 hidden units with the "
                       "largest weights",
    (None, "fantasy"): "fantasy particles: the persistent chains as training left them",
    (None, "reconstructions"): _PAIRS,
}


def figure_captions(model: str | None, run: dict | None = None) -> dict[str, str]:
    """Captions of a run's report figures by file stem: the registered model's own, else
    genvision's by family and figure name ({} for an unknown model with no family)."""
    family = model_family(model, run)
    out = {name: text for (fam, name), text in _CAPTIONS.items() if fam is None}
    out |= {name: text for (fam, name), text in _CAPTIONS.items() if fam and fam == family}
    if model is not None and model in list_models():
        out |= {k: v for k, v in get_model_class(model).figure_captions.items() if v}
    return out


def progress_grids(run_dir: Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of ``samples/step-*.png`` progress grids, sorted by step."""
    folder = RunLayout(run_dir).samples_dir
    if not folder.is_dir():
        return []
    found = []
    for path in folder.glob("*.png"):
        match = _STEP_RE.search(path.stem)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def figure_files(run_dir: Path, exclude: Iterable[str] = ()) -> list[Path]:
    """Top-level ``*.png`` figures of the run, sorted by name, minus ``exclude`` names."""
    skip = set(exclude)
    return sorted(p for p in run_dir.glob("*.png") if p.is_file() and p.name not in skip
                  and not p.name.startswith("."))


def training_warnings(records: list[dict]) -> list[tuple[int | None, str]]:
    """``(step, message)`` of the ``split: "warning"`` lines the training loop wrote (a
    model's own diagnostics, e.g. a GAN whose discriminator wins or whose samples
    collapse), oldest first."""
    out = []
    for rec in records:
        if rec.get("split") == "warning" and isinstance(rec.get("warning"), str):
            step = as_number(rec.get("step"))
            out.append((int(step) if step is not None and math.isfinite(step) else None,
                        rec["warning"]))
    return out


def grid_first_rows(paths: list[Path], image_size: Any, max_cols: int = 8
                    ) -> np.ndarray | None:
    """The first row of tiles of each grid PNG (as ``save_grid`` writes them: 2-pixel
    padding, nearest-neighbour upscaling), stacked top to bottom -> uint8 array, or None.

    The loop draws every progress grid from the same seed, so column j shows the same
    latent at every step: a fixed-latent progress strip. None when the image size is
    unknown or a grid does not have the layout expected.
    """
    try:
        h, w = (int(v) for v in image_size)
    except (TypeError, ValueError):
        return None
    rows = []
    for path in paths:
        try:
            with Image.open(path) as im:
                arr = np.asarray(im.convert("RGB"))
        except (OSError, ValueError):
            return None
        height, width = arr.shape[:2]
        scale = next((s for s in range(1, 9) if width % s == 0 and height % s == 0
                      and (width // s - 2) % (w + 2) == 0 and (height // s - 2) % (h + 2) == 0),
                     None)
        if scale is None:
            return None
        arr = arr[::scale, ::scale]  # undo the upscaling
        ncol = min(max_cols, (arr.shape[1] - 2) // (w + 2))
        rows.append(arr[:h + 2, :2 + ncol * (w + 2)])
    if not rows or len({r.shape for r in rows}) != 1:
        return None
    pad = np.full((2, *rows[0].shape[1:]), 255, dtype=np.uint8)
    return np.concatenate([*rows, pad])
