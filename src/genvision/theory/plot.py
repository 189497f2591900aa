"""The figure of ``genvision theory kl-mle``: KL and NLL over training, and the final fit."""

from __future__ import annotations

import io
import os

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor

from ..storage import atomic_write_bytes
from .kl_mle import FitResult, all_states


def plot_kl_mle(results: list[FitResult], p_data: Tensor, path: str | os.PathLike) -> None:
    """Write a PNG: left, exact NLL (cross-entropy), KL and H(p_D) against the step for
    every family; right, p_D and each fitted p_theta over the 16 states.

    Args:
        results: one :class:`FitResult` per family.
        p_data: float64 [16] target distribution.
        path: PNG file to write (atomically).
    """
    fig = Figure(figsize=(11, 4), dpi=110)
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
    for res, colour in zip(results, colours, strict=False):
        steps = [r["step"] for r in res.rows]
        left.plot(steps, [r["nll"] for r in res.rows], color=colour, lw=1.8,
                  label=f"{res.family}: NLL = E[-log p_theta]")
        left.plot(steps, [r["kl"] for r in res.rows], color=colour, lw=1.8, ls="--",
                  label=f"{res.family}: KL(p_D || p_theta)")
    h = results[0].rows[0]["entropy"] if results and results[0].rows else 0.0
    left.axhline(h, color="black", lw=1, ls=":", label=f"H(p_D) = {h:.4f}")
    left.set_xlabel("training step")
    left.set_ylabel("nats")
    left.set_title("NLL - KL = H(p_D) at every step")
    left.legend(fontsize=7)
    left.grid(alpha=0.3)

    states = all_states()
    idx = range(len(states))
    width = 0.8 / (1 + len(results))
    right.bar([i - 0.4 + width / 2 for i in idx], p_data.tolist(), width, color="grey",
              label="p_D")
    for j, (res, colour) in enumerate(zip(results, colours, strict=False)):
        q = res.model.log_prob(states).exp().detach()
        right.bar([i - 0.4 + width * (j + 1.5) for i in idx], q.tolist(), width, color=colour,
                  label=f"p_theta ({res.family})")
    right.set_xticks(list(idx))
    right.set_xticklabels(["".join(str(int(b)) for b in s) for s in states], rotation=90,
                          fontsize=7)
    right.set_xlabel("2x2 image (pixels in raster order)")
    right.set_ylabel("probability")
    right.set_title("the data distribution and the fits")
    right.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())
