"""Training progress that shows wherever a run is watched.

* a terminal: a tqdm bar on stderr;
* a Jupyter notebook: tqdm's notebook widget (``tqdm.auto`` picks it), although the
  kernel's stderr is not a terminal;
* anything else (``nohup``, CI logs, a pipe): one plain line every
  :data:`~genvision.progress.PROGRESS_SECONDS` seconds and at every tenth of the
  budget, e.g. ``step 300/1000 (30%) | loss 0.1234 | 812 images/s | 0:42 elapsed, ETA 1:38``,
  instead of nothing until the run's last line.

The choice of display and the spacing of plain lines are :mod:`genvision.progress`'s,
shared with every other long loop; this class adds what only training has: a budget in
steps or minutes (whichever ends first) and the loss and speed in each line.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import IO

from tqdm import tqdm

from ..progress import (
    PROGRESS_SECONDS,
    LineThrottle,
    clock_text,
    display_kind,
    in_notebook,
    timing_text,
    tqdm_bar,
)

# clock_text and in_notebook moved to genvision.progress; re-exported for older callers
__all__ = ["Progress", "clock_text", "in_notebook"]


class Progress:
    """The progress display of one training call (rank 0; others pass ``enabled=False``).

    Args:
        start: steps done before this call. target: the step this call ends at (inf when
            only a ``--minutes`` budget ends it). seconds: the ``--minutes`` budget in
            seconds, or None. enabled: False shows nothing.
        stream: where to write (default stderr). clock: seconds (monotonic), for tests.
        every_s: seconds between plain lines.
    """

    def __init__(self, start: int, target: float, seconds: float | None, enabled: bool, *,
                 stream: IO[str] | None = None, clock: Callable[[], float] = time.monotonic,
                 every_s: float = PROGRESS_SECONDS):
        self.start, self.target, self.seconds = start, target, seconds
        self.stream = sys.stderr if stream is None else stream
        self.clock, self.every_s = clock, every_s
        self.t0 = clock()
        self.throttle = LineThrottle(self.t0, every_s)
        kind = display_kind(self.stream, enabled)
        self.plain = kind == "plain"
        self.bar: tqdm | None = None
        if kind in ("terminal", "notebook"):
            total = None if math.isinf(target) else int(target)
            self.bar = tqdm_bar(kind, self.stream, total=total, initial=start, unit="step",
                                dynamic_ncols=True)

    def fraction(self, step: int, elapsed: float) -> float | None:
        """Share of this call's budget done (the budget that ends first), or None."""
        done = []
        if not math.isinf(self.target):
            done.append((step - self.start) / max(1.0, self.target - self.start))
        if self.seconds:
            done.append(elapsed / self.seconds)
        return min(1.0, max(done)) if done else None

    def update(self, step: int, loss: float, images_per_s: float) -> None:
        """After optimiser step ``step``: advance the bar, or write a line when due."""
        if self.bar is not None:
            self.bar.update(1)
            if step % 10 == 0 or step == self.target:
                self.bar.set_postfix(loss=f"{loss:.4g}", img_s=f"{images_per_s:.0f}")
            return
        if not self.plain:
            return
        now = self.clock()
        elapsed = now - self.t0
        frac = self.fraction(step, elapsed)
        if not self.throttle.due(now, frac):
            return
        self.stream.write(self.line(step, loss, images_per_s, elapsed, frac) + "\n")
        self.stream.flush()

    def line(self, step: int, loss: float, images_per_s: float, elapsed: float,
             frac: float | None) -> str:
        """One plain progress line."""
        where = f"step {step}"
        if not math.isinf(self.target):
            where += f"/{int(self.target)}"
        if frac is not None:
            where += f" ({frac:.0%})"
        return (f"{where} | loss {loss:.4g} | {images_per_s:.0f} images/s | "
                f"{timing_text(elapsed, frac)}")

    def write(self, message: str) -> None:
        """A message (e.g. a warning) that does not break the bar."""
        if self.bar is not None:
            self.bar.write(message, file=self.stream)
        else:
            print(message, file=self.stream)

    def close(self) -> None:
        """Close the bar (plain lines need no closing)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
