"""``genvision train MODEL ... --out DIR``, ``genvision train --config FILE --out DIR`` and
``genvision train --resume DIR [--from-step N]``.

Model, data and training flags are derived from their config dataclasses; the training
flags' defaults shown by ``--help`` are the ones the run uses (the model's recipe
resolved, :func:`recipe`). A ``--config`` TOML file (:mod:`genvision.runs.run_config`)
has the same fields in [model], [data] and [training]; typed flags override it. After training
the run's samples, figures and report.html are written (on the main process only).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .. import dataclass_config as cfg
from ..data.config import DataConfig
from ..errors import UserError
from ..models.base import get_model_class
from ..report.finish import finish_run
from ..runs import start as runs
from ..runs.layout import RunLayout
from ..runs.run_config import RunConfig, read_run_config
from ..train.config import TrainConfig
from ..train.distributed import is_main
from ..train.rewind import check_rewind
from .parser import Parser, add_model_flags


def recipe(model_name: str | None) -> dict[str, Any]:
    """The TrainConfig values ``genvision train MODEL`` uses unless a flag or --config sets
    them: the model's measured recipe (``train_defaults``) over the generic defaults. Both
    ``--help`` and the run take them from here."""
    return dict(get_model_class(model_name).train_defaults) if model_name else {}


def train_parser(model_name: str | None) -> argparse.ArgumentParser:
    """The parser of ``genvision train``, with ``model_name``'s flags when given."""
    p = Parser(prog="genvision train", description="Train a model (or resume a run).")
    p.add_argument("model", nargs="?", help="model name (see `genvision info --models`)")
    p.add_argument("--config", metavar="FILE",
                   help="read the options from a TOML file with [model], [data] and "
                        "[training] sections (e.g. a run's config.toml, which re-launches "
                        "it); flags typed here override the file")
    p.add_argument("--out", help="run directory to create (default: runs/MODEL)")
    p.add_argument("--resume", metavar="RUN", help="continue the run in this directory")
    p.add_argument("--from-step", type=int, metavar="N",
                   help="with --resume: go back to the checkpoint of step N (e.g. the last one "
                        "before a divergence); checkpoints/latest moves back to it and the "
                        "later checkpoints are moved into checkpoints/rewound-.../, not "
                        "deleted")
    p.add_argument("--conditional", action="store_true", default=None,
                   help="class-conditional model (labels from the dataset)")
    cfg.add_dataclass_flags(p.add_argument_group("data"), DataConfig)
    unused = get_model_class(model_name).unused_train_options if model_name else ()
    cfg.add_dataclass_flags(p.add_argument_group("training"), TrainConfig,
                            defaults=recipe(model_name), hidden=unused)
    if model_name:
        add_model_flags(p, model_name)
    return p


def _model_name(argv: list[str]) -> str | None:
    """The model of a ``genvision train`` command line: its first word, else the
    ``[model] name`` of its --config file (read before the full parse: the model decides
    which flags exist)."""
    word = argv[0] if argv and not argv[0].startswith("-") else None
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    known, _ = pre.parse_known_args(argv)
    if known.config is None:
        return word
    name = read_run_config(known.config).model
    if word and name and word != name:
        raise UserError(f"the command line names model {word} but {known.config} is a "
                        f"{name} config", f"drop {word} or use a {word} config")
    return word or name


def run_spec(args: argparse.Namespace) -> runs.RunSpec:
    """The RunSpec of a new run: dataclass defaults < the model's recipe < --config file
    < flags typed on the command line."""
    file = read_run_config(args.config) if args.config else RunConfig()
    model_cls = get_model_class(args.model)
    typed_model = cfg.overrides_from_args(model_cls.config_class, args)
    return runs.RunSpec(
        model=args.model,
        model_overrides={**file.model_options, **typed_model},
        train=cfg.from_dict(TrainConfig, {**recipe(args.model), **file.training,
                                          **cfg.overrides_from_args(TrainConfig, args)},
                            what="train option"),
        data=cfg.from_dict(DataConfig, {**file.data,
                                        **cfg.overrides_from_args(DataConfig, args)},
                           what="data option"),
        conditional=bool(args.conditional if args.conditional is not None
                         else file.conditional))


def cmd_train(argv: list[str]) -> int:
    """Entry point of ``genvision train``; returns the exit status."""
    model_name = _model_name(argv)
    if model_name is None and "--resume" not in argv and not {"-h", "--help"} & set(argv):
        raise UserError("genvision train needs a model name or --resume RUN (or a --config "
                        "file that names the model)",
                        "e.g. `genvision train vae --data mnist5k --minutes 3`")
    if model_name is not None and (not argv or argv[0] != model_name):
        argv_model = [model_name, *argv]  # the model came from --config
    else:
        argv_model = list(argv)
    args = train_parser(model_name).parse_args(argv_model)
    train_over = cfg.overrides_from_args(TrainConfig, args)
    if args.resume:
        extra = set(cfg.overrides_from_args(DataConfig, args))
        if extra or args.model or args.conditional or args.out or args.config:
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
        spec = run_spec(args)
        out = Path(args.out or f"runs/{args.model}")
        result = runs.start(spec, out, argv=["genvision", "train", *argv])
    if is_main():  # only rank 0 writes files under torchrun
        finish_run(out)
        print(f"trained {result.step} steps ({result.time_s:.0f} s, "
              f"{result.images_per_s:.0f} images/s); report: {RunLayout(out).report_html}")
    return 0
