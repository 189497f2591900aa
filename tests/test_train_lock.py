"""One writer per run directory (flock on run_dir/.lock)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import tiny_model as tiny  # tests/tiny_model.py: the loop's tiny test model
from genvision.errors import RunLocked, TrainingDiverged
from genvision.train import TrainConfig, train
from genvision.train.lock import RunLock

HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, str(os.getpid()).encode())
print("locked", flush=True)
if sys.argv[2] == "hold":
    sys.stdin.readline()   # hold until the test closes stdin
"""


def run(run_dir, **model_kw):
    cfg = TrainConfig(steps=3, batch_size=8, checkpoint_every=2, progress=False)
    return train(tiny.TinyModel(tiny.TinyConfig(**model_kw)), tiny.make_data(), cfg, run_dir)


def test_second_process_is_refused_while_a_run_holds_the_dir(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / ".lock"), "hold"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunLocked) as info:
            run(tmp_path)
        msg = str(info.value)
        assert str(tmp_path) in msg and f"pid {holder.pid}" in msg and "--out" in msg
        assert not (tmp_path / "checkpoints").exists()
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert run(tmp_path).step == 3   # free again once the holder exits


def test_second_train_call_in_the_same_process_is_refused(tmp_path):
    with RunLock(tmp_path), pytest.raises(RunLocked):
        run(tmp_path)


def test_lock_file_left_by_a_dead_process_does_not_block(tmp_path):
    # A process that took the lock and died: its .lock file (with its pid) stays behind.
    subprocess.run([sys.executable, "-c", HOLD, str(tmp_path / ".lock"), "exit"], check=True)
    assert (tmp_path / ".lock").read_text().strip()
    assert run(tmp_path).step == 3


def test_lock_is_released_when_training_fails(tmp_path):
    with pytest.raises(TrainingDiverged):
        run(tmp_path, nan_at_step=1)
    with RunLock(tmp_path):   # would raise RunLocked if the failed run still held it
        pass
