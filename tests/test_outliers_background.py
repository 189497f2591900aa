"""The auto background model of ``genvision outliers`` after a kill (issue 16: a background
run killed before its first checkpoint left a directory that neither a new start nor a
reuse accepted)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from genvision.cli import main
from genvision.data.config import DataConfig
from genvision.runs import start as runs
from genvision.train import TrainConfig


def gv(*argv: object) -> int:
    return main([str(a) for a in argv])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("outliers-bg") / "pixelcnn"
    runs.start(runs.RunSpec("pixelcnn", {"layers": 1, "hidden": 8, "out_hidden": 8},
                            TrainConfig(steps=10, lr=3e-3, progress=False),
                            DataConfig(data="digits")), run)
    return run


@pytest.fixture(scope="module")
def finished(tiny_run, tmp_path_factory) -> Path:
    """An outliers --out whose background model trained to the end."""
    out = tmp_path_factory.mktemp("outliers-bg") / "o"
    assert gv("outliers", tiny_run, "--ood", "noise", "--n", "20", "--background-steps", "5",
              "--out", out) == 0
    return out


def killed_before_checkpoint(finished: Path, out: Path, keep: tuple[str, ...]) -> None:
    """What a kill before the background's first checkpoint leaves in ``out/background``."""
    (out / "background").mkdir(parents=True)
    for name in keep:
        shutil.copy(finished / "background" / name, out / "background" / name)


@pytest.mark.parametrize("keep", [("run.json", "metrics.jsonl", ".lock"), (".lock",)],
                         ids=["after run.json", "before run.json"])
def test_a_background_killed_before_its_first_checkpoint_is_replaced(
        tiny_run, finished, tmp_path, capsys, keep):
    out = tmp_path / "o"
    killed_before_checkpoint(finished, out, keep)
    capsys.readouterr()
    assert gv("outliers", tiny_run, "--ood", "noise", "--n", "20", "--background-steps", "5",
              "--out", out) == 0
    captured = capsys.readouterr()
    assert "training the background model" in captured.out
    if "run.json" in keep:  # a run record without a checkpoint: replaced, in one line
        assert "replacing the run" in captured.err and "no checkpoint" in captured.err
    result = json.loads((out / "outliers.json").read_text())
    assert result["background"]["reused"] is False
    assert (out / "background" / "checkpoints" / "latest").is_file()


def test_a_trained_background_with_other_settings_is_refused_not_replaced(
        tiny_run, finished, tmp_path, capsys):
    out = tmp_path / "o"
    shutil.copytree(finished / "background", out / "background")
    before = (out / "background" / "run.json").read_bytes()
    assert gv("outliers", tiny_run, "--ood", "noise", "--n", "20", "--background-steps", "6",
              "--out", out) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "background" in err
    assert (out / "background" / "run.json").read_bytes() == before
