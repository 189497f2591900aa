"""The run's ``metrics.jsonl``: running means of the loss terms over a logging window,
one JSON line per window, validation pass and warning (rank 0 writes)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..storage import open_no_follow
from . import checkpoint as ckpt


class MetricsLog:
    """Accumulates per-step terms and writes lines to ``run_dir/metrics.jsonl``.

    Args:
        run_dir: the run directory. main: whether this process writes (rank 0).
    """

    def __init__(self, run_dir: Path, main: bool):
        self.path, self.main = Path(run_dir) / ckpt.METRICS, main
        self.window = self.empty_window()

    @staticmethod
    def empty_window() -> dict[str, Any]:
        # ``counts``: steps that logged each term (a staged model's phases log different
        # terms; a window that spans the switch averages each over its own steps)
        return {"steps": 0, "images": 0, "seconds": 0.0, "sums": {}, "counts": {}}

    def add(self, terms: dict[str, float], images: int, seconds: float) -> None:
        """Fold one step's terms into the window."""
        w = self.window
        w["steps"] += 1
        w["images"] += images
        w["seconds"] += seconds
        counts = w.setdefault("counts", {})  # absent in windows of older checkpoints
        for k, v in terms.items():
            w["sums"][k] = w["sums"].get(k, 0.0) + v
            counts[k] = counts.get(k, 0) + 1

    def rate(self) -> float:
        """Images per second of the open window (0 when empty)."""
        w = self.window
        return w["images"] / w["seconds"] if w["seconds"] > 0 else 0.0

    def means(self) -> dict[str, float]:
        """Each term's mean over the steps of the window that logged it."""
        w = self.window
        counts = w.get("counts") or {}
        return {k: v / counts.get(k, w["steps"]) for k, v in w["sums"].items()}

    def clear(self) -> None:
        """A fresh run: drop the debris of one that never saved."""
        if self.main:
            os.close(open_no_follow(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC))

    def write(self, line: dict[str, Any]) -> None:
        """Append one JSON line (never through a symbolic link: see ``open_no_follow``)."""
        if self.main:
            fd = open_no_follow(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            with os.fdopen(fd, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(line) + "\n")
