"""The GPU run of issue 21, as one prepared script for a lent CUDA machine.

Parts (``--parts``, all by default), each printed as one JSON line, then a summary line:

- ``tests``: the CUDA test subset, ``pytest -m cuda tests`` (mixed precision for every
  family, float16 with a GradScaler, inductor, channels-last, pinned batches, an exact GPU
  resume, NCCL DDP when there are two GPUs);
- ``families``: each family's defaults trained for ``--seconds`` on ``--data`` (the full
  Fashion-MNIST by default), with training images/s; given ``--cpu-json`` (the lines
  ``benchmarks/fashion_mnist.py --phase train`` printed on the CPU) also the speed-up over
  the CPU figure;
- ``amp``: the same seeded run of ``--steps`` steps with ``--amp`` and ``--no-amp``: the two
  loss curves and how far apart they are (relative gap of the mean loss over each tenth of
  the run; they agree when every gap is under ``--agree``);
- ``compile``: the same runs with and without ``--compile``: images/s once compiled (the
  last two thirds of the logs), the seconds the first logged steps took (compilation
  included), and the loss curves' gap;
- ``channels-last``: the same for ``--channels-last`` (convolution models, under AMP).

Sized for a short lease: the defaults (45 s per family, 300-step comparisons on two
families each) add up to about 4 minutes of training; with process start-up, compilation
and the tests the estimate is 8-10 minutes (not yet timed on a GPU). On a tighter lease,
run ``--parts tests families`` first and the comparisons in a second call.

On a lent machine (its Python has a CUDA torch; Fashion-MNIST is not installed there, so
copy Debian's four ``.gz`` files into an ignored folder that travels with the tree)::

    mkdir -p .gpu-data && cp /usr/share/datasets/fashion-mnist/*.gz .gpu-data/
    # then on the device, carrying .gpu-data:
    pip install -q --no-deps -e . && GENVISION_FASHION_MNIST_DIR=.gpu-data \\
        python benchmarks/gpu_check.py --out $OUT/gpu --cpu-json cpu-10min.jsonl

``--device cpu`` runs the same plumbing on a CPU (for testing the script; AMP is then
off in both arms and the comparison is trivially equal).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import torch

GV = [sys.executable, "-m", "genvision"]
FAMILIES = ["vae", "gated-pixelcnn", "glow", "ddpm", "sngan"]
PARTS = ["tests", "families", "amp", "compile", "channels-last"]
#: the loss each comparison follows (a GAN's D and G terms are no curve to compare)
COMPARE_AMP = ["vae", "ddpm"]
COMPARE_COMPILE = ["vae", "gated-pixelcnn"]
COMPARE_CHANNELS_LAST = ["gated-pixelcnn", "ddpm"]


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def train(model: str, out: Path, data: str, budget: list[str], device: str,
          extra: list[str]) -> tuple[dict, float]:
    """Train with the model's defaults; (the run's log summary, wall seconds)."""
    t0 = time.perf_counter()
    subprocess.run([*GV, "train", model, "--data", data, "--out", str(out), "--device", device,
                    "--no-progress", "--no-tensorboard", *budget, *extra],
                   check=True, stdout=sys.stderr)
    return log_summary(out), time.perf_counter() - t0


def log_summary(run: Path) -> dict:
    """Steps, images/s (mean over the logs after the first, which holds start-up and any
    compilation; and over the last two thirds) and the train loss curve of a run."""
    lines = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines() if s]
    train_lines = [m for m in lines if m.get("split") == "train"]
    rates = [m["images_per_s"] for m in train_lines if m.get("images_per_s")]
    late = rates[len(rates) // 3:]
    return {
        "steps": train_lines[-1]["step"] if train_lines else 0,
        "images_per_s": round(sum(rates[1:]) / len(rates[1:]), 1) if len(rates) > 1 else None,
        "images_per_s_late": round(sum(late) / len(late), 1) if late else None,
        "first_log_s": train_lines[0].get("time_s") if train_lines else None,
        "curve": [(m["step"], m["loss"]) for m in train_lines if "loss" in m],
    }


def curve_gap(a: list, b: list, pieces: int = 10) -> list[float]:
    """Relative gap of the two curves' mean loss over each tenth of the shorter one."""
    n = min(len(a), len(b))
    gaps = []
    for i in range(pieces):
        lo, hi = i * n // pieces, max((i + 1) * n // pieces, i * n // pieces + 1)
        ma = sum(v for _, v in a[lo:hi]) / len(a[lo:hi])
        mb = sum(v for _, v in b[lo:hi]) / len(b[lo:hi])
        gaps.append(abs(ma - mb) / max(abs(ma), abs(mb), 1e-12))
    return gaps


def compare(part: str, models: list[str], flag: tuple[str, str], args) -> dict:
    """The same seeded run with ``flag[0]`` and ``flag[1]``; speeds and curve gaps."""
    result = {}
    for model in models:
        runs = {}
        for f in flag:
            out = args.out / part / f"{model}{f}"
            runs[f], wall = train(model, out, args.data, ["--steps", str(args.steps)],
                                  args.device, [f, "--log-every", "10"])
            runs[f]["wall_s"] = round(wall, 1)
        a, b = (runs[f] for f in flag)
        gaps = curve_gap(a["curve"], b["curve"])
        result[model] = {
            **{f: {k: v for k, v in r.items() if k != "curve"} for f, r in runs.items()},
            "loss_gap_by_tenth": [round(g, 4) for g in gaps],
            "agree": max(gaps) < args.agree,
            "final_loss": {f: round(r["curve"][-1][1], 4) for f, r in runs.items()},
        }
    return {"part": part, "steps": args.steps, "agree_below": args.agree, "runs": result}


def run_tests(args) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-m", "cuda", "tests", "-rs",
                           "-p", "no:cacheprovider"], capture_output=True, text=True)
    tail = (proc.stdout + proc.stderr).strip().splitlines()
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|error)",
                                                tail[-1] if tail else "")}
    return {"part": "tests", "rc": proc.returncode, "counts": counts,
            "seconds": round(time.perf_counter() - t0, 1), "tail": tail[-25:]}


def families(args) -> dict:
    cpu = {}
    for path in args.cpu_json:
        for line in Path(path).read_text().splitlines():
            if line.strip().startswith("{"):
                rec = json.loads(line)
                if rec.get("train_images_per_s"):
                    cpu[rec["model"]] = rec["train_images_per_s"]
    result = {}
    for model in args.families:
        summary, wall = train(model, args.out / "families" / model, args.data,
                              ["--minutes", str(args.seconds / 60)], args.device, [])
        summary.pop("curve")
        row = {**summary, "wall_s": round(wall, 1)}
        if model in cpu and summary["images_per_s"]:
            row["cpu_images_per_s"] = cpu[model]
            row["speedup_over_cpu"] = round(summary["images_per_s"] / cpu[model], 1)
        result[model] = row
    return {"part": "families", "seconds": args.seconds, "data": args.data,
            "defaults": "each model's own, AMP on (bfloat16 where supported)", "runs": result}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="folder for the runs (new)")
    p.add_argument("--parts", nargs="+", choices=PARTS, default=PARTS)
    p.add_argument("--families", nargs="+", default=FAMILIES)
    p.add_argument("--data", default="fashion-mnist")
    p.add_argument("--seconds", type=float, default=45.0, help="training budget per family")
    p.add_argument("--steps", type=int, default=300, help="steps of each compared run")
    p.add_argument("--agree", type=float, default=0.02,
                   help="curves agree when every tenth's relative gap is below this")
    p.add_argument("--device", default="cuda")
    p.add_argument("--cpu-json", nargs="*", default=[],
                   help="benchmarks/fashion_mnist.py output lines with CPU images/s")
    args = p.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        emit({"skipped": "no CUDA device: run this on a GPU machine (or --device cpu to "
                         "test the script)"})
        return
    if args.out.exists():
        sys.exit(f"{args.out} exists: choose a new --out")
    env = {"device": (torch.cuda.get_device_name() if args.device.startswith("cuda")
                      else platform.processor() or "cpu"),
           "torch": torch.__version__, "cuda": torch.version.cuda,
           "python": platform.python_version(), "cpus": os.cpu_count()}
    emit({"part": "environment", **env})
    t0, results = time.perf_counter(), {}
    for part in args.parts:
        if part == "tests":
            results[part] = run_tests(args)
        elif part == "families":
            results[part] = families(args)
        elif part == "amp":
            results[part] = compare("amp", COMPARE_AMP, ("--amp", "--no-amp"), args)
        elif part == "compile":
            results[part] = compare("compile", COMPARE_COMPILE, ("--no-compile", "--compile"),
                                    args)
        else:
            results[part] = compare("channels-last", COMPARE_CHANNELS_LAST,
                                    ("--no-channels-last", "--channels-last"), args)
        emit(results[part])
    emit({"part": "summary", **env, "seconds": round(time.perf_counter() - t0, 1),
          "tests_rc": results.get("tests", {}).get("rc"),
          "agree": {k: {m: r["agree"] for m, r in v["runs"].items()}
                    for k, v in results.items() if k in ("amp", "compile", "channels-last")}})


if __name__ == "__main__":
    main()
