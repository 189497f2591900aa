"""Generative vs discriminative classifiers: learning curves for 0-vs-1 and ten digits.

Runs ``genvision classify --curve`` twice (task 0-vs-1 and task all) on the shared protocol:
train on class-balanced subsets of mnist5k, test on the official MNIST test split (or
mnist5k's test split when ``../shared/data/mnist`` is absent; the output says which), every
image statically binarised with seed 0. Prints one JSON object: per task the command, its
CPU time, the learning-curve table and the crossover; ``--figures DIR`` copies the PNGs to
``DIR/classify_<task>_<figure>.png``. Defaults fit ~8 minutes of 1-thread CPU.

    OMP_NUM_THREADS=1 python benchmarks/classify.py --figures docs/images
"""

from __future__ import annotations

import argparse
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


def run_task(task: str, n_test: int | None, args: argparse.Namespace) -> dict:
    out = Path(args.out_root) / f"classify-{task}"
    test = f"idx:{args.test_data}" if Path(args.test_data).is_dir() else "auto"
    cmd = ["genvision", "classify", "--task", task, "--curve", args.sizes,
           "--classifiers", args.classifiers, "--gen-steps", str(args.gen_steps),
           "--k", str(args.k), "--cnn-epochs", str(args.cnn_epochs),
           "--test-data", test, "--out", str(out), "--force", "--no-progress"]
    if n_test:
        cmd += ["--n-test", str(n_test)]
    t0, c0 = time.perf_counter(), child_cpu_s()
    subprocess.run([sys.executable, "-m", *cmd], check=True, stdout=sys.stderr, cwd=REPO)
    wall, cpu = time.perf_counter() - t0, child_cpu_s() - c0
    res = json.loads((out / "results.json").read_text())
    figures = {}
    if args.figures:
        Path(args.figures).mkdir(parents=True, exist_ok=True)
        for kind, name in res["figures"].items():
            dst = Path(args.figures) / f"classify_{task.replace(',', '-')}_{kind}.png"
            shutil.copyfile(out / name, dst)
            figures[kind] = str(dst)
    return {"command": " ".join(cmd), "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "protocol": res["protocol"], "budgets": res["budgets"],
            "markdown": res["markdown"], "crossover": res["crossover"],
            "rows": [{k: r[k] for k in ("classifier", "kind", "n_train", "accuracy",
                                        "log_loss", "ece", "fit_cpu_s", "predict_cpu_s")}
                     for r in res["rows"]],
            "figures": figures}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="10,30,100,300,1000,all")
    p.add_argument("--classifiers", default="nb,vae,gated-pixelcnn,logreg,cnn")
    p.add_argument("--gen-steps", type=int, default=200)
    p.add_argument("--k", type=int, default=8, help="IWAE importance samples per class")
    p.add_argument("--cnn-epochs", type=float, default=10)
    p.add_argument("--n-test-binary", type=int, default=0,
                   help="test images of task 0-vs-1 (0 = all of them)")
    p.add_argument("--n-test-all", type=int, default=1000, help="test images of task all")
    p.add_argument("--tasks", default="0-vs-1,all")
    p.add_argument("--test-data", default=str(MNIST_TEST))
    p.add_argument("--out-root", default="runs/bench-classify")
    p.add_argument("--figures", help="copy the PNG figures here (e.g. docs/images)")
    args = p.parse_args()
    results = {}
    for task in args.tasks.split(","):
        n_test = args.n_test_binary if task == "0-vs-1" else args.n_test_all
        results[task] = run_task(task, n_test or None, args)
    print(json.dumps({
        "benchmark": "classify", "tasks": results,
        "total_cpu_s": round(sum(r["cpu_s"] for r in results.values()), 1),
        "machine": {"cpus": os.cpu_count(), "torch": torch.__version__,
                    "omp_threads": os.environ.get("OMP_NUM_THREADS"),
                    "python": platform.python_version()},
    }, indent=2))


if __name__ == "__main__":
    main()
