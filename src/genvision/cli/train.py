"""``genvision train MODEL ... --out DIR`` and ``genvision train --resume DIR [--from-step N]``.

Model, data and training flags are derived from their config dataclasses. After training
the run's samples, figures and report.html are written (on the main process only).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import dataclass_config as cfg
from ..data.config import DataConfig
from ..errors import UserError
from ..models.base import get_model_class
from ..report.finish import finish_run
from ..runs import start as runs
from ..runs.layout import RunLayout
from ..train.config import TrainConfig
from ..train.distributed import is_main
from ..train.rewind import check_rewind
from .parser import Parser, add_model_flags


def train_parser(model_name: str | None) -> argparse.ArgumentParser:
    """The parser of ``genvision train``, with ``model_name``'s flags when given."""
    p = Parser(prog="genvision train", description="Train a model (or resume a run).")
    p.add_argument("model", nargs="?", help="model name (see `genvision info --models`)")
    p.add_argument("--out", help="run directory to create (default: runs/MODEL)")
    p.add_argument("--resume", metavar="RUN", help="continue the run in this directory")
    p.add_argument("--from-step", type=int, metavar="N",
                   help="with --resume: go back to the checkpoint of step N (e.g. the last one "
                        "before a divergence); checkpoints/latest moves back to it and the "
                        "later checkpoints are moved into checkpoints/rewound-.../, not "
                        "deleted")
    p.add_argument("--conditional", action="store_true",
                   help="class-conditional model (labels from the dataset)")
    cfg.add_dataclass_flags(p.add_argument_group("data"), DataConfig)
    cfg.add_dataclass_flags(p.add_argument_group("training"), TrainConfig)
    if model_name:
        add_model_flags(p, model_name)
    return p


def cmd_train(argv: list[str]) -> int:
    """Entry point of ``genvision train``; returns the exit status."""
    # The model name comes first (`genvision train vae --data ...`): its config decides
    # which model flags exist, so it is read before the full parse.
    model_name = argv[0] if argv and not argv[0].startswith("-") else None
    if model_name is None and "--resume" not in argv and not {"-h", "--help"} & set(argv):
        raise UserError("genvision train needs a model name or --resume RUN",
                        "e.g. `genvision train vae --data mnist5k --minutes 3`")
    args = train_parser(model_name).parse_args(argv)
    train_over = cfg.overrides_from_args(TrainConfig, args)
    if args.resume:
        extra = set(cfg.overrides_from_args(DataConfig, args))
        if extra or args.model or args.conditional or args.out:
            raise UserError("--resume continues a run with its own model and data",
                            "pass only budget/training flags with --resume")
        if args.from_step is not None:
            check_rewind(args.resume, args.from_step)  # refuse before any work
        result = runs.resume(args.resume, train_over, from_step=args.from_step)
        out = Path(args.resume)
    else:
        if args.from_step is not None:
            raise UserError("--from-step goes back to a checkpoint of a run",
                            "pass it with --resume RUN")
        model_cls = get_model_class(args.model)
        spec = runs.RunSpec(
            model=args.model,
            model_overrides=cfg.overrides_from_args(model_cls.config_class, args),
            train=cfg.from_dict(TrainConfig, {**model_cls.train_defaults, **train_over},
                                what="train option"),
            data=cfg.from_dict(DataConfig, cfg.overrides_from_args(DataConfig, args),
                               what="data option"),
            conditional=args.conditional)
        out = Path(args.out or f"runs/{args.model}")
        result = runs.start(spec, out, argv=["genvision", "train", *argv])
    if is_main():  # only rank 0 writes files under torchrun
        finish_run(out)
        print(f"trained {result.step} steps ({result.time_s:.0f} s, "
              f"{result.images_per_s:.0f} images/s); report: {RunLayout(out).report_html}")
    return 0
