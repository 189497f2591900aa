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
from pathlib import Path

from cli_runs import MNIST_TEST, machine, run_genvision, test_data_spec


def run_task(task: str, n_test: int | None, args: argparse.Namespace) -> dict:
    out = Path(args.out_root) / f"classify-{task}"
    test = test_data_spec(args.test_data)
    cmd = ["genvision", "classify", "--task", task, "--curve", args.sizes,
           "--classifiers", args.classifiers, "--gen-steps", str(args.gen_steps),
           "--k", str(args.k), "--cnn-epochs", str(args.cnn_epochs),
           "--test-data", test, "--out", str(out), "--force", "--no-progress"]
    if n_test:
        cmd += ["--n-test", str(n_test)]
    res, timing = run_genvision(cmd, out, args.figures,
                                f"classify_{task.replace(',', '-')}_{{kind}}.png")
    return {**timing, "protocol": res["protocol"], "budgets": res["budgets"],
            "markdown": res["markdown"], "crossover": res["crossover"],
            "rows": [{k: r[k] for k in ("classifier", "kind", "n_train", "accuracy",
                                        "log_loss", "ece", "fit_cpu_s", "predict_cpu_s")}
                     for r in res["rows"]]}


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
        "machine": machine(),
    }, indent=2))


if __name__ == "__main__":
    main()
