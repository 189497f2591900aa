"""Progress of every long loop (genvision.progress): a tqdm bar on a terminal, the notebook
widget in Jupyter, plain periodic lines in a log (nohup, CI), nothing when disabled.

The unit tests drive :func:`progress_bar` with a fake clock and a fake stream; one test runs
``genvision evaluate`` with stderr redirected to a file, as ``nohup`` or CI would."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tqdm import tqdm

import genvision.progress as gp
from genvision.progress import LineThrottle, PlainProgress, progress_bar, timing_text
from genvision.train.progress import Progress


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Log(io.StringIO):
    """A log file: not a terminal; records the clock at every line written."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock, self.times = clock, []

    def write(self, s: str) -> int:
        self.times += [self.clock.t] * s.count("\n")
        return super().write(s)


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _run(items, seconds_each: float, **kw) -> Log:
    """Iterate ``progress_bar(items)`` while the fake clock advances ``seconds_each`` a step."""
    clock = FakeClock()
    log = Log(clock)
    for _ in progress_bar(items, stream=log, clock=clock, **kw):
        clock.t += seconds_each
    return log


def test_plain_lines_at_each_tenth_and_no_more_often():
    log = _run(range(100), 0.5, desc="sampling", unit="batch", every_s=30, min_gap_s=1.0)
    lines = log.getvalue().splitlines()
    assert len(lines) == 10  # 50 s in all: one line per tenth, none per step, no repeat
    assert lines[0] == "sampling: 10/100 batches (10%) | 0:05 elapsed, ETA 0:45"
    assert lines[4].startswith("sampling: 50/100 batches (50%) | 0:25 elapsed, ETA 0:25")
    assert lines[-1] == "sampling: 100/100 batches (100%) | 0:50 elapsed"  # the final line
    assert "\r" not in log.getvalue()


def test_plain_lines_every_interval_when_the_total_is_unknown():
    log = _run(iter(range(40)), 10.0, desc="decoding", unit="image", every_s=30)
    lines = log.getvalue().splitlines()
    assert lines[0] == "decoding: 3 images | 0:30 elapsed"
    assert log.times[:-1] == [30.0 * k for k in range(1, 14)]  # a line every 30 s
    assert lines[-1] == "decoding: 40 images | 6:40 elapsed"  # and the final count


def test_tenth_lines_keep_a_minimum_gap_and_a_fast_loop_writes_only_its_final_line():
    log = _run(range(50), 0.08, desc="features", unit="batch", every_s=30, min_gap_s=1.0)
    gaps = [b - a for a, b in zip([0.0, *log.times], log.times[:-1], strict=False)]
    assert gaps and min(gaps) >= 1.0 - 1e-9  # tenths come every 0.4 s; lines >= 1 s apart
    assert log.getvalue().splitlines()[-1].startswith("features: 50/50 batches (100%)")
    blink = _run(range(1000), 0.0001, desc="sampling", unit="batch", min_gap_s=1.0)
    assert blink.getvalue() == "sampling: 1,000/1,000 batches (100%) | 0:00 elapsed\n"


def test_total_and_update_form_shows_the_postfix_and_a_final_line():
    clock = FakeClock()
    log = Log(clock)
    with progress_bar(total=20, desc="feature net", unit="step", stream=log, clock=clock,
                      every_s=30, min_gap_s=0) as bar:
        assert isinstance(bar, PlainProgress)
        for step in range(1, 16):  # stops early: the final line says where
            clock.t = step * 2.0
            bar.set_postfix(loss=f"{1 / step:.3f}")
            bar.update(1)
    lines = log.getvalue().splitlines()
    assert lines[0] == "feature net: 2/20 steps (10%) | loss=0.500 | 0:04 elapsed, ETA 0:36"
    assert lines[-1].startswith("feature net: 15/20 steps (75%) | loss=0.067 | 0:30 elapsed")
    assert len(lines) == 8  # tenths 1..7 (steps 2..14), then the final line at step 15


def test_disabled_writes_nothing_anywhere():
    for stream in (io.StringIO(), Tty()):
        for _ in progress_bar(range(10), desc="x", disable=True, stream=stream):
            pass
        with progress_bar(total=10, disable=True, stream=stream) as bar:
            bar.update(10)
        assert stream.getvalue() == ""


def test_a_terminal_gets_a_tqdm_bar_not_plain_lines():
    tty = Tty()
    bar = progress_bar(range(5), desc="sampling", unit="batch", stream=tty)
    assert isinstance(bar, tqdm)
    assert list(bar) == list(range(5))
    text = tty.getvalue()
    assert "\r" in text and "5/5" in text and "sampling: 5/5 batches" not in text


MADE: list[dict] = []  # the keyword arguments of every FakeNotebookBar


class FakeNotebookBar:
    """Stands in for tqdm.auto's widget (no Jupyter here); records how it was made."""

    def __init__(self, iterable=None, **kwargs):
        self.iterable = iterable
        MADE.append(kwargs)

    def update(self, n=1):
        pass

    def close(self):
        pass


def test_the_notebook_widget_in_jupyter_even_though_stderr_is_no_terminal(monkeypatch):
    monkeypatch.setattr(gp, "in_notebook", lambda: True)
    monkeypatch.setattr(gp, "notebook_tqdm", FakeNotebookBar)
    MADE.clear()
    stream = io.StringIO()
    bar = progress_bar(range(3), desc="sampling", unit="batch", stream=stream)
    assert isinstance(bar, FakeNotebookBar) and MADE[0]["desc"] == "sampling"
    training = Progress(0, 10, None, True, stream=stream)  # the training loop's display too
    assert isinstance(training.bar, FakeNotebookBar) and not training.plain
    assert stream.getvalue() == ""
    monkeypatch.setattr(gp, "in_notebook", lambda: False)
    assert isinstance(progress_bar(range(3), stream=stream), PlainProgress)


def test_line_throttle_and_timing_text():
    throttle = LineThrottle(0.0, every_s=30, min_gap_s=0)
    assert not throttle.due(5.0, 0.05)  # neither a new tenth nor 30 s
    assert throttle.due(6.0, 0.1)  # a new tenth
    assert not throttle.due(7.0, 0.15)
    assert throttle.due(36.0, 0.15)  # 30 s since the last line
    assert timing_text(42, 0.3) == "0:42 elapsed, ETA 1:38"
    assert timing_text(42, None) == timing_text(42, 1.0) == "0:42 elapsed"


def test_evaluate_writes_plain_progress_lines_to_a_log_file(tiny_vae_run, tmp_path):
    """`genvision evaluate ... 2> log`: the feature network's training (a fresh cache, so it
    trains), sampling and feature extraction write plain lines, no carriage returns."""
    log = tmp_path / "evaluate.log"
    env = {**os.environ, "GENVISION_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(Path(gp.__file__).parents[1]),
                                          os.environ.get("PYTHONPATH", "")])}
    with open(log, "w") as err:
        proc = subprocess.run(
            [sys.executable, "-m", "genvision", "evaluate", str(tiny_vae_run),
             "--metrics", "fid", "--samples", "200", "--n", "200"],
            stdout=subprocess.PIPE, stderr=err, text=True, env=env, timeout=300)
    text = log.read_text()
    assert proc.returncode == 0, text
    assert "\r" not in text
    lines = text.splitlines()
    assert any(line.startswith("feature net: ") and "steps (100%)" in line for line in lines)
    assert any(line.startswith("sampling: ") and "batches (100%)" in line for line in lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
