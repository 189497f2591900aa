"""What ``genvision outliers`` writes: a Markdown table, the JSON record and a histogram."""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ...storage import atomic_write_bytes
from ..common.figures import markdown_table
from .detect import Scored

#: column titles of the scores, in table order
SCORE_TITLES = {"nll": "NLL", "ratio": "likelihood ratio", "typicality": "typicality M=1",
                "typicality_batch": "typicality M={m}"}


def table(result: dict[str, Any]) -> str:
    """One row per outlier set: mean NLL, then AUROC / FPR@95%TPR for every score."""
    names = [s for s in SCORE_TITLES if s in result["scores"]]
    m = result["typicality_m"]
    header = ["OOD set", "n", "NLL bits/dim", "more likely than median in-dist"]
    header += [f"{SCORE_TITLES[s].format(m=m)} AUROC / FPR95" for s in names]
    rows = []
    for name, r in result["ood"].items():
        row: list[Any] = [name, r["n"], f"{r['nll_bits_mean']:.3f}",
                          f"{100 * r['share_more_likely_than_median_in']:.0f}%"]
        row += [f"{r['metrics'][s]['auroc']:.3f} / {r['metrics'][s]['fpr_at_95_tpr']:.3f}"
                for s in names]
        rows.append(row)
    ind = result["in_distribution"]
    like = result["likelihood"]
    lines = [f"In-distribution: {ind['name']} ({ind['protocol'].get('source')}, split "
             f"{ind['protocol'].get('split')}, n={ind['n']}, NLL {ind['nll_bits_mean']:.3f} "
             f"bits/dim); model {result['model']} ({like.get('estimator', like.get('kind'))}); "
             f"mean training NLL {result['train_mean_nll_bits']:.3f} bits/dim.", "",
             markdown_table(header, rows), "",
             "AUROC: 1 = perfect, 0.5 = chance, < 0.5 = outliers look MORE in-distribution "
             "than the test data. FPR95: share of in-distribution images flagged when 95% of "
             "outliers are (lower is better)."]
    strength = result.get("background_strength")
    if strength:
        lines += ["", f"Background model: NLL {strength['nll_background_nats']:.1f} nats on "
                      f"the in-distribution images, against {strength['nll_model_nats']:.1f} "
                      f"for the model and {strength['nll_independent_pixels_nats']:.1f} for "
                      "independent pixels: it explains "
                      f"{strength['share']:.0%} of the model's gain over independent pixels."]
    lines += [f"\n**Warning:** {w}" for w in result.get("warnings", [])]
    return "\n".join(lines)


def _draw(ax, values: np.ndarray, bins: np.ndarray, colour: str, label: str) -> None:
    """A step histogram of the share of the set per bin; a set whose values are (almost)
    all equal (e.g. blank images) is a vertical line, so its spike does not hide the rest."""
    if float(values.max() - values.min()) <= 1e-9 * max(1.0, abs(float(values.max()))):
        ax.axvline(float(values[0]), color=colour, lw=2, ls="--", label=f"{label} (constant)")
        return
    ax.hist(values, bins=bins, weights=np.full(len(values), 1 / len(values)),
            histtype="step", lw=1.6, color=colour, label=label)


def histogram(scored: list[Scored], path: str | os.PathLike, has_ratio: bool) -> None:
    """PNG of the NLL (bits/dim, log axis) of every set, and of the ratio score if any."""
    fig = Figure(figsize=(11 if has_ratio else 6.5, 4), dpi=110)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2 if has_ratio else 1)
    axes = list(axes) if has_ratio else [axes]
    colours = {s.name: f"C{i % 10}" for i, s in enumerate(scored)}
    values = [s.nll_bits.numpy() for s in scored]
    lo = max(min(float(v.min()) for v in values), 1e-4)
    hi = max(float(v.max()) for v in values)
    bins = np.geomspace(lo, hi * 1.01 if hi > lo else lo * 2, 80)
    for s, v in zip(scored, values, strict=True):
        _draw(axes[0], np.clip(v, lo, None), bins, colours[s.name], f"{s.name} (n={len(v)})")
    axes[0].set_xscale("log")
    axes[0].set_xlabel("NLL, bits/dim (log scale)")
    axes[0].set_ylabel("share of the set per bin")
    axes[0].set_title("negative log-likelihood under the model")
    axes[0].legend(fontsize=7)
    if has_ratio:
        with_ratio = [s for s in scored if "ratio" in s.scores]
        r = [s.scores["ratio"].numpy() for s in with_ratio]
        rbins = np.linspace(min(float(x.min()) for x in r), max(float(x.max()) for x in r), 80)
        for s, x in zip(with_ratio, r, strict=True):
            _draw(axes[1], x, rbins, colours[s.name], s.name)
        axes[1].set_xlabel("-(log p_model - log p_background), bits/dim")
        axes[1].set_title("likelihood-ratio score")
        axes[1].legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())
