"""Tables and figures of a classify run: Markdown, JSON-ready summaries and PNG plots."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..common.figures import markdown_table
from .metrics import ECE_BINS

#: line style per kind: generative dashed, discriminative solid
_STYLE = {"generative": "--", "discriminative": "-"}
LOSS_FLOOR = 1e-4


def protocol_line(protocol: dict[str, Any], budgets: dict[str, Any]) -> str:
    """One sentence of protocol that travels with every printed table."""
    tr, te = protocol["train"], protocol["test"]
    test = te.get("what") or ("official MNIST test split" if protocol.get("official_mnist_test")
                              else f"{te['source']} split {te['split']}")
    sub = f", {te['subset']}" if te.get("subset") else ""
    return (f"data: train {tr['source']} split {tr['split']} ({tr['n_available']} images of "
            f"classes {protocol['classes']}); test {test} ({te['n']} images{sub}); "
            f"static binarisation seed {protocol['binarize']['seed']} for every classifier; "
            f"budgets: {', '.join(f'{k} {v}' for k, v in budgets.items())}")


def _likelihood(row: dict[str, Any]) -> str:
    proto = row["protocol"]
    if row["kind"] == "discriminative":
        return "-"
    if row["classifier"] == "naive-bayes":
        return "exact"
    lik = proto.get("likelihood", {})
    return lik.get("estimator", lik.get("kind", "?"))


def final_table(rows: list[dict[str, Any]]) -> str:
    """Scores of every classifier at the largest training size."""
    n_max = max(r["n_train"] for r in rows)
    head = ["classifier", "kind", "log p(x|y)", "n train", "accuracy", "log-loss (nats)",
            "ECE", "fit CPU s"]
    body = [[r["classifier"], r["kind"], _likelihood(r), r["n_train"],
             f"{100 * r['accuracy']:.2f}%", _num(r["log_loss"]), f"{r['ece']:.3f}",
             f"{r['fit_cpu_s']:.1f}"] for r in rows if r["n_train"] == n_max]
    return markdown_table(head, body)


def _num(v: float) -> str:
    return "inf" if math.isinf(v) else f"{max(v, 0.0):.3f}"


def curve_table(rows: list[dict[str, Any]], metric: str = "accuracy") -> str:
    """Classifiers x training sizes; the best generative and discriminative in bold."""
    sizes = sorted({r["n_train"] for r in rows})
    names = list(dict.fromkeys(r["classifier"] for r in rows))
    cell = {(r["classifier"], r["n_train"]): r for r in rows}
    best = {n: max((cell[(c, n)] for c in names if (c, n) in cell),
                   key=lambda r: r[metric]) for n in sizes}
    body = []
    for c in names:
        line = [c, next(r["kind"] for r in rows if r["classifier"] == c)]
        for n in sizes:
            r = cell.get((c, n))
            text = "" if r is None else f"{100 * r[metric]:.1f}"
            line.append(f"**{text}**" if r is not None and r is best[n] else text)
        body.append(line)
    return markdown_table(["classifier", "kind", *[f"n={n}" for n in sizes]], body)


def crossover(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per size: the best generative and best discriminative accuracy and which kind wins."""
    out = []
    for n in sorted({r["n_train"] for r in rows}):
        best = {}
        for kind in ("generative", "discriminative"):
            rs = [r for r in rows if r["n_train"] == n and r["kind"] == kind]
            if rs:
                b = max(rs, key=lambda r: r["accuracy"])
                best[kind] = (b["classifier"], b["accuracy"])
        if len(best) == 2:
            g, d = best["generative"], best["discriminative"]
            out.append({"n_train": n, "best_generative": g[0], "generative_accuracy": g[1],
                        "best_discriminative": d[0], "discriminative_accuracy": d[1],
                        "winner": "generative" if g[1] > d[1] else
                        "discriminative" if d[1] > g[1] else "tie"})
    return out


def crossover_sentence(cross: list[dict[str, Any]]) -> str:
    """What we measured, in words: at which sizes which kind of classifier was ahead."""
    if not cross:
        return "(only one kind of classifier was run: no generative-vs-discriminative verdict)"
    parts = [f"n={c['n_train']}: {c['winner']} ({c['best_generative']} "
             f"{100 * c['generative_accuracy']:.1f}% vs {c['best_discriminative']} "
             f"{100 * c['discriminative_accuracy']:.1f}%)" for c in cross]
    return "best of each kind by training size -- " + "; ".join(parts)


# ----- figures ------------------------------------------------------------------------------
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curve(rows: list[dict[str, Any]], path: Path, title: str) -> Path:
    """Accuracy and log-loss versus number of labelled training images (log x axis)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for c in dict.fromkeys(r["classifier"] for r in rows):
        rs = sorted((r for r in rows if r["classifier"] == c), key=lambda r: r["n_train"])
        n = [r["n_train"] for r in rs]
        style = _STYLE.get(rs[0]["kind"], "-")
        axes[0].plot(n, [100 * r["accuracy"] for r in rs], style, marker="o", ms=3, label=c)
        # clipped so that a perfect (0) or infinite loss still shows as a point
        axes[1].plot(n, [min(max(r["log_loss"], LOSS_FLOOR), 1e4) for r in rs], style,
                     marker="o", ms=3)
    axes[0].set_ylabel("test accuracy (%)")
    axes[1].set_ylabel(f"test log-loss (nats, log scale, floor {LOSS_FLOOR:g})")
    axes[1].set_yscale("log")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("labelled training images")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, title="dashed: generative", title_fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_reliability(final: dict[str, Tensor], y: Tensor, path: Path, title: str) -> Path:
    """Reliability diagram: accuracy versus confidence per bin, one line per classifier."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8)
    for name, lp in final.items():
        conf, pred = lp.double().exp().max(1)
        idx = (conf * ECE_BINS).ceil().long().clamp(1, ECE_BINS) - 1
        xs, ys = [], []
        for b in range(ECE_BINS):
            m = idx == b
            if int(m.sum()) >= 5:  # fewer points make a meaningless dot
                xs.append(float(conf[m].mean()))
                ys.append(float((pred[m] == y[m]).double().mean()))
        ax.plot(xs, ys, marker="o", ms=3, label=name)
    ax.set_xlabel("confidence (top probability)")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def ambiguous_indices(final: dict[str, Tensor], count: int = 6) -> list[int]:
    """Test images with the highest entropy of the classifiers' mean posterior."""
    mean = torch.stack([lp.double().exp() for lp in final.values()]).mean(0)
    entropy = -(mean * mean.clamp_min(1e-300).log()).sum(1)
    return entropy.argsort(descending=True)[:count].tolist()


def plot_posteriors(final: dict[str, Tensor], x: Tensor, y: Tensor, names: list[str],
                    path: Path, title: str, count: int = 6) -> tuple[Path, list[dict]]:
    """Ambiguous test digits and each classifier's p(y|x) for them (grouped bars).

    Returns:
        the PNG path, and per image its index, true class and every posterior (JSON-ready).
    """
    plt = _pyplot()
    idx = ambiguous_indices(final, count)
    k = len(names)
    fig, axes = plt.subplots(len(idx), 2, figsize=(8, 1.5 * len(idx) + 0.6),
                             gridspec_kw={"width_ratios": [1, 6]}, squeeze=False)
    width = 0.8 / max(1, len(final))
    details = []
    for row, i in enumerate(idx):
        img = x[i].permute(1, 2, 0).squeeze(-1).numpy()
        axes[row, 0].imshow(img, cmap="gray_r", vmin=0, vmax=1)
        axes[row, 0].set_axis_off()
        axes[row, 0].set_title(f"test #{i}, true {names[int(y[i])]}", fontsize=7)
        ax = axes[row, 1]
        post = {}
        for j, (name, lp) in enumerate(final.items()):
            p = lp[i].double().exp().numpy()
            post[name] = [round(float(v), 4) for v in p]
            ax.bar(np.arange(k) + (j - (len(final) - 1) / 2) * width, p, width,
                   label=name if row == 0 else None)
        ax.set_xticks(range(k), names, fontsize=7)
        ax.set_ylim(0, 1.02)
        ax.tick_params(axis="y", labelsize=6)
        details.append({"test_index": i, "true": names[int(y[i])], "posterior": post})
    axes[0, 1].legend(fontsize=6, ncol=min(5, len(final)), loc="upper right")
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path, details
