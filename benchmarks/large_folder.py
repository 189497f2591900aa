"""A folder: larger than memory: decode once, stream batches, bounded RSS (issue 21).

Generates a seeded folder of N synthetic 64x64 RGB PNGs (coloured ellipses, rectangles and
triangles on coloured backgrounds; the shape is the class sub-folder), then runs two fresh
processes against an empty decoded cache:

1. ``first``: decodes the folder into the cache (timed), then trains a small VAE for
   ``--steps`` steps with ``--stream`` through the CLI;
2. ``second``: the same run again: seconds from process start until the training split
   is ready (the cache is reused), the loader's images/s alone (random batches read from
   the cache, one thread and two), then the same training.

Prints one JSON object: decode seconds, second-run start seconds, loader images/s against
the model's training images/s (from the run's ``metrics.jsonl``), and the peak resident
memory (``ru_maxrss``) of each process and of all children together.

    python benchmarks/large_folder.py --n 200000 --out /tmp/gv-large   # the full claim
    python benchmarks/large_folder.py --n 2000 --out /tmp/gv-small      # a smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

# torch and genvision are imported inside the phase functions on purpose: the parent
# process only generates files and starts the phases, and stays small, so the children's
# peak memory is what the benchmark reports.

SHAPES = ("ellipse", "rectangle", "triangle")
SIZE = 64
MODEL_ARGS = ["--latent-dim", "16", "--hidden", "16", "32", "--fc-dim", "64",
              "--res-blocks", "0", "--ar-layers", "1", "--ar-channels", "8"]


def rss_mb(who: int) -> float:
    """Peak resident memory in MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(who).ru_maxrss / 1024


def generate(folder: Path, n: int, seed: int) -> float:
    """Write ``n`` PNGs under ``folder/<shape>/``; reuses a complete earlier folder.

    Returns:
        seconds spent (0 when reused).
    """
    marker = folder / ".complete.json"
    want = {"n": n, "seed": seed, "size": SIZE, "version": 1}
    if marker.is_file() and json.loads(marker.read_text()) == want:
        return 0.0
    shutil.rmtree(folder, ignore_errors=True)
    t0 = time.monotonic()
    rng = np.random.default_rng(seed)
    for shape in SHAPES:
        (folder / shape).mkdir(parents=True)
    for i in range(n):
        k = int(rng.integers(3))
        bg, fg = (tuple(int(c) for c in rng.integers(0, 256, 3)) for _ in range(2))
        im = Image.new("RGB", (SIZE, SIZE), bg)
        draw = ImageDraw.Draw(im)
        x0, y0 = (int(v) for v in rng.integers(0, SIZE // 2, 2))
        x1, y1 = (int(v) for v in rng.integers(SIZE // 2 + 4, SIZE, 2))
        if SHAPES[k] == "ellipse":
            draw.ellipse((x0, y0, x1, y1), fill=fg)
        elif SHAPES[k] == "rectangle":
            draw.rectangle((x0, y0, x1, y1), fill=fg)
        else:
            draw.polygon(((x0, y1), (x1, y1), ((x0 + x1) // 2, y0)), fill=fg)
        im.save(folder / SHAPES[k] / f"{i:07d}.png", compress_level=1)
    marker.write_text(json.dumps(want))
    return time.monotonic() - t0


def train_rate(run_dir: Path) -> float:
    """Median training images/s over the logged windows of ``run_dir/metrics.jsonl``."""
    rates = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row.get("split") == "train" and row.get("images_per_s"):
            rates.append(float(row["images_per_s"]))
    return statistics.median(rates) if rates else 0.0


def train(spec: str, out: Path, steps: int, batch: int) -> float:
    """Train the small VAE with ``--stream``; returns its training images/s."""
    from genvision.cli import main

    shutil.rmtree(out, ignore_errors=True)
    argv = ["train", "vae", "--data", spec, "--stream", "--steps", str(steps),
            "--batch-size", str(batch), "--log-every", "10", "--checkpoint-every",
            str(steps), "--out", str(out), "--no-progress", *MODEL_ARGS]
    if main(argv) != 0:
        raise SystemExit(f"training failed: {' '.join(argv)}")
    return train_rate(out)


def loader_rate(x, batch: int, batches: int, threads: int) -> float:
    """Images/s of reading random batches ``x[idx]`` (float32) from the streamed set."""
    import torch

    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    idx = [perm[(i * batch) % (len(x) - batch):][:batch] for i in range(batches)]
    t0 = time.perf_counter()
    if threads == 1:
        for b in idx:
            x[b]
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(x.__getitem__, idx))
    return batches * batch / (time.perf_counter() - t0)


def phase(args: argparse.Namespace) -> dict:
    """One fresh process: ``first`` (decode + train) or ``second`` (start + loader + train)."""
    from genvision.data import DataConfig, load_dataset, prepare

    spec = f"folder:{args.out / 'folder'}"
    out: dict = {}
    if args.phase == "first":
        t0 = time.monotonic()
        load_dataset(spec, "train", stream=True)
        out["decode_s"] = time.monotonic() - t0
    else:
        prep = prepare(DataConfig(data=spec, stream=True), "rgb8")
        out["start_s"] = time.time() - args.spawned  # interpreter + imports + cache check
        n_batches = max(1, min(args.loader_batches, len(prep.x) // args.batch_size))
        out["loader_images_per_s"] = loader_rate(prep.x, args.batch_size, n_batches, 1)
        out["loader_images_per_s_2_threads"] = loader_rate(prep.x, args.batch_size,
                                                           n_batches, 2)
    out["model_images_per_s"] = train(spec, args.out / f"run-{args.phase}", args.steps,
                                      args.batch_size)
    out["peak_rss_mb"] = rss_mb(resource.RUSAGE_SELF)
    return out


def run_phase(args: argparse.Namespace, name: str, env: dict) -> dict:
    cmd = [sys.executable, __file__, "--phase", name, "--n", str(args.n), "--out",
           str(args.out), "--steps", str(args.steps), "--batch-size", str(args.batch_size),
           "--loader-batches", str(args.loader_batches), "--spawned", repr(time.time())]
    done = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=200_000, help="images to generate")
    p.add_argument("--out", type=Path, default=Path("bench-large-folder"),
                   help="folder for the images, the cache and the runs")
    p.add_argument("--steps", type=int, default=200, help="training steps per run")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--loader-batches", type=int, default=300,
                   help="batches read to time the loader alone")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--phase", choices=("first", "second"), help=argparse.SUPPRESS)
    p.add_argument("--spawned", type=float, help=argparse.SUPPRESS)
    args = p.parse_args()
    args.out = args.out.resolve()
    if args.phase:
        print(json.dumps(phase(args)))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    gen_s = generate(args.out / "folder", args.n, args.seed)
    cache = args.out / "cache"
    shutil.rmtree(cache, ignore_errors=True)  # the first run must decode
    env = {**os.environ, "GENVISION_CACHE": str(cache)}
    first = run_phase(args, "first", env)
    second = run_phase(args, "second", env)
    print(json.dumps({
        "benchmark": "large_folder", "n_images": args.n, "image": [3, SIZE, SIZE],
        "steps": args.steps, "batch_size": args.batch_size,
        "model": "vae " + " ".join(MODEL_ARGS), "generate_s": round(gen_s, 1),
        "first_run": first, "second_run": second,
        "decode_images_per_s": round(args.n / first["decode_s"], 1),
        "loader_vs_model": round(second["loader_images_per_s"]
                                 / max(second["model_images_per_s"], 1e-9), 1),
        "peak_rss_children_mb": round(rss_mb(resource.RUSAGE_CHILDREN), 1),
        "peak_rss_parent_mb": round(rss_mb(resource.RUSAGE_SELF), 1),
        "cpu_count": os.cpu_count(),
    }, indent=1))


if __name__ == "__main__":
    main()
