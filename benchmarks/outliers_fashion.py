"""The Nalisnick et al. 2019 failure across likelihood families: models trained on
Fashion-MNIST, scored on Fashion-MNIST test images against MNIST test digits.

For every ``--runs`` entry (a likelihood run trained on ``fashion-mnist``, 8-bit grey
levels, e.g. by ``benchmarks/fashion_mnist.py``) this runs

    genvision outliers RUN --in-data fashion-mnist --ood mnist-test=idx:MNIST_TEST,noise --n N

(its auto background model, the likelihood ratio and the typicality test as they ship),
prints one JSON line per run with every AUROC / FPR95 and its protocol, and draws
``--figure``: one panel per run, the NLL histograms (bits/dim) of the two test sets, the
figure of the README's outlier section. Values only: it may share the machine.

    python benchmarks/outliers_fashion.py --runs R/vae R/gated-pixelcnn R/glow R/ddpm \
        --figure docs/images/outliers-fashion-mnist.png
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

REPO = Path(__file__).resolve().parents[1]
MNIST_TEST = REPO.parent / "shared" / "data" / "mnist"
GV = [sys.executable, "-m", "genvision"]
#: likelihood estimator sizes that keep a CPU run to minutes (the models' defaults would
#: take about an hour here): a VAE's IWAE-k, a diffusion model's Monte Carlo timesteps
EVAL_K = {"vae": 100, "ddpm": 20, "flow-matching": 20}
#: what the figure shows, in this order: (set name in the scores CSV, legend)
SETS = (("in-dist", "Fashion-MNIST test (in-distribution)"), ("mnist-test", "MNIST test"))
#: the histograms' x axis ends at this quantile of both sets (the rest piles into the last bin)
TAIL_CUT = 0.98


def outliers(run: Path, n: int, test_dir: Path, k: int | None, background_steps: int | None
             ) -> Path:
    """Run ``genvision outliers`` on ``run``; its output folder."""
    out = run / "outliers-fashion"
    cmd = [*GV, "outliers", str(run), "--in-data", "fashion-mnist", "--ood",
           f"mnist-test=idx:{test_dir},noise", "--n", str(n), "--out", str(out)]
    if k:
        cmd += ["--k", str(k)]
    if background_steps:
        cmd += ["--background-steps", str(background_steps)]
    subprocess.run(cmd, check=True, stdout=sys.stderr)
    return out


def nll_by_set(scores_csv: Path) -> dict[str, np.ndarray]:
    rows: dict[str, list[float]] = {}
    with scores_csv.open() as f:
        for row in csv.DictReader(f):
            rows.setdefault(row["set"], []).append(float(row["nll_bits"]))
    return {k: np.asarray(v) for k, v in rows.items()}


def figure(panels: list[tuple[str, dict[str, np.ndarray], float]], path: Path) -> None:
    """One panel per model: histograms of NLL (bits/dim) of each set, AUROC in the title."""
    fig = Figure(figsize=(3.4 * len(panels), 3.3), dpi=120)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, nll, auroc) in zip(axes, panels, strict=True):
        values = np.concatenate([nll[s] for s, _ in SETS])
        # a per-image Monte Carlo bound (diffusion) has a long right tail: cut it, and say so
        top = np.quantile(values, TAIL_CUT)
        bins = np.linspace(values.min(), top, 60)
        for i, (name, label) in enumerate(SETS):
            v = nll[name]
            ax.hist(np.minimum(v, top), bins=bins, weights=np.full(len(v), 1 / len(v)),
                    histtype="stepfilled",
                    alpha=0.45, color=f"C{i}", label=label)
        ax.set_title(f"{title}\nNLL AUROC {auroc:.3f}", fontsize=9)
        ax.set_xlabel(f"NLL, bits/dim (lower = more likely; the top {1 - TAIL_CUT:.0%} "
                      "in the last bin)", fontsize=7)
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel("share of the set", fontsize=8)
    axes[0].legend(fontsize=7, loc="upper right")
    fig.suptitle("Trained on Fashion-MNIST: MNIST digits get the higher likelihood "
                 "(Nalisnick et al. 2019)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", nargs="+", required=True)
    p.add_argument("--n", type=int, default=2000, help="images per set")
    p.add_argument("--test-data", default=str(MNIST_TEST), help="MNIST test split (IDX)")
    p.add_argument("--background-steps", type=int, default=None,
                   help="steps of the auto background (default: outliers' own)")
    p.add_argument("--reuse", action="store_true",
                   help="redraw from RUN/outliers-fashion without scoring again")
    p.add_argument("--figure", help="where to draw the histograms (PNG)")
    args = p.parse_args()
    test_dir = Path(args.test_data)
    if not test_dir.is_dir():
        sys.exit(f"MNIST test split not found at {test_dir}: pass --test-data DIR")
    panels = []
    for run in map(Path, args.runs):
        model = json.loads((run / "run.json").read_text())["model"]
        out = run / "outliers-fashion"
        if not args.reuse:
            out = outliers(run, args.n, test_dir, EVAL_K.get(model),
                           args.background_steps)
        result = json.loads((out / "outliers.json").read_text())
        print(json.dumps({"benchmark": "outliers_fashion", "run": str(run), "model": model,
                          "result": result}, default=str), flush=True)
        auroc = result["ood"]["mnist-test"]["metrics"]["nll"]["auroc"]
        like = result["likelihood"]
        # the estimator's name without its explanation, e.g. "dequantised bound"
        kind = str(like.get("estimator", like.get("kind"))).split(" (")[0].split(",")[0]
        panels.append((f"{model} ({kind})", nll_by_set(out / "outliers_scores.csv"), auroc))
    if args.figure:
        figure(panels, Path(args.figure))


if __name__ == "__main__":
    main()
