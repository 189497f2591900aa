"""Colorization benchmark: PSNR, SSIM and colourfulness of both models on held-out photos.

Scores a trained ``genvision colorize train`` run (the grey L-only baseline, the L1
regression U-Net and the pix2pix GAN) on the held-out photos (chelsea, coffee; never
trained on): PSNR/SSIM on RGB against the true colours, and Hasler and Suesstrunk's
colourfulness beside the truth's. Prints one JSON object.

    python benchmarks/colorize.py --run runs/colorize [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from genvision.apps.colorize.compare import compare_colorizers
from genvision.apps.colorize.train import STAGES, load_colorizer
from genvision.apps.common.images import evaluation_images
from genvision.apps.common.runs import require_task, trained_stages


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True, help="a `genvision colorize train` run")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    info = require_task(args.run, "colorize")
    stages = trained_stages(Path(args.run), info, STAGES)
    models = {s: load_colorizer(args.run, s) for s in stages}
    data = info["patch_options"]
    images = evaluation_images("heldout", data["data"], data["split_seed"])
    t0 = time.perf_counter()
    results, _ = compare_colorizers(models, images)
    print(json.dumps({
        "benchmark": "colorize", "run": args.run, "heldout": results["mean"],
        "per_image": results["images"], "protocol": results["protocol"],
        "data": info["data"],
        "training": {s: {k: info["stages"][s].get(k) for k in
                         ("steps", "time_s", "images_per_s", "num_parameters", "init",
                          "model_config", "command")} for s in stages},
        "evaluation_s": round(time.perf_counter() - t0, 1), "threads": args.threads,
    }, indent=2))


if __name__ == "__main__":
    main()
