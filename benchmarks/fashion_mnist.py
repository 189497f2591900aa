"""The grey-level Fashion-MNIST protocol: every family with its defaults, on data genvision
was not tuned on, at a fixed CPU budget.

Protocol (printed with every result):

- train: ``genvision train MODEL --data fashion-mnist --minutes M`` with the model's
  defaults, on the official 60,000 training images less genvision's validation carve-out
  (54,000), as 8-bit grey levels (what ``--binarize auto`` chooses for this set);
- likelihood: bits/dim (and nats) on the first ``--n-nll`` of the 10,000 official test
  images, with the model's own kind (exact, bound, IWAE estimate) and estimator size;
- samples: FID, KID, precision and recall of ``--n`` samples against the first ``--n``
  test images, in the features of genvision's Fashion-MNIST classifier (trained once,
  cached, the same network for every run);
- speed: training images/s from the run's own log.

``--phase train`` only trains (run it alone on the machine: the budget is wall-clock CPU
time); ``--phase score`` scores runs that exist (values only, it may share the machine).

    python benchmarks/fashion_mnist.py --minutes 10 --root DIR --phase train
    python benchmarks/fashion_mnist.py --minutes 10 --root DIR --phase score

Prints one JSON object per model (one line each).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

GV = [sys.executable, "-m", "genvision"]

#: likelihood estimator sizes that keep scoring to minutes on a CPU (None: the model's)
EVAL_K = {"vae": 100}
#: models with no likelihood (sample metrics only)
NO_NLL = {"sngan", "dcgan", "wgan-gp"}


def run(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=sys.stderr)  # stdout stays pure JSON
    return time.perf_counter() - t0


def run_dir(root: Path, model: str, minutes: float) -> Path:
    return root / f"{model}-{minutes:g}min"


def train(model: str, out: Path, minutes: float, extra: list[str]) -> None:
    if out.exists():
        sys.exit(f"{out} exists: remove it or score it with --phase score")
    wall = run([*GV, "train", model, "--data", "fashion-mnist", "--minutes", str(minutes),
                "--out", str(out), "--no-progress", *extra])
    (out / "bench_train_wall_s.txt").write_text(f"{wall:.1f}\n")


def score(out: Path, n: int, n_nll: int) -> None:
    model = json.loads((out / "run.json").read_text())["model"]
    test = ["--split", "test"]
    if model not in NO_NLL:
        k = ["--k", str(EVAL_K[model])] if model in EVAL_K else []
        run([*GV, "evaluate", str(out), *test, "--metrics", "nll", "--n", str(n_nll), *k])
    run([*GV, "evaluate", str(out), *test, "--metrics", "fid,kid,pr", "--n", str(n),
         "--batch-size", "500"])


def summary(out: Path, minutes: float) -> dict:
    info = json.loads((out / "run.json").read_text())
    lines = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines()]
    train_lines = [m for m in lines if m.get("split") == "train"]
    ips = [m["images_per_s"] for m in train_lines if m.get("images_per_s")]
    metrics = out / "metrics.json"
    evaluations = json.loads(metrics.read_text())["evaluations"] if metrics.exists() else []
    wall = out / "bench_train_wall_s.txt"
    return {
        "benchmark": "fashion_mnist", "run": str(out), "model": info["model"],
        "protocol": {"train": "fashion-mnist train (54,000 after the validation carve-out), "
                              + str(info["data"].get("data_kind")),
                     "budget_minutes": minutes, "test": "fashion-mnist official test"},
        "steps": train_lines[-1]["step"] if train_lines else None,
        "train_images_per_s": round(sum(ips) / len(ips), 1) if ips else None,
        "train_wall_s": float(wall.read_text()) if wall.exists() else None,
        "parameters": info.get("num_parameters"),
        "evaluations": evaluations,
        "machine": {"cpus": os.cpu_count(), "torch": torch.__version__,
                    "python": platform.python_version(),
                    "load_avg": os.getloadavg()},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["vae", "gated-pixelcnn", "glow", "ddpm",
                                                    "sngan"])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--root", default="runs/fashion-bench", help="folder of the runs")
    p.add_argument("--phase", choices=["train", "score", "all"], default="all")
    p.add_argument("--n", type=int, default=2000, help="samples and test images for FID")
    p.add_argument("--n-nll", type=int, default=2000, help="test images for the NLL")
    p.add_argument("extra", nargs="*", help="extra flags for every `genvision train`")
    args = p.parse_args()
    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    for model in args.models:
        out = run_dir(root, model, args.minutes)
        if args.phase in ("train", "all"):
            train(model, out, args.minutes, args.extra)
        if args.phase in ("score", "all"):
            score(out, args.n, args.n_nll)
        print(json.dumps(summary(out, args.minutes), default=str), flush=True)


if __name__ == "__main__":
    main()
