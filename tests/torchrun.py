"""Run a script under ``torchrun --standalone --nproc_per_node 2`` for the DDP tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

GLOO_TEARDOWN_ABORT = "terminate called without an active exception"


def run_two_processes(script: Path, tmp_path: Path, *, cuda: bool = False) -> tuple[Path, Path]:
    """Run ``script RUN_DIR OUT_DIR`` on 2 CPU processes (gloo), or on 2 GPUs (NCCL) with
    ``cuda``; return (run_dir, out_dir).

    One retry, only for gloo's rare C++ teardown abort (std::terminate on a joinable
    thread at process exit, seen once in CI): it is a race inside torch's process-group
    destructor, not in genvision's training; every other failure fails at once.
    """
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    # CPU processes on gloo even on a GPU machine (genvision picks NCCL when it sees CUDA,
    # and two ranks cannot share one GPU); the NCCL path has its own test in test_cuda.py
    if not cuda:
        env["CUDA_VISIBLE_DEVICES"] = ""
    for attempt in range(2):
        run_dir, out = tmp_path / f"run{attempt}", tmp_path / f"out{attempt}"
        out.mkdir()
        proc = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
             "2", str(script), str(run_dir), str(out)],
            env=env, capture_output=True, text=True, timeout=240)
        if proc.returncode == 0 or GLOO_TEARDOWN_ABORT not in proc.stderr:
            break
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir, out
