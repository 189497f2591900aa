"""``benchmarks/gpu_check.py``, the prepared GPU run: its plumbing works on the CPU, so the
few minutes of a lent GPU are not spent finding a typo."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "gpu_check.py"


def load():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_curve_gap_finds_the_tenth_where_two_curves_part():
    gap = load().curve_gap
    a = [(s, 2.0) for s in range(100)]
    b = [(s, 2.0 if s < 90 else 2.2) for s in range(100)]
    gaps = gap(a, b)
    assert len(gaps) == 10 and gaps[:9] == [0.0] * 9
    assert gaps[9] == pytest.approx(0.2 / 2.2)
    assert gap(a, a) == [0.0] * 10


def test_the_script_runs_end_to_end_on_the_cpu(tmp_path):
    cpu = tmp_path / "cpu.jsonl"
    cpu.write_text('noise\n{"model": "vae", "train_images_per_s": 100.0}\n')
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cpu", "--data", "digits", "--out",
         str(tmp_path / "out"), "--parts", "families", "amp", "--families", "vae",
         "--seconds", "2", "--steps", "20", "--cpu-json", str(cpu)],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = {r["part"]: r for r in map(json.loads, proc.stdout.splitlines())}
    assert set(records) == {"environment", "families", "amp", "summary"}
    vae = records["families"]["runs"]["vae"]
    assert vae["steps"] > 0 and vae["images_per_s"] > 0 and vae["cpu_images_per_s"] == 100.0
    assert vae["speedup_over_cpu"] == round(vae["images_per_s"] / 100.0, 1)
    amp = records["amp"]["runs"]
    # mixed precision is CUDA-only: on the CPU both arms are the same seeded run
    for model in ("vae", "ddpm"):
        assert amp[model]["loss_gap_by_tenth"] == [0.0] * 10 and amp[model]["agree"]
        assert amp[model]["--amp"]["steps"] == 20
    assert records["summary"]["agree"] == {"amp": {"vae": True, "ddpm": True}}


def test_the_script_refuses_an_existing_folder(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--out",
                           str(tmp_path), "--parts", "families"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "exists" in proc.stderr
