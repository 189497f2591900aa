"""Training progress that shows wherever a run is watched.

* a terminal: a tqdm bar on stderr;
* a Jupyter notebook: tqdm's notebook widget (``tqdm.auto`` picks it), although the
  kernel's stderr is not a terminal;
* anything else (``nohup``, CI logs, a pipe): one plain line every
  :data:`~genvision.train.config.PROGRESS_SECONDS` seconds and at every tenth of the
  budget, e.g. ``step 300/1000 (30%) | loss 0.1234 | 812 images/s | 0:42 elapsed, ETA 1:38``,
  instead of nothing until the run's last line.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import IO

from tqdm import tqdm as terminal_tqdm
from tqdm.auto import tqdm as auto_tqdm

from .config import PROGRESS_SECONDS


def in_notebook() -> bool:
    """True inside a Jupyter (IPython kernel) session, where tqdm.auto draws a widget."""
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    shell = get() if callable(get) else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def clock_text(seconds: float) -> str:
    """``1:05`` / ``1:02:05`` for a duration in seconds."""
    s = max(0, int(round(seconds)))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


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
        self.t0 = self.last_line_t = clock()
        self.last_tenth = 0
        self.bar: terminal_tqdm | None = None
        self.plain = False
        if not enabled:
            return
        total = None if math.isinf(target) else int(target)
        if in_notebook() or _is_tty(self.stream):
            make = auto_tqdm if in_notebook() else terminal_tqdm
            self.bar = make(total=total, initial=start, unit="step", dynamic_ncols=True,
                            file=self.stream)
        else:
            self.plain = True

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
        tenth = int(frac * 10 + 1e-9) if frac is not None else 0
        if now - self.last_line_t < self.every_s and tenth <= self.last_tenth:
            return
        self.last_line_t, self.last_tenth = now, max(tenth, self.last_tenth)
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
        eta = ""
        if frac:  # the rest of the budget at the pace so far
            eta = f", ETA {clock_text(elapsed * (1 - frac) / frac)}"
        return (f"{where} | loss {loss:.4g} | {images_per_s:.0f} images/s | "
                f"{clock_text(elapsed)} elapsed{eta}")

    def write(self, message: str) -> None:
        """A message (e.g. a warning) that does not break the bar."""
        if self.bar is not None:
            self.bar.write(message, file=self.stream)
        else:
            print(message, file=self.stream)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _is_tty(stream: IO[str]) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except ValueError:  # a closed stream
        return False
