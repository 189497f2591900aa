"""Score a grey-level model (a GAN) on the binarised MNIST protocol, to compare with VAEs.

A GAN trained on grey digits and a VAE trained on binarised digits are scored against
different reference sets (grey vs statically binarised test digits), so their FIDs are not
comparable and ``genvision compare`` refuses to put them in one column. But binarising
works the same on both sides: the binarised data set is x_bin ~ Bernoulli(x_grey), so
Bernoulli draws of a grey model's samples are samples of the binary distribution that
model implies. This script draws them (seeded) and scores them against the statically
binarised official test digits with the same feature network, metrics and sizes as
``genvision evaluate RUN --data idx:../shared/data/mnist --split test`` on a binary model.
Prints one JSON object.

    python benchmarks/binary_protocol_fid.py runs/bench-sngan [--n 10000] [--truncation 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch

import genvision
from genvision.data import prepare_eval
from genvision.data.config import DataConfig
from genvision.evaluation.samples import draw_samples
from genvision.metrics.feature_space import resolve_feature_space
from genvision.metrics.reference import reference_features
from genvision.metrics.sample_quality import sample_quality

REPO = Path(__file__).resolve().parents[1]
MNIST_TEST = REPO.parent / "shared" / "data" / "mnist"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run")
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--test-data", default=str(MNIST_TEST))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--truncation", type=float, default=None,
                   help="sample z truncated at +-this (GANs; default: the run's own setting)")
    args = p.parse_args()
    model = genvision.load(args.run)
    if args.truncation is not None:
        model.config = dataclasses.replace(model.config, truncation=args.truncation)
    run = json.loads((Path(args.run) / "run.json").read_text())
    train_cfg = DataConfig(**run["data_config"])
    space = resolve_feature_space("auto", train_cfg, tuple(model.config.shape), progress=False)
    real = prepare_eval(DataConfig(data=f"idx:{args.test_data}"), "test",
                        model_data_kind="binary", n=args.n)
    real_f, _ = reference_features(space, real.x, real.protocol, progress=False)
    grey, _, speed = draw_samples(model, args.n, seed=args.seed, batch_size=500,
                                  device=torch.device("cpu"), progress=False)
    bits = torch.bernoulli(grey, generator=torch.Generator().manual_seed(args.seed + 1))
    scores = sample_quality(real_f, space.extract(bits, progress=False), seed=args.seed)
    print(json.dumps({"run": args.run, "model": run["model"],
                      "protocol": "Bernoulli(samples) vs statically binarised test digits",
                      "truncation": getattr(model.config, "truncation", None),
                      "reference": real.protocol, "features": space.identity,
                      "sampling_images_per_s": round(speed, 1), **scores}, indent=2))


if __name__ == "__main__":
    main()
