"""Progress that shows wherever a long loop is watched.

* a terminal: a tqdm bar on stderr;
* a Jupyter notebook: tqdm's notebook widget (``tqdm.auto`` picks it), although the
  kernel's stderr is not a terminal;
* anything else (``nohup``, CI logs, a pipe): plain lines, one every
  :data:`PROGRESS_SECONDS` seconds and at every tenth of the work, plus a final one, e.g.
  ``sampling: 30/100 batches (30%) | 0:42 elapsed, ETA 1:38``, instead of a bar's carriage
  returns (unreadable in a log file) or nothing.

:func:`progress_bar` is a drop-in for ``tqdm(...)`` (the iterable and the total/update
forms) that every long loop uses; the training loop's own display
(:class:`genvision.train.progress.Progress`) picks its kind and throttles its lines with
the same pieces (:func:`display_kind`, :func:`tqdm_bar`, :class:`LineThrottle`,
:func:`timing_text`).

This module sits at the bottom of the layers (beside ``errors``), so that data decoding and
``nn`` training loops may use it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any, Literal

from tqdm import tqdm as terminal_tqdm
from tqdm.auto import tqdm as notebook_tqdm

__all__ = ["MIN_GAP_SECONDS", "PROGRESS_SECONDS", "LineThrottle", "PlainProgress",
           "clock_text", "display_kind", "in_notebook", "is_tty", "progress_bar",
           "timing_text", "tqdm_bar"]

#: seconds between the plain progress lines of a loop whose stderr is not a terminal
PROGRESS_SECONDS = 30.0
#: least seconds between two tenth-of-the-work lines of :func:`progress_bar`: a loop that
#: ends in a blink writes its final line only, not eleven
MIN_GAP_SECONDS = 1.0

#: where progress goes: nowhere, a terminal bar, a notebook widget, or plain lines
Kind = Literal["off", "terminal", "notebook", "plain"]


def in_notebook() -> bool:
    """True inside a Jupyter (IPython kernel) session, where tqdm.auto draws a widget."""
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    shell = get() if callable(get) else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def is_tty(stream: IO[str]) -> bool:
    """Whether ``stream`` is a terminal (False for files, pipes and closed streams)."""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except ValueError:  # a closed stream
        return False


def display_kind(stream: IO[str], enabled: bool) -> Kind:
    """How progress written to ``stream`` is shown: the notebook first (its kernel's stderr
    is no terminal, yet it draws widgets), then a terminal bar, else plain lines."""
    if not enabled:
        return "off"
    if in_notebook():
        return "notebook"
    return "terminal" if is_tty(stream) else "plain"


def tqdm_bar(kind: Kind, stream: IO[str], **kwargs: Any) -> terminal_tqdm:
    """A tqdm bar on ``stream``: the notebook widget for ``kind == "notebook"``, else the
    terminal bar (``kind == "off"`` gives a disabled one). ``kwargs`` go to tqdm."""
    make = notebook_tqdm if kind == "notebook" else terminal_tqdm
    return make(file=stream, disable=kind == "off", **kwargs)


def clock_text(seconds: float) -> str:
    """``1:05`` / ``1:02:05`` for a duration in seconds."""
    s = max(0, int(round(seconds)))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def timing_text(elapsed: float, frac: float | None) -> str:
    """``0:42 elapsed, ETA 1:38``: the time so far and, while ``frac`` (share of the work
    done) is in (0, 1), the rest at the pace so far."""
    text = f"{clock_text(elapsed)} elapsed"
    if frac and frac < 1:
        text += f", ETA {clock_text(elapsed * (1 - frac) / frac)}"
    return text


class LineThrottle:
    """Decides when the next plain progress line is due.

    A line is due once ``every_s`` seconds have passed since the last one, or when a new
    tenth of the work is done, but tenth lines come no closer than ``min_gap_s`` seconds
    after the last line (a tenth passed meanwhile is reported by the next line that is due).

    Args:
        t0: the clock at the start (seconds). every_s: seconds between lines.
        min_gap_s: least seconds between a line and the next tenth line.
    """

    def __init__(self, t0: float, every_s: float, min_gap_s: float = 0.0):
        self.every_s, self.min_gap_s = every_s, min_gap_s
        self.last_t, self.last_tenth = t0, 0

    def due(self, now: float, frac: float | None) -> bool:
        """Whether a line is due at clock ``now`` with ``frac`` (None: unknown) of the work
        done; when it is, the line counts as written."""
        tenth = int(frac * 10 + 1e-9) if frac is not None else 0
        waited = now - self.last_t
        if waited < self.every_s and (tenth <= self.last_tenth or waited < self.min_gap_s):
            return False
        self.last_t, self.last_tenth = now, max(tenth, self.last_tenth)
        return True


def _plural(unit: str) -> str:
    """``batch`` -> ``batches``, ``image`` -> ``images``; tqdm's ``it`` stays."""
    if unit == "it" or not unit:
        return unit
    return unit + ("es" if unit.endswith(("s", "x", "ch", "sh")) else "s")


class PlainProgress:
    """tqdm's interface written as plain progress lines (see the module docstring).

    ``sampling: 30/100 batches (30%) | loss=0.12 | 0:42 elapsed, ETA 1:38``; without a
    total, ``decoding: 3,000 images | 0:42 elapsed``. A line is written when
    :class:`LineThrottle` says so, and a final one at :meth:`close` (unless the last line
    already showed the final count).

    Args:
        iterable: what to iterate over (None for the total/update form).
        total: the count of the whole work (default ``len(iterable)`` when it has one).
        desc: label at the start of each line. unit: what is counted (singular).
        stream: where lines go. clock: seconds (monotonic), for tests.
        every_s, min_gap_s: see :class:`LineThrottle`.
    """

    def __init__(self, iterable: Iterable[Any] | None = None, *, total: float | None = None,
                 desc: str | None = None, unit: str = "it", stream: IO[str],
                 clock: Callable[[], float] = time.monotonic,
                 every_s: float = PROGRESS_SECONDS, min_gap_s: float = MIN_GAP_SECONDS):
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc or "", unit
        self.stream, self.clock = stream, clock
        self.n = 0
        self.postfix = ""
        self.t0 = clock()
        self.throttle = LineThrottle(self.t0, every_s, min_gap_s)
        self.written_n: int | None = None  # the count of the last line written
        self.closed = False

    def __iter__(self) -> Iterator[Any]:
        if self.iterable is None:
            raise TypeError("this progress display was made without an iterable")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fraction(self) -> float | None:
        """Share of the work done, or None without a total."""
        return min(1.0, self.n / self.total) if self.total else None

    def update(self, n: float = 1) -> None:
        """Count ``n`` more units done; write a line when one is due."""
        self.n += int(n)
        if not self.closed and self.throttle.due(self.clock(), self.fraction()):
            self._write_line()

    def set_postfix(self, ordered_dict: dict[str, Any] | None = None, refresh: bool = True,
                    **kwargs: Any) -> None:
        """Show ``key=value`` pairs (e.g. the loss) in the next lines."""
        self.postfix = ", ".join(f"{k}={v}" for k, v in {**(ordered_dict or {}),
                                                         **kwargs}.items())

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = s

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        """Change the label of the next lines."""
        self.desc = desc or ""

    def refresh(self) -> None:
        """Nothing to redraw: lines are written when due (tqdm interface)."""

    def write(self, s: str, file: IO[str] | None = None, end: str = "\n") -> None:
        """A message between progress lines (tqdm interface)."""
        out = self.stream if file is None else file
        out.write(s + end)
        out.flush()

    def line(self) -> str:
        """The progress line for the work done so far."""
        frac = self.fraction()
        count = f"{self.n:,}" + (f"/{int(self.total):,}" if self.total else "")
        count += f" {_plural(self.unit)}" + (f" ({frac:.0%})" if frac is not None else "")
        parts = [f"{self.desc}: {count}" if self.desc else count]
        if self.postfix:
            parts.append(self.postfix)
        parts.append(timing_text(self.clock() - self.t0, frac))
        return " | ".join(parts)

    def _write_line(self) -> None:
        self.write(self.line())
        self.written_n = self.n

    def close(self) -> None:
        """Write the final line (once; none when nothing was done)."""
        if self.closed:
            return
        self.closed = True
        if self.n and self.written_n != self.n:
            self._write_line()


def progress_bar(iterable: Iterable[Any] | None = None, *, total: float | None = None,
                 desc: str | None = None, unit: str = "it", disable: bool = False,
                 leave: bool = True, stream: IO[str] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 every_s: float = PROGRESS_SECONDS, min_gap_s: float = MIN_GAP_SECONDS,
                 **tqdm_kwargs: Any) -> terminal_tqdm | PlainProgress:
    """``tqdm(iterable, total=..., desc=..., unit=...)`` that shows wherever it is watched.

    A tqdm bar on a terminal, the notebook widget in Jupyter, plain lines otherwise (see
    the module docstring); nothing with ``disable=True``. Use it as tqdm is used: iterate
    over it, or ``update(n)`` it (as a context manager or with ``close()``).

    Args:
        iterable: what to iterate over (None for the total/update form).
        total: the count of the whole work (default ``len(iterable)``).
        desc: the label. unit: what is counted, singular (``batch``, ``image``).
        disable: show nothing. leave: keep a terminal bar after the loop (plain lines
            always stay).
        stream: where to write (default: stderr at call time). clock: seconds, for tests.
        every_s, min_gap_s: spacing of plain lines (:class:`LineThrottle`).
        tqdm_kwargs: more tqdm options (``mininterval``, ``dynamic_ncols``...); plain lines
            ignore them.
    """
    stream = sys.stderr if stream is None else stream
    kind = display_kind(stream, not disable)
    if kind == "plain":
        return PlainProgress(iterable, total=total, desc=desc, unit=unit, stream=stream,
                             clock=clock, every_s=every_s, min_gap_s=min_gap_s)
    return tqdm_bar(kind, stream, iterable=iterable, total=total, desc=desc, unit=unit,
                    leave=leave, **tqdm_kwargs)
