"""One run layout and typed records: the names live in runs/layout.py, run.json and
metrics.json have one reader/writer each, and task runs and Python-API runs are runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

import genvision
from genvision.cli import main
from genvision.cli.colorize import cmd_colorize
from genvision.cli.superres import cmd_superres
from genvision.errors import UserError
from genvision.models.image_to_image import ImageTaskModel
from genvision.report.compare import collect
from genvision.runs import layout
from genvision.runs.records import (
    EvalRecord,
    RunInfo,
    merge_evaluation,
    protocol_key,
    read_evaluations,
    read_run_info,
    write_run_info,
)
from genvision.train import TrainConfig, TrainData, lock, tracking
from genvision.train import checkpoint as ckpt

SRC = Path(genvision.__file__).parent
SR_TINY = ["--width", "4", "--blocks", "1", "--disc-width", "4", "--disc-layers", "2",
           "--patch", "24", "--patches", "32", "--val-patches", "8", "--batch-size", "8",
           "--eval-every", "3", "--no-progress"]
COL_TINY = ["--width", "4", "--depth", "2", "--disc-width", "4", "--disc-layers", "2",
            "--patch", "24", "--patches", "32", "--val-patches", "8", "--batch-size", "8",
            "--eval-every", "3", "--no-progress"]

#: literal run-level file names that only runs/layout.py may spell out
NAMES = ("run.json", "task.json", "metrics.json", "metrics.jsonl", "samples.png", "loss.png",
         "report.html", "progress_strip.png", "compare.json", "compare.md", "compare.png")
#: documented exceptions: the training loop (below runs/, must not import upward) keeps
#: the names it writes; the loader resolves checkpoints/latest below runs/ too
EXCEPTIONS = {"train/checkpoint.py": {"metrics.jsonl"},
              # not run files: `genvision sample -o`'s default and the augment experiment's
              "cli/sample.py": {"samples.png"}, "cli/augment.py": {"samples.png"}}


def test_the_layout_is_the_only_place_with_run_file_names():
    alternatives = "|".join(re.escape(n) for n in NAMES)
    pattern = re.compile(rf"""["']({alternatives})["']""")
    offenders = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).as_posix()
        if rel == "runs/layout.py":
            continue
        allowed = EXCEPTIONS.get(rel, set())
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            found = set(pattern.findall(line)) - allowed
            if found and not line.lstrip().startswith("#"):
                offenders.append(f"{rel}:{lineno}: {sorted(found)}")
    assert not offenders, "file names outside runs/layout.py:\n" + "\n".join(offenders)


def test_the_loops_own_names_equal_the_layouts():
    assert (ckpt.CHECKPOINTS, ckpt.LATEST, ckpt.METRICS) == (
        layout.CHECKPOINTS, layout.LATEST, layout.METRICS_LOG)
    assert lock.LOCK_FILE == layout.LOCK_FILE
    assert tracking.TENSORBOARD == layout.TENSORBOARD_DIR
    run = layout.RunLayout("runs/x")
    assert run.latest == Path("runs/x/checkpoints/latest")
    assert run.stage("srgan").metrics_log == Path("runs/x/srgan/metrics.jsonl")


def test_run_info_round_trip_keeps_unknown_keys(tmp_path):
    info = RunInfo(model="vae", data={"source": "digits", "shape": [1, 8, 8]},
                   extra={"future_field": [1, 2]})
    write_run_info(tmp_path, info)
    back = read_run_info(tmp_path)
    assert back == info
    raw = json.loads((tmp_path / "run.json").read_text())
    assert "task" not in raw and raw["future_field"] == [1, 2]
    task = RunInfo(task="superres", stages={"srresnet": {"model": "srresnet"}})
    write_run_info(tmp_path, task)
    assert read_run_info(tmp_path).stages == task.stages


@pytest.mark.parametrize("text, match", [
    ("{not json", "is not valid JSON"), ("[1, 2]", "is not a JSON object"),
    ('{"model": "vae", "data": [1]}', "data is not a JSON object"),
    ('{"model": 3}', "model is not a string")])
def test_corrupt_or_foreign_run_files_are_one_line_errors(tmp_path, text, match):
    (tmp_path / "run.json").write_text(text)
    with pytest.raises(UserError, match=match) as err:
        read_run_info(tmp_path)
    assert "\n" not in str(err.value) and err.value.exit_code == 2
    with pytest.raises(UserError, match="not a genvision run"):
        read_run_info(tmp_path / "..")  # a directory without a record


def test_eval_records_merge_by_protocol_key_and_refuse_foreign_files(tmp_path):
    base = {"kind": "samples", "data": {"source": "digits"}, "split": "test",
            "protocol": {"n_fake": 10}, "seed": 0, "steps": 5}
    merge_evaluation(tmp_path, base | {"fid": 1.0})
    merge_evaluation(tmp_path, base | {"kid_mean": 0.1})
    merge_evaluation(tmp_path, base | {"protocol": {"n_fake": 10, "sampler": "x"}, "fid": 2.0})
    records = read_evaluations(tmp_path)
    assert {"fid", "kid_mean"} <= set(records[0].fields)
    assert len(records) == 2  # a new protocol field (a sampler) makes a new entry
    assert records[0].key() == protocol_key(base) and EvalRecord({}).kind == "likelihood"
    for text in ('{"evaluations": 3}', "[1]", "{oops"):
        (tmp_path / "metrics.json").write_text(text)
        with pytest.raises(UserError) as err:
            read_evaluations(tmp_path)
        assert "\n" not in str(err.value)
        assert main(["info", str(tmp_path)]) == 2


@pytest.fixture(scope="module")
def sr_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sr") / "sr4"
    assert cmd_superres(["train", "--scale", "4", "--steps", "6", "--out", str(out),
                         *SR_TINY]) == 0
    assert cmd_superres(["compare", str(out), "--images", "heldout", "--tile", "32"]) == 0
    return out


@pytest.fixture(scope="module")
def col_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("col") / "color"
    assert cmd_colorize(["train", "--steps", "6", "--out", str(out), *COL_TINY]) == 0
    assert cmd_colorize(["compare", str(out)]) == 0
    return out


def test_task_runs_have_run_json_and_open_with_genvision_load(sr_run, col_run):
    sr, col = read_run_info(sr_run), read_run_info(col_run)
    assert sr.task == "superres" and sr.stage_names == ["srresnet", "srgan"]
    assert col.task == "colorize" and col.stage_names == ["regression", "gan"]
    assert sr.model == "srgan" and col.model == "colorize-gan"  # the last stage trained
    assert not (sr_run / "task.json").exists()
    model = genvision.load(sr_run)
    assert isinstance(model, ImageTaskModel) and model.name == "srgan"
    assert genvision.load(col_run).name == "colorize-gan"
    assert {"srresnet", "srgan", "colorize-regression"} <= set(genvision.list_models())


def test_old_task_json_runs_are_still_read(sr_run, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(sr_run, old)
    data = json.loads((old / "run.json").read_text())
    (old / "run.json").unlink()
    (old / "task.json").write_text(json.dumps(data))
    assert read_run_info(old).task == "superres"
    assert genvision.load(old).name == "srgan"


def test_info_report_and_compare_on_task_runs(sr_run, col_run, capsys):
    capsys.readouterr()
    for run in (sr_run, col_run):
        assert main(["info", str(run), "--json"]) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["task"] and summary["stages"] and summary["evaluations"]
        assert main(["info", str(run)]) == 0  # the readable summary names the stages
        text = capsys.readouterr().out
        assert "task" in text.splitlines()[0] and "steps" in text and "image-to-image" in text
        assert main(["report", str(run)]) == 0
        capsys.readouterr()
        html = (run / "report.html").read_text(encoding="utf-8")
        assert 'id="stages"' in html and "compare.png" in html
        assert (run / read_run_info(run).stage_names[0] / "loss.png").is_file()
    board = collect([sr_run])
    assert "psnr_y" in board.rows[0].cells and board.rows[0].cells["model"] == "srgan"
    board = collect([col_run])
    assert "colourfulness" in board.rows[0].cells
    with pytest.raises(UserError, match="superres run but .* colorize run"):
        collect([sr_run, col_run])


def test_task_runs_and_model_runs_are_not_mixed(sr_run, tmp_path):
    write_run_info(tmp_path, RunInfo(model="vae", data={"source": "skimage", "shape": [3, 24, 24]}))
    with pytest.raises(UserError, match="model run"):
        collect([sr_run, tmp_path])
    with pytest.raises(UserError, match="superres run"):
        from genvision.evaluation.evaluate import EvalOptions, evaluate_run

        evaluate_run(sr_run, EvalOptions())


def test_a_python_api_run_gets_run_json_and_is_evaluated(tmp_path, capsys):
    from genvision.data import DataConfig, prepare
    from genvision.models.base import get_model_class

    data_cfg = DataConfig(data="digits")
    train_set = prepare(data_cfg, "binary")
    cls = get_model_class("nade")
    model = cls(cls.config_class(channels=1, image_size=tuple(train_set.x.shape[2:]),
                                 hidden=8))
    out = tmp_path / "api"
    result = genvision.train_run(model, TrainData(train_set.x), TrainConfig(steps=3,
                                 batch_size=32, progress=False), out, data_config="digits")
    assert result.step == 3
    info = read_run_info(out)
    assert info.model == "nade" and info.data_config["data"] == "digits"
    assert (out / "report.html").is_file()
    assert main(["evaluate", str(out), "--metrics", "nll", "--n", "50"]) == 0
    assert read_evaluations(out)[0].fields["nll_nats"] > 0
    assert main(["info", str(out), "--json"]) == 0 and "nll_nats" in capsys.readouterr().out
    with pytest.raises(UserError, match="already holds a run"):
        genvision.train_run(model, TrainData(train_set.x), TrainConfig(steps=1), out)
    assert torch.is_tensor(genvision.load(out).sample(2))
