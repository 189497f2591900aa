"""A translation comparison in the run's ``metrics.json``, for ``genvision compare`` and the
report: the A -> B scores of the model the run delivers (``genvision.load(run)``: its last
trained method) beside those of the identity baseline, with their protocol."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ...runs.load import trained_stages
from ...runs.records import IMAGE_TO_IMAGE, merge_evaluation, read_run_info
from .compare import LABELS

#: result keys -> metrics.json keys (PSNR/SSIM of an RGB target read as the RGB columns)
_KEYS = ("label_accuracy", "fid", "kid_mean", "kid_std", "cycle_l1")


def _find(rows: list[dict[str, Any]], method: str, direction: str) -> dict[str, Any] | None:
    return next((r for r in rows if r["method"] == method and r["direction"] == direction),
                None)


def record_translation(run: str | os.PathLike, results: dict[str, Any], source: str,
                       images_spec: str) -> Path | None:
    """Merge the delivered model's A -> B scores into ``run``'s metrics.json."""
    info = read_run_info(run)
    trained = trained_stages(run, info)
    if not trained:
        return None
    method = trained[-1]
    label = method if len(results.get("runs", [run])) <= 1 else f"{Path(run).name}/{method}"
    row, base = _find(results["rows"], label, "a2b"), _find(results["rows"], "identity", "a2b")
    if row is None or base is None:
        return None
    rgb = info.get("data", {}).get("b_channels") == 3
    entry: dict[str, Any] = {
        "kind": IMAGE_TO_IMAGE, "task": "translate", "method": method,
        "data": {"source": source, "split": images_spec, "n": results["n"],
                 "images": f"{source} {images_spec}: {results['n']['a']} A, "
                           f"{results['n']['b']} B (seeded subset)"},
        "split": images_spec,
        "protocol": {**results["protocol"], "direction": "A -> B",
                     "classifier": results["classifiers"]["b"]["what"]},
        "identity_baseline": {k: base[k] for k in (*_KEYS, "psnr", "ssim") if k in base},
        "method_label": LABELS.get(method, method)}
    entry.update({k: row[k] for k in _KEYS if k in row})
    if "psnr" in row:
        suffix = "rgb" if rgb else "grey"
        entry[f"psnr_{suffix}"], entry[f"ssim_{suffix}"] = row["psnr"], row["ssim"]
    return merge_evaluation(run, entry)
