"""CUDA check of the loop's phases: mixed precision (bfloat16, and float16 with a
GradScaler) through the same PhaseRunner for a one-phase model (vae), a GAN (sngan: D and
G phases, G_ema as the EMA shadow) and an image-to-image GAN (srgan), with an exact
resume on the GPU and per-sample seeds that give the same latents on CPU and GPU.
Prints one JSON object. Needs a CUDA device (skips with a message otherwise).

    python benchmarks/cuda_phases.py [--steps 40] [--out /tmp/cuda-phases]
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import time
from pathlib import Path

import torch

from genvision.models.base import get_model_class
from genvision.models.sampling import SampleRNG
from genvision.train import TrainConfig, TrainData, load_training_state, train

MODELS = {  # name -> (config fields, image shape)
    "vae": ({"hidden": (16, 32), "latent_dim": 8}, (1, 16, 16), "binary"),
    "sngan": ({"latent_dim": 16, "g_width": 32, "d_width": 32}, (1, 16, 16), "grey8"),
    "srgan": ({"scale": 2, "width": 16, "blocks": 2, "disc_width": 16}, (3, 32, 32), "rgb8"),
}


def build(name: str):
    fields, (c, h, w), kind = MODELS[name]
    cls = get_model_class(name)
    torch.manual_seed(0)  # the image-to-image models draw their init from the global RNG
    return cls(cls.config_class(channels=c, image_size=(h, w), data_kind=kind, **fields))


def data(name: str, n: int = 512) -> TrainData:
    _, shape, kind = MODELS[name]
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, *shape, generator=g)
    x = (x > 0.5).float() if kind == "binary" else (x * 255).round() / 255
    return TrainData(x=x)


def run(name: str, out: Path, steps: int, resume_at: int | None) -> dict:
    cfg = dict(batch_size=32, checkpoint_every=steps // 2, log_every=5, progress=False,
               device="cuda", amp=True, sample_every=0)
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    if resume_at:
        train(build(name), data(name), TrainConfig(steps=resume_at, **cfg), out)
        result = train(build(name), data(name), TrainConfig(steps=steps - resume_at, **cfg),
                       out, resume=True)
    else:
        result = train(build(name), data(name), TrainConfig(steps=steps, **cfg), out)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    state = load_training_state(out)
    return {"step": result.step, "terms": result.train_metrics,
            "finite": all(math.isfinite(v) for v in result.train_metrics.values()),
            "scaler": state.meta.get("scaler"), "images_per_s": result.images_per_s,
            "wall_s": round(time.perf_counter() - t0, 2), "tensors": state.tensors}


def same_state(a: dict, b: dict) -> bool:
    keys = [k for k in a if not k.startswith("rng/")]
    return all(torch.equal(a[k], b[k]) for k in keys)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--out", default="/tmp/cuda-phases")
    args = p.parse_args()
    if not torch.cuda.is_available():
        print(json.dumps({"skipped": "no CUDA device"}))
        return
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)
    report: dict = {"device": torch.cuda.get_device_name(), "torch": torch.__version__}
    bf16 = torch.cuda.is_bf16_supported
    for precision in ("bfloat16", "float16"):
        torch.cuda.is_bf16_supported = (lambda *a, p=precision, **k: p == "bfloat16")
        for name in MODELS:
            out = Path(args.out) / precision / name
            full = run(name, out / "full", args.steps, None)
            resumed = run(name, out / "resumed", args.steps, args.steps // 2)
            report[f"{precision}/{name}"] = {
                "steps": full["step"], "finite": full["finite"],
                "grad_scaler": full["scaler"] is not None,
                "scale": (full["scaler"] or {}).get("scale"),
                "resume_equal": same_state(full["tensors"], resumed["tensors"]),
                "images_per_s": round(full["images_per_s"], 1),
                "terms": {k: round(v, 4) for k, v in full["terms"].items()}}
    torch.cuda.is_bf16_supported = bf16
    vae = build("vae").eval()
    cpu = vae.sample(6, generator=SampleRNG(range(6)))
    gpu = vae.cuda().sample(6, generator=SampleRNG(range(6), device="cuda")).cpu()
    report["sample_rng_cpu_vs_cuda_pixels_equal"] = float((cpu == gpu).float().mean())
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
