"""Loss curves of a run: one panel per logged term, train and validation over steps.

Figures are drawn with matplotlib's object API on an Agg canvas (no pyplot, no display,
no global state), rendered to PNG bytes and written atomically.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..storage import atomic_write_bytes
from .run import as_number, curve_terms, read_metrics

_SPLIT_STYLE = {"train": {"color": "#1f77b4", "lw": 1.4},
                "val": {"color": "#d62728", "lw": 1.6, "marker": "o", "ms": 3.5}}
#: terms that are schedules or diagnostics, never nats
_UNITLESS = frozenset({"beta", "temperature", "grad_norm", "scale", "weight", "perplexity",
                       "codes_used", "codes_restarted"})


def term_unit(term: str, default_unit: str = "nats/image",
              units: dict[str, str] | None = None) -> str:
    """The y-axis unit of a logged term: ``units`` override, bits for ``*bpd*``/``bits*``."""
    if units and term in units:
        return units[term]
    if "bpd" in term or term.startswith("bits"):
        return "bits/dim"
    if term in _UNITLESS or term.endswith("_norm"):
        return ""
    return default_unit


def _series(records: list[dict], term: str, split: str) -> tuple[list[float], list[float]]:
    """(steps, values) of ``term`` for ``split``, sorted by step; non-finite values -> NaN."""
    pts = []
    for i, rec in enumerate(records):
        if rec.get("split", "train") != split or term not in rec:
            continue
        value = as_number(rec.get(term))
        step = as_number(rec.get("step"))
        pts.append((step if step is not None and math.isfinite(step) else float(i),
                    value if value is not None and math.isfinite(value) else math.nan))
    pts.sort(key=lambda p: p[0])
    return [p[0] for p in pts], [p[1] for p in pts]


def _draw_panel(ax: Any, records: list[dict], term: str, unit: str) -> None:
    drawn = False
    for split, style in _SPLIT_STYLE.items():
        steps, values = _series(records, term, split)
        if any(not math.isnan(v) for v in values):
            ax.plot(steps, values, label=split, **style)
            drawn = True
    if not drawn:
        ax.text(0.5, 0.5, "no finite values", ha="center", va="center",
                transform=ax.transAxes, color="#777")
    ax.set_title(term)
    ax.set_xlabel("step")
    ax.set_ylabel(f"{term} ({unit})" if unit else term)
    ax.grid(True, alpha=0.3)
    if drawn:
        ax.legend(frameon=False, fontsize=8)


def render_loss_curves(records: list[dict], *, default_unit: str = "nats/image",
                       units: dict[str, str] | None = None, title: str | None = None,
                       ncols: int = 3) -> bytes | None:
    """PNG bytes of the loss-curve figure, or ``None`` when there is no term to plot."""
    terms = curve_terms(records)
    if not terms:
        return None
    ncols = max(1, min(ncols, len(terms)))
    nrows = math.ceil(len(terms) / ncols)
    fig = Figure(figsize=(4.2 * ncols, 3.1 * nrows + (0.4 if title else 0)), dpi=100,
                 layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, term in zip(axes, terms, strict=False):
        _draw_panel(ax, records, term, term_unit(term, default_unit, units))
    for ax in axes[len(terms):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def plot_loss_curves(metrics: str | os.PathLike | Iterable[dict[str, Any]] | None,
                     out_png: str | os.PathLike, *, default_unit: str = "nats/image",
                     units: dict[str, str] | None = None,
                     title: str | None = None) -> Path | None:
    """Plot every logged loss term of a run (train and val over steps) into ``out_png``.

    Args:
        metrics: path of a ``metrics.jsonl`` file, or its records as dicts. Missing files,
            malformed lines (skipped with a warning) and NaN values are tolerated.
        out_png: where to write the PNG (atomically).
        default_unit: y-axis unit of loss terms (``"nats/image"``; pass e.g. ``"value"``
            for GAN or diffusion losses that are not likelihoods).
        units: per-term unit overrides, e.g. ``{"mse": "per pixel"}``.
        title: optional figure title.

    Returns:
        ``out_png`` as a Path, or ``None`` (nothing written) when no term was logged.
    """
    records = read_metrics(metrics)
    png = render_loss_curves(records, default_unit=default_unit, units=units, title=title)
    if png is None:
        return None
    atomic_write_bytes(out_png, png)
    return Path(out_png)
