"""The comparison board's charts, each readable without the table: training curves of every
run overlaid, sample quality against likelihood, and what each run cost.

Every chart has a title, axes with units and a legend; a run keeps one colour in all of
them (its position in the table) and a family keeps one marker. Figures are drawn with
matplotlib's object API on an Agg canvas (no pyplot, no global state) and returned as PNG
bytes, which the board embeds, so the page stays one file. A chart with nothing to show
is ``None`` (the board says why instead).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import ScalarFormatter

from .compare_table import Row
from .run import as_number

#: tab10: distinct for up to ten runs, then it repeats (the labels still tell them apart)
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
FAMILY_MARKERS = {"fully visible (autoregressive)": "s", "explicit latent variable": "o",
                  "change of variables (flow)": "^", "implicit (GAN)": "X", "diffusion": "D"}
#: families whose training loss is not a likelihood in nats (a GAN's, a denoising MSE)
NON_NATS_FAMILIES = ("implicit (GAN)", "diffusion")


def colour(index: int) -> str:
    return COLOURS[index % len(COLOURS)]


def marker(family: str | None) -> str:
    return FAMILY_MARKERS.get(family or "", "P")


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


# ----- training curves ------------------------------------------------------------------------
def loss_series(records: list[dict[str, Any]]) -> tuple[list[float], list[float], list[float]]:
    """(steps, minutes, loss) of the train records that log a finite ``loss``."""
    pts = []
    for rec in records:
        loss, step = as_number(rec.get("loss")), as_number(rec.get("step"))
        if rec.get("split", "train") != "train" or loss is None or not math.isfinite(loss):
            continue
        seconds = as_number(rec.get("time_s"))
        pts.append((step if step is not None else math.nan,
                    seconds / 60 if seconds is not None else math.nan, loss))
    pts.sort(key=lambda p: p[0])
    return [p[0] for p in pts], [p[1] for p in pts], [p[2] for p in pts]


def _curve_panels(rows: Sequence[Row], records: Sequence[list[dict[str, Any]]]
                  ) -> dict[str, list[int]]:
    """Run indices by the unit of their training loss; runs with no curve left out."""
    panels: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        if len(loss_series(records[i])[2]) >= 1:
            unit = "value" if row.family in NON_NATS_FAMILIES else "nats/image"
            panels.setdefault(unit, []).append(i)
    return panels


def training_curves(rows: Sequence[Row], records: Sequence[list[dict[str, Any]]]
                    ) -> bytes | None:
    """PNG of every run's training loss against steps (left) and minutes (right), one row
    of panels per loss unit: likelihood models' nats/image are not put on one axis with a
    GAN's or a denoiser's loss."""
    panels = _curve_panels(rows, records)
    if not panels:
        return None
    fig = _figure(12.5, 3.4 * len(panels) + 0.4)
    axes = fig.subplots(len(panels), 2, squeeze=False)
    for (unit, indices), (ax_step, ax_time) in zip(panels.items(), axes, strict=True):
        what = ("training loss (nats/image: NLL or negative ELBO)" if unit == "nats/image"
                else "training loss (a GAN's or denoiser's loss: no common unit)")
        for i in indices:
            steps, minutes, loss = loss_series(records[i])
            style = {"color": colour(i), "lw": 1.5, "label": _label(rows[i])}
            if len(loss) == 1:
                style |= {"marker": marker(rows[i].family)}
            ax_step.plot(steps, loss, **style)
            ax_time.plot(minutes, loss, **style)
        values = [v for i in indices for v in loss_series(records[i])[2]]
        # log scale only when early losses are many times the final ones
        logy = unit == "nats/image" and min(values) > 0 and max(values) > 10 * min(values)
        for ax, xlabel in ((ax_step, "training step"), (ax_time, "training time (minutes)")):
            ax.set_xlabel(xlabel)
            ax.set_ylabel(what.split(" (")[0] + (" (nats/image)" if unit == "nats/image"
                                                 else ""))
            ax.set_title(f"{what} vs {xlabel.split(' (')[0]}", fontsize=10)
            ax.grid(True, alpha=0.3)
            if logy:
                ax.set_yscale("log")
                ax.yaxis.set_major_formatter(ScalarFormatter())
        ax_time.legend(frameon=False, fontsize=8, loc="upper right")
    fig.suptitle("Training curves: loss of each run (lower is better within a panel)")
    return _png(fig)


def _label(row: Row) -> str:
    return f"{row.name} ({row.model or '?'})"


# ----- quality vs likelihood ------------------------------------------------------------------
def _hollow(row: Row, key: str, main_marks: set[str]) -> bool:
    """Whether the number was measured under a protocol other than its group's main one."""
    return key in row.marks and row.marks[key] not in main_marks


def quality_vs_likelihood(rows: Sequence[Row], main_marks: set[str]) -> bytes | None:
    """PNG scatter of FID (y) against NLL in bits/dim (x), one point per run, marker by
    family, labelled with the run's name; runs without a likelihood (GANs) sit in a side
    panel at their FID. ``None`` when no run has an FID."""
    with_fid = [i for i, r in enumerate(rows) if "fid" in r.values]
    if not with_fid:
        return None
    both = [i for i in with_fid if "bpd" in rows[i].values]
    fid_only = [i for i in with_fid if "bpd" not in rows[i].values]
    fig = _figure(9.5, 4.8)
    grid = fig.add_gridspec(1, 2, width_ratios=(5, 1) if fid_only and both else
                            ((1, 0.001) if both else (0.001, 1)))
    ax = fig.add_subplot(grid[0, 0])
    side = fig.add_subplot(grid[0, 1], sharey=ax)
    hollow_any = False
    for i in with_fid:
        row = rows[i]
        hollow = _hollow(row, "fid", main_marks) or _hollow(row, "bpd", main_marks)
        hollow_any |= hollow
        target, x = (ax, row.values["bpd"]) if i in both else (side, 0.0)
        target.scatter([x], [row.values["fid"]], s=90, marker=marker(row.family),
                       facecolors="none" if hollow else colour(i), edgecolors=colour(i),
                       linewidths=2, zorder=3)
        target.annotate(row.name, (x, row.values["fid"]), xytext=(7, 5),
                        textcoords="offset points", fontsize=9)
    ax.margins(x=0.15, y=0.1)  # room for the labels of the outermost points
    ax.set_xlabel("NLL (bits/dim, lower is better)")
    ax.set_ylabel("FID (lower is better)")
    ax.grid(True, alpha=0.3)
    side.set_xticks([0.0], ["no likelihood"])
    side.set_xlim(-1, 3)
    side.tick_params(labelleft=False)
    side.grid(True, axis="y", alpha=0.3)
    if not both:
        ax.set_visible(False)
        side.tick_params(labelleft=True)
        side.set_ylabel("FID (lower is better)")
    if not fid_only:
        side.set_visible(False)
    handles = [Line2D([], [], ls="none", marker=marker(f), color="#555", label=f)
               for f in dict.fromkeys(rows[i].family for i in with_fid) if f] + \
              ([Line2D([], [], ls="none", marker="o", mfc="none", color="#555",
                       label="hollow: another protocol (see table)")] if hollow_any else [])
    (ax if both else side).legend(handles=handles, frameon=False, fontsize=8, loc="best")
    fig.suptitle("Sample quality vs likelihood: one point per run (best: lower left)")
    return _png(fig)


# ----- cost -----------------------------------------------------------------------------------
def _bars(ax: Any, rows: Sequence[Row], key: str, scale: float, fmt: str) -> None:
    indices = [i for i, r in enumerate(rows) if key in r.values]
    values = [rows[i].values[key] * scale for i in indices]
    ys = list(range(len(indices)))
    ax.barh(ys, values, color=[colour(i) for i in indices])
    ax.set_yticks(ys, [rows[i].name for i in indices])
    ax.invert_yaxis()  # first run on top, as in the table
    for y, v in zip(ys, values, strict=True):
        ax.annotate(fmt.format(v), (v, y), xytext=(4, 0), textcoords="offset points",
                    va="center", fontsize=9)
    ax.grid(True, axis="x", alpha=0.3)
    ax.margins(x=0.25)


def cost(rows: Sequence[Row], speed_note: str = "") -> bytes | None:
    """PNG of two bar charts: training time (minutes) and sampling speed (images/s, log
    scale: autoregressive samplers are orders of magnitude slower than one-pass ones)."""
    has_time = any("train_time" in r.values for r in rows)
    has_speed = any("speed" in r.values for r in rows)
    if not (has_time or has_speed):
        return None
    panels = [p for p, on in (("time", has_time), ("speed", has_speed)) if on]
    fig = _figure(12.5, max(3.2, 1.8 + 0.45 * len(rows)))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, panel in zip(axes, panels, strict=True):
        if panel == "time":
            _bars(ax, rows, "train_time", 1 / 60, "{:.1f} min")
            ax.set_xlabel("training time (minutes, lower is cheaper)")
            ax.set_title("Training time", fontsize=10)
        else:
            _bars(ax, rows, "speed", 1.0, "{:,.0f}/s")
            ax.set_xscale("log")
            ax.set_xlabel("sampling speed (images/s, log scale, higher is faster)")
            ax.set_title("Sampling speed" + (f" ({speed_note})" if speed_note else ""),
                         fontsize=10)
    handles = [Line2D([], [], ls="none", marker=marker(r.family), color=colour(i),
                      label=f"{_label(r)}: {r.family or 'family unknown'}")
               for i, r in enumerate(rows)]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(3, len(rows)),
               frameon=False, fontsize=8)
    fig.suptitle("Cost of each run")
    return _png(fig)
