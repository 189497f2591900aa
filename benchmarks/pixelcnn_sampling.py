"""PixelCNN sampling speed: the cached (incremental) sampler against the naive one.

The naive sampler reruns the whole network for each of the 784 values of a 28x28 image;
the cached one (Ramachandran et al. 2017, https://arxiv.org/abs/1704.06001) computes one
network column per value. Both draw the same images from the same generator; the script
checks that (``identical``) on every batch it times both ways.

The default PixelCNN (random weights: speed does not depend on them) at batch 16 and 64.
The naive sampler's cost per value is constant, so for long runs it may be timed on the
first ``--naive-rows`` rows only (the rest kept fixed, which skips them) and scaled to the
whole image; such entries say ``"naive_extrapolated": true`` and how many rows were timed.
Prints one JSON object.

    python benchmarks/pixelcnn_sampling.py --batches 16 64 --threads 1

``--threads 1`` times both samplers on one thread: the cached one always runs its
per-value loop on one (its operations are too small to share), and on a machine shared
with other jobs a second thread slows the naive one down too. On a quiet machine the
naive sampler may gain up to ~2x from a second thread.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch

from genvision.models.pixel_base import PixelSampler
from genvision.models.pixelcnn import PixelCNN, PixelCNNConfig


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _draw(model: PixelCNN, n: int, rows: int, cached: bool, seed: int) -> torch.Tensor:
    """Sample the first ``rows`` rows of n images (all rows: a plain ``sample``)."""
    gen = torch.Generator().manual_seed(seed)
    c, h, w = model.config.shape
    if rows >= h:
        return model.sample(n, generator=gen, sampler=PixelSampler(cached=cached))
    keep = torch.zeros(1, c, h, w, dtype=torch.bool)
    keep[:, :, rows:] = True  # kept rows are skipped by both samplers
    return model.complete(torch.zeros(n, c, h, w), keep, generator=gen,
                          sampler=PixelSampler(cached=cached))


def bench(model: PixelCNN, n: int, naive_rows: int, seed: int = 0) -> dict:
    h = model.config.image_size[0]
    rows = min(naive_rows, h)
    cached, t_cached = _timed(lambda: _draw(model, n, h, True, seed))
    naive, t_naive = _timed(lambda: _draw(model, n, rows, False, seed))
    if rows < h:  # the same partial draw through the cached path, for the identity check
        cached_part = _draw(model, n, rows, True, seed)
        identical = torch.equal(naive, cached_part)
        t_naive_full = t_naive * h / rows
    else:
        identical = torch.equal(naive, cached)
        t_naive_full = t_naive
    return {"batch": n,
            "naive_s": round(t_naive_full, 2), "naive_images_per_s": round(n / t_naive_full, 3),
            "naive_extrapolated": rows < h, "naive_rows_timed": rows,
            "naive_s_measured": round(t_naive, 2),
            "cached_s": round(t_cached, 3), "cached_images_per_s": round(n / t_cached, 2),
            "speedup": round(t_naive_full / t_cached, 1), "identical": identical}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, nargs="+", default=[16, 64])
    p.add_argument("--naive-rows", type=int, nargs="+", default=[28],
                   help="rows the naive sampler is timed on, per batch (28 = the whole "
                        "image, no extrapolation); one value applies to every batch")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = args.naive_rows * len(args.batches) if len(args.naive_rows) == 1 else args.naive_rows
    if len(rows) != len(args.batches):
        raise SystemExit("give one --naive-rows value, or one per batch")
    model = PixelCNN(PixelCNNConfig()).eval()
    model.sample(2, generator=torch.Generator().manual_seed(0))  # warm-up
    load0 = os.getloadavg()
    results = [bench(model, n, r) for n, r in zip(args.batches, rows, strict=True)]
    print(json.dumps({
        "benchmark": "pixelcnn sampling, naive vs cached", "model": "pixelcnn",
        "config": {k: v for k, v in vars(model.config).items()
                   if k in ("hidden", "bottleneck", "layers", "input_kernel", "kernel",
                            "out_hidden", "head")},
        "params": model.num_parameters(), "image": list(model.config.shape),
        "weights": "random init (timing only)", "threads": torch.get_num_threads(),
        "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
        "load_average_before_after": [round(load0[0], 2), round(os.getloadavg()[0], 2)],
        "results": results}, indent=2))


if __name__ == "__main__":
    main()
