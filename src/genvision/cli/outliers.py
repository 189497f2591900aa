"""``genvision outliers RUN``: outlier detection with a likelihood model.

    genvision outliers RUN --ood faces,digits,noise --resize [--background auto] [--n 2000]

Scores the in-distribution test images and every ``--ood`` set by NLL (bits/dim), by the
likelihood ratio against a background model and by the typicality test, and writes
``outliers.md`` (table), ``outliers.json`` (every number with its protocol),
``outliers_hist.png``, ``outliers_scores.csv`` (every image's scores) and
``outliers_gallery.png`` (per set: the least and the most anomalous images) to ``--out``
(default RUN/outliers).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .. import dataclass_config as cfg
from ..apps.outliers.detect import OutlierOptions, detect_outliers
from ..apps.outliers.per_image import GALLERY_K, gallery, write_scores_csv
from ..apps.outliers.report import histogram, table
from ..errors import UserError
from ..runs.claim import refuse_foreign_output
from ..storage import atomic_write_json, atomic_write_text
from .parser import Parser


def _parser() -> argparse.ArgumentParser:
    p = Parser(prog="genvision outliers",
                description="Detect outliers with a likelihood model: NLL, likelihood ratio "
                            "against a background model, and the typicality test; AUROC and "
                            "FPR at 95% TPR per outlier set. Time: one log p(x) pass per "
                            "image and set; bound models (VAE) take k passes per image "
                            "(IWAE-k, see --k), so lower --k and --n for a quick look.")
    p.add_argument("run", help="a trained likelihood run (pixelcnn, gated-pixelcnn, made, "
                               "nade, vae, ...)")
    p.add_argument("--out", help="output folder (default RUN/outliers)")
    cfg.add_dataclass_flags(p, OutlierOptions)
    return p


#: what outliers writes into --out (``background/``: the auto background model's run)
OUTPUTS = ("outliers.md", "outliers.json", "outliers_hist.png", "outliers_scores.csv",
           "outliers_gallery.png", "background")


def cmd_outliers(argv: list[str]) -> int:
    """Entry point of ``genvision outliers``; returns the exit status."""
    args = _parser().parse_args(argv)
    opts = cfg.from_dict(OutlierOptions, cfg.overrides_from_args(OutlierOptions, args),
                         what="outliers option")
    run = Path(args.run)
    if not run.is_dir():
        raise UserError(f"run directory {run} does not exist", "check the path")
    out = Path(args.out) if args.out else run / "outliers"
    # before any work: the results replace only files of these names
    refuse_foreign_output(out, OUTPUTS, "outliers")
    t0 = time.process_time()
    result, scored = detect_outliers(run, opts, out, say=lambda line: print(line, flush=True))
    result["cpu_s"] = round(time.process_time() - t0, 1)
    out.mkdir(parents=True, exist_ok=True)
    text = table(result)
    atomic_write_text(out / "outliers.md", text + "\n")
    atomic_write_json(out / "outliers.json", result)
    histogram(scored, out / "outliers_hist.png", "ratio" in result["scores"])
    write_scores_csv(scored, out / "outliers_scores.csv")
    score = "ratio" if "ratio" in result["scores"] else "nll"
    rows = gallery([scored[0], *scored[2:]], score, out / "outliers_gallery.png")
    print(text)
    for warning in result["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"\nwrote {out / 'outliers.md'}, outliers.json, outliers_hist.png, "
          f"outliers_scores.csv (every image) and outliers_gallery.png (rows: "
          f"{', '.join(rows)}; left the {GALLERY_K} least, right the {GALLERY_K} most "
          f"anomalous by {score})")
    return 0
