"""Full sample evaluation speed and memory: 10,000 generated vs 10,000 real 28x28 images.

Times what ``genvision evaluate --metrics fid,kid,pr,dc`` does after sampling: feature
extraction of both sets, FID, KID (100 subsets of 1,000), precision/recall and
density/coverage (k = 3). The generated side is either a trained run's samples
(``--run``; sampling is timed separately and reported beside) or, without a run, 10,000
real mnist5k digits with a random shift of up to 2 pixels (so they are not the real set).
The feature network is the cached mnist5k one (trained first if absent, not timed).
Prints one JSON object.

    python benchmarks/evaluation.py [--run runs/bench-vae-ema] [--test-data DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from pathlib import Path

import torch

from genvision.data import prepare_eval
from genvision.data.config import DataConfig
from genvision.metrics.feature_space import resolve_feature_space
from genvision.metrics.sample_quality import sample_quality

REPO = Path(__file__).resolve().parents[1]
MNIST_TEST = REPO.parent / "shared" / "data" / "mnist"


def _shifted_digits(n: int) -> torch.Tensor:
    x = prepare_eval(DataConfig(data="mnist5k"), "all", model_data_kind="binary").x
    g = torch.Generator().manual_seed(0)
    x = x[torch.randint(len(x), (n,), generator=g)]
    shifts = torch.randint(-2, 3, (n, 2), generator=g)
    return torch.stack([torch.roll(img, tuple(s.tolist()), dims=(1, 2))
                        for img, s in zip(x, shifts, strict=True)])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", help="a trained run to sample 10,000 images from")
    p.add_argument("--test-data", default=str(MNIST_TEST))
    p.add_argument("--n", type=int, default=10_000)
    args = p.parse_args()
    if not Path(args.test_data).is_dir():
        sys.exit(f"MNIST test split not found at {args.test_data}: pass --test-data DIR")
    train_cfg = DataConfig(data="mnist5k", split="all")
    space = resolve_feature_space("auto", train_cfg, (1, 28, 28), progress=False)
    real = prepare_eval(DataConfig(data=f"idx:{args.test_data}"), "test",
                        model_data_kind="binary", n=args.n)

    sampling_s = None
    if args.run:
        import genvision
        from genvision.evaluation.samples import draw_samples

        model = genvision.load(args.run)
        t0 = time.perf_counter()
        fake, _, _ = draw_samples(model, args.n, seed=0, batch_size=500,
                                  device=torch.device("cpu"), progress=False)
        sampling_s = time.perf_counter() - t0
        source = f"samples of {args.run}"
    else:
        fake = _shifted_digits(args.n)
        source = "mnist5k digits shifted by up to 2 pixels"

    t0 = time.perf_counter()
    real_f = space.extract(real.x, progress=False)
    fake_f = space.extract(fake, progress=False)
    features_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    scores = sample_quality(real_f, fake_f)
    metrics_s = time.perf_counter() - t1
    print(json.dumps({
        "benchmark": "sample evaluation, features + FID + KID + PR + DC",
        "n_real": real.x.shape[0], "n_fake": fake.shape[0], "generated": source,
        "total_s": round(features_s + metrics_s, 2), "features_s": round(features_s, 2),
        "metrics_s": round(metrics_s, 2),
        "sampling_s": None if sampling_s is None else round(sampling_s, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "scores": scores, "feature_space": space.identity,
        "feature_accuracy_on_real": space.accuracy(real_f, real.y),
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "machine": platform.machine(),
    }, indent=2))


if __name__ == "__main__":
    main()
