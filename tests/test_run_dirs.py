"""What a start may do to the directory given as ``--out`` (issue 16, items 1, 3 and 5).

1. a non-empty directory that is not a genvision run is refused (exit 2, one line) and
   left exactly as it was, for ``train`` and for the task commands;
3. a start into a directory another process holds writes nothing there (the lock is taken
   before anything is written, and the check-then-write happens under it);
5. a start refused by its options or data writes no run.json, and a run directory that
   never reached its first checkpoint (killed, diverged) is replaced by a new start.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import tiny_model as tiny  # tests/tiny_model.py: the loop's tiny test model
from genvision.cli import main
from genvision.errors import RunLocked, TrainingDiverged, UserError
from genvision.runs.claim import refuse_foreign
from genvision.runs.layout import is_run_dir
from genvision.runs.start import train_run
from genvision.train import TrainConfig
from genvision.train.lock import RunLock

TINY_VAE = ["--latent-dim", "4", "--hidden", "8", "16", "--fc-dim", "32", "--res-blocks", "0",
            "--ar-layers", "1", "--ar-channels", "4", "--batch-size", "32",
            "--checkpoint-every", "10", "--no-progress"]
TINY_SR = ["--width", "4", "--blocks", "1", "--patch", "24", "--patches", "32",
           "--val-patches", "8", "--batch-size", "8", "--no-progress"]
TINY_COLOR = ["--width", "4", "--depth", "2", "--patch", "24", "--patches", "32",
              "--val-patches", "8", "--batch-size", "8", "--no-progress"]


def gv(*argv: object) -> int:
    return main([str(a) for a in argv])


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes): what "unchanged" compares."""
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def one_line_error(capsys, needle: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and needle in err and len(err.splitlines()) == 1, err
    return err


@pytest.fixture
def users_folder(tmp_path) -> Path:
    """A folder of the user's own files, named like a run's (the audit's case)."""
    folder = tmp_path / "mine"
    (folder / "srresnet").mkdir(parents=True)
    for name in ("report.html", "metrics.jsonl", "samples.png", "srresnet/metrics.jsonl"):
        (folder / name).write_text(f"the user's own {name}\n")
    return folder


# ----- 1. a folder that is not a run ------------------------------------------------------------
def test_what_counts_as_a_run_directory(tmp_path):
    assert is_run_dir(tmp_path / "absent") and is_run_dir(tmp_path)
    (tmp_path / ".lock").write_text("123\n")        # left by a start that wrote nothing else
    assert is_run_dir(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    assert not is_run_dir(tmp_path)
    (tmp_path / "run.json").write_text("{}")
    assert is_run_dir(tmp_path)
    task = tmp_path / "task"
    task.mkdir()
    (task / "task.json").write_text("{}")
    assert is_run_dir(task)


@pytest.mark.parametrize("argv", [
    ["train", "vae", "--data", "digits", "--steps", "1", *TINY_VAE],
    ["superres", "train", "--scale", "4", "--steps", "1", *TINY_SR],
    ["superres", "train", "--method", "srresnet", "--steps", "1", *TINY_SR],
    ["colorize", "train", "--method", "regression", "--steps", "1", *TINY_COLOR],
])
def test_a_folder_that_is_not_a_run_is_refused_and_left_alone(argv, users_folder, capsys):
    before = snapshot(users_folder)
    assert gv(*argv, "--out", users_folder) == 2
    one_line_error(capsys, "not a genvision run")
    assert snapshot(users_folder) == before
    assert sorted(p.name for p in users_folder.iterdir()) == [
        "metrics.jsonl", "report.html", "samples.png", "srresnet"]   # not even a .lock


def test_train_run_from_python_refuses_a_folder_that_is_not_a_run(users_folder):
    before = snapshot(users_folder)
    with pytest.raises(UserError, match="not a genvision run"):
        train_run(tiny.TinyModel(tiny.TinyConfig()), tiny.make_data(),
                  TrainConfig(steps=1, batch_size=8, progress=False), users_folder)
    assert snapshot(users_folder) == before


# ----- 3. two starts into one --out ---------------------------------------------------------
def test_a_start_into_a_held_directory_writes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    with RunLock(out):   # the winner: holds the directory, has not written run.json yet
        assert gv("train", "vae", "--data", "digits", "--steps", "1", *TINY_VAE,
                  "--out", out) == 2
        one_line_error(capsys, "in use by another training process")
        assert sorted(p.name for p in out.iterdir()) == [".lock"]
        # the winner has written its run.json and trains: a loser must not replace it
        (out / "run.json").write_text('{"model": "winner"}')
        assert gv("train", "vae", "--data", "digits", "--steps", "1", *TINY_VAE,
                  "--out", out) == 2
        one_line_error(capsys, "in use by another training process")
        assert (out / "run.json").read_text() == '{"model": "winner"}'
        assert sorted(p.name for p in out.iterdir()) == [".lock", "run.json"]


def test_a_task_start_into_a_held_directory_writes_nothing(tmp_path, capsys):
    out = tmp_path / "sr"
    with RunLock(out):
        assert gv("superres", "train", "--method", "srresnet", "--steps", "1", *TINY_SR,
                  "--out", out) == 2
        one_line_error(capsys, "in use by another training process")
        assert sorted(p.name for p in out.iterdir()) == [".lock"]


def test_train_run_into_a_held_directory_writes_nothing(tmp_path):
    with RunLock(tmp_path), pytest.raises(RunLocked):
        train_run(tiny.TinyModel(tiny.TinyConfig()), tiny.make_data(),
                  TrainConfig(steps=1, batch_size=8, progress=False), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock"]


def test_a_held_folder_mid_start_is_in_use_not_foreign(tmp_path):
    """The winner of a race holds the lock and may write before its run.json: the loser
    must say the folder is in use (the fix: wait), not that it is the user's folder."""
    out = tmp_path / "race"
    with RunLock(out):
        (out / "metrics.jsonl").write_text("")
        with pytest.raises(RunLocked, match="in use by another training process"):
            refuse_foreign(out)
    with pytest.raises(UserError, match="not a genvision run"):  # lock released: foreign
        refuse_foreign(out)


def test_two_processes_racing_into_one_out(tmp_path):
    """Two real `genvision train` processes started together: one trains, the other is
    refused, and the run.json left is the winner's (its seed is the checkpoint's)."""
    out = tmp_path / "race"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).parents[1] / "src"), os.environ.get("PYTHONPATH", "")])}
    procs = [subprocess.Popen(
        [sys.executable, "-m", "genvision", "train", "vae", "--data", "digits", "--steps", "3",
         "--seed", str(seed), *TINY_VAE, "--out", str(out)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for seed in (11, 22)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser_err = next(err for code, err in results if code == 2).strip()
    assert len(loser_err.splitlines()) == 1 and "Traceback" not in loser_err
    assert "in use by another training process" in loser_err or "already holds" in loser_err
    seed = json.loads((out / "run.json").read_text())["train_config"]["seed"]
    latest = (out / "checkpoints" / "latest").read_text().strip()
    trainer = json.loads((out / "checkpoints" / latest / "trainer.json").read_text())
    assert trainer["run_info"]["train_config"]["seed"] == seed
    assert main(["train", "--resume", str(out), "--steps", "1"]) == 0


# ----- 5. dead-end runs -------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [["--steps", "0"], ["--batch-size", "100000"]])
def test_a_refused_start_writes_no_run_json(bad, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "vae", "--data", "digits", "--steps", "2", *TINY_VAE, *bad, "--out", out]
    assert gv(*argv) == 2
    one_line_error(capsys, "")
    assert not (out / "run.json").exists()
    assert gv("train", "vae", "--data", "digits", "--steps", "2", *TINY_VAE, "--out", out) == 0


def test_a_run_without_a_checkpoint_is_replaced_by_a_new_start(tmp_path, capsys):
    out = tmp_path / "run"
    model_cfg = tiny.TinyConfig(nan_at_step=0)      # diverges before its first checkpoint
    with pytest.raises(TrainingDiverged):
        train_run(tiny.TinyModel(model_cfg), tiny.make_data(),
                  TrainConfig(steps=3, batch_size=8, progress=False), out)
    assert (out / "run.json").exists() and not (out / "checkpoints" / "latest").exists()
    result = train_run(tiny.TinyModel(tiny.TinyConfig()), tiny.make_data(),
                       TrainConfig(steps=3, batch_size=8, progress=False), out)
    assert result.step == 3
    assert "no checkpoint" in capsys.readouterr().err
    with pytest.raises(UserError, match="already holds a run"):   # now it has one
        train_run(tiny.TinyModel(tiny.TinyConfig()), tiny.make_data(),
                  TrainConfig(steps=1, batch_size=8, progress=False), out)


def test_a_killed_cli_run_before_its_first_checkpoint_is_replaced(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    # what a kill before the first checkpoint leaves: a run.json, a log, a lock file
    (out / "run.json").write_text(json.dumps({"model": "vae", "command": "killed"}))
    (out / "metrics.jsonl").write_text('{"step": 1, "split": "train", "loss": 9.0}\n')
    (out / ".lock").write_text("99999\n")
    assert gv("train", "vae", "--data", "digits", "--steps", "2", *TINY_VAE, "--out", out) == 0
    err = capsys.readouterr().err
    assert "no checkpoint" in err and len([s for s in err.splitlines() if "replac" in s]) == 1
    info = json.loads((out / "run.json").read_text())
    assert info["command"] != "killed" and info["train_config"]["steps"] == 2
    lines = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines()]
    assert all(line.get("loss") != 9.0 for line in lines)   # the dead run's log is gone
    assert max(line["step"] for line in lines) == 2


# ----- commands that write named results into --out ---------------------------------------
@pytest.mark.parametrize("argv, needle", [
    (["outliers", "RUN"], "outliers did not write"),
    (["features", "probe", "RUN"], "features probe did not write"),
])
def test_result_commands_refuse_a_folder_of_other_files(argv, needle, users_folder, tmp_path,
                                                        capsys):
    """outliers and features probe write their own named files (outliers.json, results.json,
    ...) into --out: a folder holding anything else is refused before any work."""
    (users_folder / "results.json").write_text("the user's own results\n")
    (users_folder / "outliers.json").write_text("the user's own outliers\n")
    run = tmp_path / "run"
    run.mkdir()
    before = snapshot(users_folder)
    argv = [str(run) if a == "RUN" else a for a in argv]
    assert gv(*argv, "--out", users_folder) == 2
    one_line_error(capsys, needle)
    assert snapshot(users_folder) == before


def test_result_commands_accept_their_own_earlier_output(tmp_path):
    from genvision.runs.claim import refuse_foreign_output

    out = tmp_path / "outliers"
    refuse_foreign_output(out, {"outliers.json"}, "outliers")   # absent: fine
    out.mkdir()
    (out / "outliers.json").write_text("{}")                      # its own earlier output
    refuse_foreign_output(out, {"outliers.json"}, "outliers")
    (out / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="notes.txt"):
        refuse_foreign_output(out, {"outliers.json"}, "outliers")
