"""Shared plumbing of the benchmarks that time a ``genvision`` command (classify, augment):
run it as a child process, measure its wall and CPU time, read its results.json and copy
its figures. Not a benchmark itself."""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
MNIST_TEST = REPO.parent / "shared" / "data" / "mnist"


def child_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def test_data_spec(test_data: str) -> str:
    """``idx:DIR`` when the official MNIST test split is there, else ``auto``."""
    return f"idx:{test_data}" if Path(test_data).is_dir() else "auto"


def run_genvision(cmd: list[str], out: Path, figures_dir: str | None,
                  figure_name: str) -> tuple[dict, dict]:
    """Run ``python -m genvision ...`` (cmd starts with "genvision") writing to ``out``.

    Returns (results.json of the run, timing and copied figures). ``figure_name`` is a
    format string with ``{kind}``: where each figure is copied inside ``figures_dir``.
    """
    t0, c0 = time.perf_counter(), child_cpu_s()
    subprocess.run([sys.executable, "-m", *cmd], check=True, stdout=sys.stderr, cwd=REPO)
    wall, cpu = time.perf_counter() - t0, child_cpu_s() - c0
    res = json.loads((out / "results.json").read_text())
    figures = {}
    if figures_dir:
        Path(figures_dir).mkdir(parents=True, exist_ok=True)
        for kind, name in res["figures"].items():
            dst = Path(figures_dir) / figure_name.format(kind=kind)
            shutil.copyfile(out / name, dst)
            figures[kind] = str(dst)
    return res, {"command": " ".join(cmd), "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
                 "figures": figures}


def machine() -> dict:
    return {"cpus": os.cpu_count(), "torch": torch.__version__,
            "omp_threads": os.environ.get("OMP_NUM_THREADS"),
            "python": platform.python_version()}
