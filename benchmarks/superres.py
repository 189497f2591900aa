"""Super-resolution benchmark: held-out x4 PSNR/SSIM, inference speed, peak memory.

Scores a trained ``genvision superres train`` run (bicubic, SRResNet, SRGAN) on the
held-out photos (chelsea, coffee; never trained on) with the papers' protocol (Y channel
of BT.601 YCbCr, ``scale`` border pixels cropped; RGB beside it), times the x4 upscaling of
a 256x256 image (median of 3, after one warm-up) and, with ``--big``, upscales a
4000x3000 photo in tiles in a child process and reports its peak memory (max RSS) and
time. Published Set5 x4 figures are printed beside, marked as another protocol. Prints
one JSON object.

    python benchmarks/superres.py --run runs/sr4 [--big [--big-size 4000 3000]] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from genvision.apps.common.images import evaluation_images, write_image
from genvision.apps.common.runs import require_task, trained_stages
from genvision.apps.superres.compare import compare_methods
from genvision.apps.superres.tiling import upscale_tensor, upscale_to_pil
from genvision.apps.superres.train import STAGES, load_sr_model
from genvision.data.degrade import Bicubic

PUBLISHED_SET5_X4 = {
    "protocol": "Ledig et al. 2017 (arXiv:1609.04802), Table 2: Set5 x4, Y channel, trained "
                "on 350k ImageNet images for days on a GPU; not comparable with this run",
    "bicubic": {"psnr_y": 28.43, "ssim_y": 0.8211},
    "srresnet": {"psnr_y": 32.05, "ssim_y": 0.9019},
    "srgan": {"psnr_y": 29.40, "ssim_y": 0.8472},
}


def _speed(model, side: int = 256, repeats: int = 3) -> float:
    lr = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(0))
    upscale_tensor(model, lr[..., :32, :32])  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        upscale_tensor(model, lr)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _big_child(run: str, method: str, tile: int, size: tuple[int, int]) -> None:
    """Upscale a 4000x3000 photo x4 to PNG; print seconds as JSON (parent reads max RSS)."""
    from skimage.data import chelsea

    model = Bicubic(4) if method == "bicubic" else load_sr_model(run, method)
    photo = np.asarray(Image.fromarray(chelsea()).resize(size, Image.BICUBIC))
    t0 = time.perf_counter()
    out = upscale_to_pil(model, photo, tile=tile)
    upscaled = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        write_image(Path(tmp) / "big_x4.png", out)
    print(json.dumps({"size_in": list(size), "size_out": list(out.size), "tile": tile,
                      "upscale_s": upscaled, "total_s": time.perf_counter() - t0}))


def _big(run: str, method: str, tile: int, threads: int, size: list[int]) -> dict:
    cmd = [sys.executable, __file__, "--big-child", "--run", run, "--method", method,
           "--tile", str(tile), "--threads", str(threads), "--big-size", *map(str, size)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "method": method,
            "peak_rss_mb": round(peak_kb / 1024, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True, help="a `genvision superres train` run (x4)")
    p.add_argument("--big", action="store_true", help="also the 4000x3000 memory case")
    p.add_argument("--big-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--method", default="srresnet")
    p.add_argument("--tile", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--big-size", type=int, nargs=2, default=[4000, 3000], metavar=("W", "H"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.big_child:
        _big_child(args.run, args.method, args.tile, tuple(args.big_size))
        return
    info = require_task(args.run, "superres")
    stages = trained_stages(Path(args.run), info, STAGES)
    models = {s: load_sr_model(args.run, s) for s in stages}
    data = info["patch_options"]
    images = evaluation_images("heldout", data["data"], data["split_seed"])
    t0 = time.perf_counter()
    results, _ = compare_methods(models, images, info["scale"])
    report = {
        "benchmark": "superres", "run": args.run, "scale": info["scale"],
        "heldout": results["mean"], "per_image": results["images"],
        "protocol": results["protocol"], "data": info["data"],
        "training": {s: {k: info["stages"][s].get(k) for k in
                         ("steps", "time_s", "images_per_s", "num_parameters", "perceptual",
                          "model_config", "command")} for s in stages},
        "evaluation_s": round(time.perf_counter() - t0, 1),
        "upscale_256_x4_s": {"bicubic": _speed(Bicubic(info["scale"])),
                             **{s: _speed(m) for s, m in models.items()}},
        "published_set5_x4": PUBLISHED_SET5_X4,
        "threads": args.threads, "torch": torch.__version__, "cpu": platform.processor()
        or platform.machine(),
    }
    if args.big:
        report["big_x4"] = _big(args.run, args.method, args.tile, args.threads, args.big_size)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
