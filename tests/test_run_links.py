"""Run directories never write through symbolic links, ``checkpoints/latest`` stays inside
the run's own ``checkpoints/``, and pruning is rename-then-delete (issue 16).

An attacker (or a careless copy) can plant links in a run directory: ``.lock`` or
``metrics.jsonl`` pointing at a user's file would get that file truncated or appended to,
and a ``latest`` naming ``../../other_run/...`` would load (and resume into) another run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import tiny_model as tiny  # tests/tiny_model.py: the loop's tiny test model
from genvision.cli import main
from genvision.errors import CheckpointError, UserError
from genvision.models.base import resolve_model_dir
from genvision.runs.load import model_dir
from genvision.runs.records import RunInfo, merge_evaluation, write_run_info
from genvision.storage import atomic_write_text
from genvision.train import TrainConfig, load_training_state, train
from genvision.train import checkpoint as ckpt
from genvision.train.lock import RunLock
from genvision.train.metrics_log import MetricsLog

PRECIOUS = b"the user's own file\n"


def run(run_dir, resume=False, **kw):
    cfg = TrainConfig(**{"steps": 4, "batch_size": 8, "checkpoint_every": 2,
                         "progress": False, **kw})
    return train(tiny.TinyModel(tiny.TinyConfig()), tiny.make_data(), cfg, run_dir,
                 resume=resume)


def plant_link(link: Path, tmp_path: Path, name: str = "victim") -> Path:
    """Replace ``link`` by a symlink to a fresh file holding PRECIOUS; returns the target."""
    target = tmp_path / name
    target.write_bytes(PRECIOUS)
    if link.exists() or link.is_symlink():
        link.unlink()
    link.symlink_to(target)
    return target


def assert_refused_link(exc: BaseException, name: str) -> None:
    assert_refused_link_text(str(exc), name)


def assert_refused_link_text(msg: str, name: str) -> None:
    assert "\n" not in msg and name in msg and "link" in msg and "fix:" in msg


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A finished tiny run (checkpoints at steps 2 and 4), copied by each test that edits it."""
    path = tmp_path_factory.mktemp("links") / "run"
    run(path)
    return path


@pytest.fixture
def run_dir(trained, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(trained, copy, symlinks=True)
    return copy


# ----- writes never follow a link ----------------------------------------------------------
def test_symlinked_lock_file_is_refused_and_its_target_kept(tmp_path):
    (tmp_path / "run").mkdir()
    target = plant_link(tmp_path / "run" / ".lock", tmp_path)
    with pytest.raises(UserError) as info:
        RunLock(tmp_path / "run").acquire()
    assert_refused_link(info.value, ".lock")
    assert target.read_bytes() == PRECIOUS


def test_dangling_lock_link_creates_nothing(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / ".lock").symlink_to(tmp_path / "created-by-the-link")
    with pytest.raises(UserError):
        RunLock(tmp_path / "run").acquire()
    assert not (tmp_path / "created-by-the-link").exists()


def test_resume_refuses_a_symlinked_lock(run_dir, tmp_path):
    target = plant_link(run_dir / ".lock", tmp_path)
    with pytest.raises(UserError) as info:
        run(run_dir, resume=True, steps=2)
    assert_refused_link(info.value, ".lock")
    assert target.read_bytes() == PRECIOUS


def test_metrics_log_never_writes_through_a_link(tmp_path):
    (tmp_path / "run").mkdir()
    target = plant_link(tmp_path / "run" / "metrics.jsonl", tmp_path)
    log = MetricsLog(tmp_path / "run", main=True)
    with pytest.raises(UserError) as info:
        log.clear()
    assert_refused_link(info.value, "metrics.jsonl")
    with pytest.raises(UserError):
        log.write({"step": 1, "loss": 0.5})
    assert target.read_bytes() == PRECIOUS


def test_resume_refuses_a_symlinked_metrics_log(run_dir, tmp_path):
    target = plant_link(run_dir / "metrics.jsonl", tmp_path)
    with pytest.raises(UserError) as info:
        run(run_dir, resume=True, steps=2)
    assert_refused_link(info.value, "metrics.jsonl")
    assert target.read_bytes() == PRECIOUS
    assert (run_dir / "metrics.jsonl").is_symlink()


def test_new_run_refuses_a_symlinked_samples_dir(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "run" / "samples").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UserError) as info:
        run(tmp_path / "run")
    assert_refused_link(info.value, "samples")
    assert not list((tmp_path / "elsewhere").iterdir())


def test_evaluation_merge_refuses_a_symlinked_metrics_json(run_dir, tmp_path):
    target = plant_link(run_dir / "metrics.json", tmp_path)
    with pytest.raises(UserError) as info:
        merge_evaluation(run_dir, {"kind": "fid", "fid": 1.0})
    assert_refused_link(info.value, "metrics.json")
    assert target.read_bytes() == PRECIOUS
    assert (run_dir / "metrics.json").is_symlink()


def test_atomic_writes_replace_a_link_not_its_target(tmp_path):
    # report.html, samples.png, loss.png, run.json: replace-by-rename swaps the link itself
    target = plant_link(tmp_path / "report.html", tmp_path)
    atomic_write_text(tmp_path / "report.html", "<html></html>")
    assert target.read_bytes() == PRECIOUS
    assert not (tmp_path / "report.html").is_symlink()
    assert (tmp_path / "report.html").read_text() == "<html></html>"


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "vae"
    assert main(["train", "vae", "--data", "digits", "--steps", "2", "--out", str(out),
                 "--latent-dim", "4", "--hidden", "8", "16", "--fc-dim", "32",
                 "--res-blocks", "0", "--ar-layers", "1", "--ar-channels", "4",
                 "--batch-size", "32", "--no-progress"]) == 0
    return out


@pytest.mark.parametrize("name, argv", [
    (".lock", ["train", "--resume", "{run}", "--steps", "1", "--no-progress"]),
    ("metrics.jsonl", ["train", "--resume", "{run}", "--steps", "1", "--no-progress"]),
    ("metrics.json", ["evaluate", "{run}", "--metrics", "nll"]),
])
def test_cli_refuses_a_symlinked_run_file_with_one_line(cli_run, tmp_path, capsys, name, argv):
    run_dir = tmp_path / "run"
    shutil.copytree(cli_run, run_dir, symlinks=True)
    target = plant_link(run_dir / name, tmp_path)
    capsys.readouterr()
    assert main([a.format(run=run_dir) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "Traceback" not in err[0]
    assert_refused_link_text(err[0], name)
    assert target.read_bytes() == PRECIOUS and (run_dir / name).is_symlink()


# ----- `latest` stays inside the run's own checkpoints/ -----------------------------------
@pytest.fixture
def other_run(trained, tmp_path) -> Path:
    copy = tmp_path / "other"
    shutil.copytree(trained, copy, symlinks=True)
    return copy


def loaders(run_dir):
    return (lambda: load_training_state(run_dir), lambda: ckpt.latest_checkpoint(run_dir),
            lambda: resolve_model_dir(run_dir), lambda: tiny.load_model(run_dir),
            lambda: run(run_dir, resume=True, steps=2))


@pytest.mark.parametrize("how", ["dotdot", "absolute", "nested", "hidden"])
def test_latest_naming_a_path_outside_checkpoints_is_refused(run_dir, other_run, how):
    step = (other_run / "checkpoints" / "latest").read_text().strip()
    name = {"dotdot": f"../../other/checkpoints/{step}",
            "absolute": str(other_run / "checkpoints" / step),
            "nested": f"{step}/../{step}",
            "hidden": ".tmp-" + step}[how]
    (run_dir / "checkpoints" / "latest").write_text(name + "\n")
    for load in loaders(run_dir):
        with pytest.raises(CheckpointError) as info:
            load()
        msg = str(info.value)
        assert "\n" not in msg and "latest" in msg and "fix:" in msg


def test_symlinked_checkpoint_dir_is_refused(run_dir, other_run):
    step = (run_dir / "checkpoints" / "latest").read_text().strip()
    shutil.rmtree(run_dir / "checkpoints" / step)
    (run_dir / "checkpoints" / step).symlink_to(other_run / "checkpoints" / step)
    before = sorted(p.name for p in (other_run / "checkpoints").iterdir())
    for load in loaders(run_dir):
        with pytest.raises(CheckpointError) as info:
            load()
        assert "link" in str(info.value) and step in str(info.value)
    assert sorted(p.name for p in (other_run / "checkpoints").iterdir()) == before


def test_symlinked_checkpoints_folder_is_refused(run_dir, other_run):
    shutil.rmtree(run_dir / "checkpoints")
    (run_dir / "checkpoints").symlink_to(other_run / "checkpoints")
    for load in loaders(run_dir):
        with pytest.raises(CheckpointError) as info:
            load()
        assert "link" in str(info.value) and "checkpoints" in str(info.value)


def test_symlinked_stage_of_a_task_run_is_refused(trained, tmp_path):
    task = tmp_path / "task"
    task.mkdir()
    write_run_info(task, RunInfo(model="tiny-test", task="superres",
                                 stages={"srresnet": {}}, stage_order=["srresnet"]))
    (task / "srresnet").symlink_to(trained)
    with pytest.raises(CheckpointError) as info:
        model_dir(task)
    assert "srresnet" in str(info.value) and "link" in str(info.value)


def test_a_plain_latest_still_loads(run_dir):
    assert load_training_state(run_dir).step == 4
    assert resolve_model_dir(run_dir) == run_dir / "checkpoints" / "step-00000004"


# ----- pruning is rename-then-delete; debris is cleaned ------------------------------------
class Killed(BaseException):
    """A kill -9 in the middle of a delete (BaseException: nothing may swallow it)."""


def save(run_dir: Path, step: int, keep: int = 1) -> Path:
    model = tiny.TinyModel(tiny.TinyConfig())
    return ckpt.save_checkpoint(run_dir, step, model=model, tensors={}, meta={"step": step},
                                keep=keep)


def complete(path: Path) -> bool:
    return all((path / f).is_file() for f in
               ("config.json", "model.safetensors", ckpt.TRAINER_JSON, ckpt.TRAINER_TENSORS))


def test_kill_while_pruning_leaves_no_half_deleted_checkpoint(tmp_path, monkeypatch):
    save(tmp_path, 1)
    real = shutil.rmtree

    def dies_half_way(path, *args, **kwargs):
        path = Path(path)
        if path.is_dir() and (path / ckpt.TRAINER_JSON).exists():
            (path / ckpt.TRAINER_JSON).unlink()   # the first file is gone, then the kill
            raise Killed
        return real(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", dies_half_way)
    with pytest.raises(Killed):
        save(tmp_path, 2)
    monkeypatch.undo()
    listed = ckpt.list_checkpoints(tmp_path)
    assert [s for s, _ in listed] == [2]
    assert all(complete(p) for _, p in listed)
    assert ckpt.latest_checkpoint(tmp_path).name == "step-00000002"
    assert list((tmp_path / "checkpoints").glob(".trash-*"))  # what the kill left
    save(tmp_path, 3)
    root = tmp_path / "checkpoints"
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step-00000003"]


def test_stale_latest_temp_files_and_trash_are_cleaned_at_save(tmp_path):
    save(tmp_path, 1, keep=2)
    root = tmp_path / "checkpoints"
    (root / ".latest.abc123.tmp").write_text("step-0000")
    (root / ".trash-step-00000000").mkdir()
    (root / ".trash-step-00000000" / "model.safetensors").write_bytes(b"x")
    save(tmp_path, 2, keep=2)
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step-00000001",
                                                      "step-00000002"]


def test_resume_cleans_stale_temp_files_and_trash(run_dir):
    root = run_dir / "checkpoints"
    (root / ".latest.abc123.tmp").write_text("step-0000")
    (root / ".trash-step-00000001").mkdir()
    run(run_dir, resume=True, steps=1, checkpoint_every=100)
    assert not list(root.glob(".latest.*.tmp")) and not list(root.glob(".trash-*"))


def test_debris_cleaning_never_follows_a_link(tmp_path):
    save(tmp_path, 1)
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "file").write_bytes(PRECIOUS)
    (tmp_path / "checkpoints" / ".trash-step-00000000").symlink_to(keep)
    save(tmp_path, 2)
    assert (keep / "file").read_bytes() == PRECIOUS
    assert not os.path.lexists(tmp_path / "checkpoints" / ".trash-step-00000000")
