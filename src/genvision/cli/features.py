"""``genvision features train|probe``.

    genvision features train --data SPEC [--split all] [--out DIR]
    genvision features probe RUN          (latent features: see :mod:`.probe`)

``train`` trains (and caches) the classifier whose features FID, KID and precision/recall
are computed in (:mod:`genvision.metrics.feature_net`).
"""

from __future__ import annotations

import dataclasses

from ..data import load_dataset
from ..data.download import cache_root
from ..metrics.feature_net import default_config, load_or_train_feature_net
from .parser import Parser
from .probe import cmd_probe
from .stages import dispatch

USAGE = __doc__.strip().split("\n\n")[1]


def cmd_features(argv: list[str]) -> int:
    """Entry point of ``genvision features``; returns the exit status."""
    return dispatch("features", "the metrics' feature network and latent-feature probes",
                    USAGE, {"train": _train, "probe": cmd_probe}, argv)


def _train(argv: list[str]) -> int:
    """``genvision features train``: its own parser, so ``--help`` lists its options."""
    p = Parser(prog="genvision features train",
               description="Train (and cache) the classifier whose features FID, KID and "
                           "precision/recall are computed in.")
    p.add_argument("--data", required=True, help="labelled dataset spec, e.g. mnist5k")
    p.add_argument("--split", default="train",
                   help="split to train on: a run's own training split (default train)")
    p.add_argument("--image-size", type=int, help="resize as the runs do")
    p.add_argument("--grayscale", action="store_true", help="convert colour images to grey")
    p.add_argument("--split-seed", type=int, default=0)
    defaults = default_config((1, 28, 28), 10)
    p.add_argument("--epochs", type=int, help=f"training epochs (default {defaults.epochs})")
    p.add_argument("--width", type=int, help=f"first conv width (default {defaults.width})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write the network to this directory instead of the cache "
                                 "(use it with `genvision evaluate --features DIR`)")
    args = p.parse_args(argv)
    shape_source = load_dataset(args.data, args.split, image_size=args.image_size,
                                grayscale=args.grayscale, split_seed=args.split_seed)
    net_cfg = default_config(shape_source.shape, max(shape_source.num_classes, 1),
                             seed=args.seed)
    overrides = {k: v for k, v in (("epochs", args.epochs), ("width", args.width)) if v}
    net_cfg = dataclasses.replace(net_cfg, **overrides)
    _, info = load_or_train_feature_net(
        args.data, split=args.split, cfg=net_cfg, image_size=args.image_size,
        grayscale=args.grayscale, split_seed=args.split_seed, out=args.out)
    where = args.out or cache_root() / "features" / info["key"]
    acc = info.get("test_accuracy")
    if acc:
        print(f"test accuracy on {acc['spec']} {acc['split']} (n={acc['n']}): "
              f"{acc['grey']:.2%} grey, {acc['binarized']:.2%} binarised")
    else:
        print("no labelled test split to score on (trained on all images)")
    print(f"feature network {info['key']} ({info['train_seconds']:.1f} s, weights SHA-256 "
          f"{info['weights_sha256'][:16]}): {where}")
    return 0
