"""Gated PixelCNN sampling speed: naive (whole network per drawn value) vs row-cached.

Both samplers draw the same images from the same generator; the script checks that too.
The naive sampler at large batches takes many minutes, so for batches above
``--naive-full-max`` it is timed on the first ``--naive-rows`` rows only (the other rows
are passed as kept values, which the sampler skips) and the full time is extrapolated as
``time * H / rows``: such entries say ``"naive_measured": "extrapolated from R of H rows"``
and compare only those rows for identity.

Prints one JSON object.

    python benchmarks/gated_pixelcnn_sampling.py [--run runs/bench-gated-pixelcnn]
        [--batches 16 64] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch

import genvision
from genvision.dataclass_config import to_dict
from genvision.models.gated_pixelcnn import GatedPixelCNN, GatedPixelCNNConfig
from genvision.models.pixel_base import PixelSampler


def _timed(fn) -> tuple[torch.Tensor, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def bench_batch(model: GatedPixelCNN, n: int, naive_full: bool, naive_rows: int,
                seed: int) -> dict[str, object]:
    _, h, _ = model.config.shape
    cached, t_cached = _timed(lambda: model.sample(
        n, generator=torch.Generator().manual_seed(seed)))
    entry: dict[str, object] = {"batch": n, "cached_s": round(t_cached, 3),
                                "cached_images_per_s": round(n / t_cached, 2)}
    if naive_full:
        naive, t_naive = _timed(lambda: model.sample(
            n, generator=torch.Generator().manual_seed(seed),
            sampler=PixelSampler(cached=False)))
        entry.update(naive_measured="full", identical=bool(torch.equal(naive, cached)))
    else:
        keep = torch.zeros(1, *model.config.shape, dtype=torch.bool)
        keep[:, :, naive_rows:] = True
        x = torch.zeros(n, *model.config.shape)
        model.eval()
        part, t_part = _timed(lambda: model.sample_naive(
            n, None, torch.Generator().manual_seed(seed), x=x, keep=keep))
        t_naive = t_part * h / naive_rows
        entry.update(naive_measured=f"extrapolated from {naive_rows} of {h} rows",
                     naive_measured_s=round(t_part, 3),
                     identical_first_rows=bool(torch.equal(part[:, :, :naive_rows],
                                                           cached[:, :, :naive_rows])))
    entry.update(naive_s=round(t_naive, 3), naive_images_per_s=round(n / t_naive, 4),
                 speedup=round(t_naive / t_cached, 1))
    return entry


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", help="a trained run or model directory (default: the default "
                                 "config, 28x28 binary, random weights)")
    p.add_argument("--batches", type=int, nargs="+", default=[16, 64])
    p.add_argument("--naive-full-max", type=int, default=16,
                   help="largest batch whose naive sampling is timed in full")
    p.add_argument("--naive-rows", type=int, default=3,
                   help="rows timed (then extrapolated) for naive sampling of larger batches")
    p.add_argument("--threads", type=int, default=1,
                   help="intra-op CPU threads for both samplers (the cached sampler uses "
                        "one thread internally in any case)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = genvision.load(args.run) if args.run else GatedPixelCNN(GatedPixelCNNConfig())
    model.eval()
    load_before = os.getloadavg()
    results = [bench_batch(model, n, n <= args.naive_full_max, args.naive_rows, args.seed)
               for n in args.batches]
    print(json.dumps({
        "benchmark": "gated-pixelcnn sampling, naive vs row-cached",
        "model": args.run or "default config (random weights)",
        "config": to_dict(model.config), "params": model.num_parameters(),
        "image": list(model.config.shape), "threads": args.threads,
        "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "load_avg_1min_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "results": results}, indent=2))


if __name__ == "__main__":
    main()
