"""2-D maps of features coloured by class: PCA and t-SNE (scikit-learn), drawn with matplotlib.

* PCA: the two directions of largest variance (linear; distances along them are real).
* t-SNE (van der Maaten & Hinton 2008, https://jmlr.org/papers/v9/vandermaaten08a.html):
  keeps neighbourhoods, not distances or cluster sizes; features wider than
  :data:`TSNE_PCA_DIMS` are first reduced by PCA, the usual speed-up that also drops
  noise dimensions. Perplexity 30 (less for tiny sets), PCA initialisation, seeded.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

from ...storage import atomic_write_bytes

METHODS = ("pca", "tsne")
TSNE_PCA_DIMS = 50


def embed_2d(features: np.ndarray, method: str, *, seed: int = 0) -> np.ndarray:
    """features [M, D] -> coordinates [M, 2] by ``method`` (``pca`` or ``tsne``)."""
    f = np.asarray(features, dtype=np.float64)
    if method == "pca":
        return PCA(n_components=2, random_state=seed).fit_transform(f)
    if method != "tsne":
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if f.shape[1] > TSNE_PCA_DIMS and len(f) > TSNE_PCA_DIMS:
        f = PCA(n_components=TSNE_PCA_DIMS, random_state=seed).fit_transform(f)
    perplexity = min(30.0, (len(f) - 1) / 3)
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed
                ).fit_transform(f)


def subset_for_map(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """A seeded random subset of ``n`` indices (all when fewer): some sources are sorted by
    class, so the first ``n`` would show only a few classes."""
    if n >= len(y):
        return np.arange(len(y))
    return np.sort(np.random.default_rng(seed).choice(len(y), size=n, replace=False))


def plot_maps(coords: dict[str, np.ndarray], y: np.ndarray, path: str | Path, *,
              title: str, class_names: list[str] | None = None) -> Path:
    """One scatter panel per representation, points coloured by class; written as PNG.

    Args:
        coords: representation name -> [M, 2] coordinates (same images, same order).
        y: int labels [M]. path: the .png to write (atomically). title: figure title
            (give the method and the data protocol). class_names: legend names by label.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = np.unique(y)
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    fig, axes = plt.subplots(1, len(coords), figsize=(4.2 * len(coords), 4.4), squeeze=False)
    size = min(16.0, max(3.0, 4000 / max(len(y), 1)))  # visible dots for small and big sets
    for ax, (name, xy) in zip(axes[0], coords.items(), strict=True):
        for i, c in enumerate(classes):
            m = y == c
            label = class_names[c] if class_names and c < len(class_names) else str(c)
            ax.scatter(xy[m, 0], xy[m, 1], s=size, color=cmap(i % cmap.N), label=label,
                       alpha=0.7, linewidths=0)
        ax.set_title(name, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][-1].legend(loc="center left", bbox_to_anchor=(1.0, 0.5), markerscale=3,
                       fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)
