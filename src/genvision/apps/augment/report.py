"""Table and figures of an augment run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..classify.report import _pyplot
from ..common.figures import markdown_table
from .experiment import AugmentSettings


def protocol_line(protocol: dict[str, Any], s: AugmentSettings, classic: str) -> str:
    te = protocol["test"]
    test = "official MNIST test split" if protocol.get("official_mnist_test") else \
        f"{te['source']} seeded test split"
    sub = f", {te['subset']}" if te.get("subset") else ""
    b = s.gen_budget
    return (f"data: N={s.n} class-balanced real images per seed from {protocol['train']['source']} "
            f"split {protocol['train']['split']}; test {test} ({te['n']} images{sub}); static "
            f"binarisation seed {protocol['binarize']['seed']}; classifier: small CNN, "
            f"{s.cnn_steps} steps of batch 64 in every arm; generator: class-conditional "
            f"{s.generator} trained on the same N images ({b.steps} steps, batch "
            f"{b.batch_size}), M={s.m} binary samples, balanced over classes; classic: "
            f"{classic}; seeds {s.seed}..{s.seed + s.seeds - 1}")


def table(summary: list[dict[str, Any]], s: AugmentSettings) -> str:
    """Mean +- standard deviation of test accuracy over seeds, per arm."""
    head = ["training data", "N real", "M generated", "accuracy (mean +- sd)", "min..max",
            "vs real (paired)", "log-loss", "CNN CPU s"]
    body = []
    for r in summary:
        gen = s.m if r["arm"].startswith("generated") else 0
        vs = "-" if r["arm"] == "real" or r["vs_real_mean"] is None else \
            f"{100 * r['vs_real_mean']:+.2f} pts ({r['vs_real_wins']}/{r['seeds']} seeds up)"
        body.append([r["arm"], s.n, gen,
                     f"{100 * r['accuracy_mean']:.2f}% +- {100 * r['accuracy_std']:.2f}",
                     f"{100 * r['accuracy_min']:.1f}..{100 * r['accuracy_max']:.1f}", vs,
                     f"{r['log_loss_mean']:.3f}", f"{r['classifier_cpu_s']:.1f}"])
    return markdown_table(head, body)


def verdict(summary: list[dict[str, Any]]) -> str:
    """One honest sentence: did generated data help beyond the seed-to-seed spread?"""
    by = {r["arm"]: r for r in summary}
    if "generated" not in by or "real" not in by:
        return ""
    g, real = by["generated"], by["real"]
    d, sd = g["vs_real_mean"], max(real["accuracy_std"], g["accuracy_std"])
    if d > sd and g["vs_real_wins"] == g["seeds"]:
        word = "helped"
    elif d < -sd and g["vs_real_wins"] == 0:
        word = "hurt"
    else:
        word = "made no difference beyond the seed-to-seed spread"
    text = (f"generated data {word}: {100 * d:+.2f} accuracy points versus real only "
            f"(spread {100 * sd:.2f})")
    if "classic" in by:
        text += (f"; classic augmentation: {100 * by['classic']['vs_real_mean']:+.2f} points")
    return text


def plot_accuracy(summary: list[dict[str, Any]], path: Path, title: str) -> Path:
    """Bars of mean accuracy with +-1 sd error bars, one per arm."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    arms = [r["arm"] for r in summary]
    mean = [100 * r["accuracy_mean"] for r in summary]
    ax.bar(range(len(arms)), mean, yerr=[100 * r["accuracy_std"] for r in summary],
           capsize=4, color=["#888888", "#4c72b0", "#dd8452", "#55a868"][:len(arms)])
    lo = min(100 * r["accuracy_min"] for r in summary)
    ax.set_ylim(max(0, lo - 5), min(100, max(mean) + 3))
    ax.set_xticks(range(len(arms)), arms, fontsize=8)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title, fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_samples(real: Tensor, real_labels: Tensor, generated: Tensor, labels: Tensor,
                 num_classes: int, path: Path, per_class: int = 8) -> Path:
    """Two panels: real training images and generated ones, one row per class."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(6, 0.38 * num_classes + 0.6))
    for ax, imgs, ys, title in ((axes[0], real, real_labels, "real (training)"),
                                (axes[1], generated, labels, "generated")):
        ax.imshow(_grid(imgs, ys, num_classes, per_class).numpy(), cmap="gray_r", vmin=0,
                  vmax=1)
        ax.set_title(title, fontsize=8)
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _grid(x: Tensor, y: Tensor, k: int, per_class: int) -> Tensor:
    """[k*H, per_class*W] mosaic: row c holds up to ``per_class`` images of class c."""
    _, _, h, w = x.shape
    out = torch.zeros(k * h, per_class * w)
    for c in range(k):
        imgs = x[y == c][:per_class, 0]
        for j, img in enumerate(imgs):
            out[c * h:(c + 1) * h, j * w:(j + 1) * w] = img
    return out
