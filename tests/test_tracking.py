"""Experiment tracking: TensorBoard event files beside metrics.jsonl (read back with
TensorBoard's own reader), optional W&B / MLflow loggers, and plain progress lines when
stderr is not a terminal."""

from __future__ import annotations

import io
import json
import math
import sys
from pathlib import Path

import pytest

import tiny_model as tiny  # tests/tiny_model.py: the loop's tiny test model
from genvision.errors import UserError
from genvision.train import TrainConfig, tracking, train
from genvision.train.progress import Progress, clock_text


def _reader():
    """TensorBoard's own event reader (the tests that read event files need it)."""
    return pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator",
        reason="the tensorboard package (the dev / tracking extra) is not installed")


def _train(run_dir: Path, **kw) -> None:
    opts = dict(batch_size=8, lr=0.05, steps=12, log_every=3, eval_every=6, sample_every=6,
                checkpoint_every=6, seed=3, progress=False)
    opts.update(kw)
    train(tiny.TinyModel(tiny.TinyConfig()), tiny.make_data(), TrainConfig(**opts), run_dir)


def _events(run_dir: Path):
    event_accumulator = _reader()
    acc = event_accumulator.EventAccumulator(
        str(run_dir / tracking.TENSORBOARD), size_guidance={event_accumulator.SCALARS: 0,
                                                            event_accumulator.IMAGES: 0})
    acc.Reload()
    return acc


def test_tensorboard_scalars_equal_metrics_jsonl_and_grids_are_logged(tmp_path):
    _train(tmp_path / "run")
    lines = [json.loads(s) for s in (tmp_path / "run" / "metrics.jsonl").read_text()
             .splitlines()]
    acc = _events(tmp_path / "run")
    tags = set(acc.Tags()["scalars"])
    expected: dict[str, list[tuple[int, float]]] = {}
    for line in lines:
        for key, value in line.items():
            if key in ("step", "split"):
                continue
            expected.setdefault(f"{line['split']}/{key}", []).append((line["step"], value))
    assert {"train/loss", "train/mse", "val/loss", "train/lr", "train/images_per_s"} <= tags
    assert tags == set(expected)
    for tag, points in expected.items():
        got = [(e.step, e.value) for e in acc.Scalars(tag)]
        assert [s for s, _ in got] == [s for s, _ in points], tag
        for (_, value), (_, want) in zip(got, points, strict=True):  # stored as float32
            assert math.isclose(value, want, rel_tol=1e-6, abs_tol=1e-6), (tag, value, want)
    # the progress grids (every 6 steps) and the final one, as the samples/ PNGs
    assert [e.step for e in acc.Images("samples")] == [6, 12]
    assert len(list((tmp_path / "run" / "samples").glob("*.png"))) == 2


def test_no_tensorboard_writes_no_event_files(tmp_path):
    _reader()
    _train(tmp_path / "run", tensorboard=False, steps=3)
    assert not (tmp_path / "run" / tracking.TENSORBOARD).exists()


def test_a_new_run_replaces_the_event_files_of_an_earlier_start(tmp_path):
    _reader()
    old = tmp_path / "run" / tracking.TENSORBOARD
    old.mkdir(parents=True)
    (old / f"{tracking.EVENT_PREFIX}stale").write_bytes(b"")
    (old / "notes.txt").write_text("mine")  # not an event file: kept
    _train(tmp_path / "run", steps=3)
    names = sorted(p.name for p in old.iterdir())
    assert "notes.txt" in names and f"{tracking.EVENT_PREFIX}stale" not in names
    assert any(n.startswith(tracking.EVENT_PREFIX) for n in names)


def test_log_to_a_logger_that_is_not_installed_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setattr(tracking.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UserError) as err:
        _train(tmp_path / "run", log_to="wandb")
    assert "pip install wandb" in err.value.one_line()
    assert not (tmp_path / "run").exists()  # refused before anything was written
    with pytest.raises(UserError, match="mlflow"):
        tracking.check_external("mlflow")
    with pytest.raises(UserError, match="log-to"):
        TrainConfig(log_to="neptune")


def test_missing_tensorboard_says_so_once_and_trains_on(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tracking, "tensorboard_available", lambda: False)
    _train(tmp_path / "run", steps=3)
    err = capsys.readouterr().err
    assert err.count("pip install tensorboard") == 1
    assert (tmp_path / "run" / "metrics.jsonl").is_file()


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_plain_progress_lines_when_the_stream_is_not_a_terminal():
    stream, clock = io.StringIO(), FakeClock()
    p = Progress(0, 100, None, True, stream=stream, clock=clock, every_s=30)
    assert p.bar is None and p.plain
    for step in range(1, 101):
        clock.t = step * 0.5  # 50 s in all: every tenth of the budget prints, not each step
        p.update(step, loss=1.0 / step, images_per_s=640)
    p.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[0].startswith("step 10/100 (10%) | loss 0.1 | 640 images/s | 0:05 elapsed")
    assert lines[0].endswith("ETA 0:45")
    assert lines[-1].startswith("step 100/100 (100%)")


def test_plain_progress_lines_every_interval_under_a_minutes_budget():
    stream, clock = io.StringIO(), FakeClock()
    p = Progress(0, math.inf, 600.0, True, stream=stream, clock=clock, every_s=30)
    for step in range(1, 41):
        clock.t = step * 10.0  # 400 s: a line each 30 s and at each tenth (60 s)
        p.update(step, loss=0.5, images_per_s=100)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("step 3 (5%)")
    assert 10 <= len(lines) <= 14
    assert "ETA" in lines[-1]


def test_progress_off_or_in_a_terminal_writes_no_plain_lines():
    stream = io.StringIO()
    Progress(0, 10, None, False, stream=stream).update(1, 0.1, 1.0)
    assert stream.getvalue() == ""

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    p = Progress(0, 10, None, True, stream=tty)
    assert p.bar is not None and not p.plain
    p.update(1, 0.1, 1.0)
    p.close()
    assert "step 1/10" not in tty.getvalue()  # a tqdm bar, not a plain line


def test_clock_text():
    assert clock_text(5) == "0:05" and clock_text(65) == "1:05"
    assert clock_text(3725) == "1:02:05"


class FakeWandb:
    """Records what the W&B logger sends (the real package is never installed here)."""

    def __init__(self):
        self.calls: list[tuple] = []

    def init(self, **kw):
        self.calls.append(("init", kw))

    def log(self, values, step):
        self.calls.append(("log", step, values))

    def Image(self, array):  # noqa: N802 - wandb's own name
        return ("image", array.shape)

    def finish(self):
        self.calls.append(("finish",))


def test_log_to_wandb_sends_the_metrics_jsonl_scalars(tmp_path, monkeypatch):
    fake = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    real = tracking.importlib.util.find_spec
    monkeypatch.setattr(tracking.importlib.util, "find_spec",
                        lambda name: object() if name == "wandb" else real(name))
    _train(tmp_path / "run", log_to="wandb", tensorboard=False, steps=6)
    lines = [json.loads(s) for s in (tmp_path / "run" / "metrics.jsonl").read_text()
             .splitlines()]
    logged = [(c[1], c[2]) for c in fake.calls if c[0] == "log" and "samples" not in c[2]]
    assert logged == [(line["step"], tracking.scalars(line)) for line in lines]
    assert fake.calls[0][0] == "init" and fake.calls[-1] == ("finish",)
    assert any(c[0] == "log" and "samples" in c[2] for c in fake.calls)  # the final grid
