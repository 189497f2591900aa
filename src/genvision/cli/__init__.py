"""The ``genvision`` command line.

    genvision data list
    genvision train MODEL [--data SPEC] [model, data and training flags] --out DIR
    genvision train --resume DIR [--steps N | --epochs E | --minutes M]
    genvision sample RUN -n 64 --seed 1 -o grid.png [--label 3] [--sampler-opt key=value]
    genvision evaluate RUN [--metrics nll,fid,...] [--n 10000] [--sampler-opt key=value]
    genvision compare RUN1 RUN2 ... [-o board.html]
    genvision features train --data SPEC [--split all] [--out DIR]
    genvision superres train|apply|compare ...   (bicubic vs SRResNet vs SRGAN)
    genvision colorize train|apply|compare ...   (L1 regression vs pix2pix GAN)
    genvision classify --task 0-vs-1|all [--curve]  (generative vs discriminative)
    genvision augment --n 100 [--seeds 3]        (real vs classic vs generated data)
    genvision features probe RUN                 (linear probe, PCA/t-SNE map, k-means NMI)
    genvision outliers RUN --ood faces,noise     (NLL, likelihood ratio, typicality)
    genvision theory kl-mle                      (why minimising KL is maximum likelihood)
    genvision info RUN
    genvision report RUN

Flags for models, data and training are derived from their config dataclasses, so an
option is declared once. User errors print one line, ``error: problem (fix: ...)``,
and exit with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import NoReturn

from . import __version__
from . import dataclass_config as cfg
from .data.config import DataConfig
from .errors import UserError
from .train.config import TrainConfig

BUDGET_FLAGS = ("steps", "epochs", "minutes")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) instead of a usage dump."""

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{self.prog}: {message}", f"see `{self.prog} --help`")


def _model_flags(parser: argparse.ArgumentParser, model_name: str) -> type:
    from .models.base import get_model_class

    model_cls = get_model_class(model_name)
    group = parser.add_argument_group(f"{model_name} options")
    cfg.add_dataclass_flags(group, model_cls.config_class)
    if model_cls.train_defaults:
        recipe = " ".join(f"--{k.replace('_', '-')} {v}"
                          for k, v in model_cls.train_defaults.items())
        parser.epilog = (f"{model_name} trains with {recipe} unless you pass those flags "
                         "(its measured recipe; the training defaults above are the "
                         "generic ones).")
    return model_cls


def _train_parser(model_name: str | None) -> argparse.ArgumentParser:
    p = _Parser(prog="genvision train", description="Train a model (or resume a run).")
    p.add_argument("model", nargs="?", help="model name (see `genvision info --models`)")
    p.add_argument("--out", help="run directory to create (default: runs/MODEL)")
    p.add_argument("--resume", metavar="RUN", help="continue the run in this directory")
    p.add_argument("--conditional", action="store_true",
                   help="class-conditional model (labels from the dataset)")
    cfg.add_dataclass_flags(p.add_argument_group("data"), DataConfig)
    cfg.add_dataclass_flags(p.add_argument_group("training"), TrainConfig)
    if model_name:
        _model_flags(p, model_name)
    return p


def cmd_train(argv: list[str]) -> int:
    from .runs import start as runs
    from .runs.layout import RunLayout

    # The model name comes first (`genvision train vae --data ...`): its config decides
    # which model flags exist, so it is read before the full parse.
    model_name = argv[0] if argv and not argv[0].startswith("-") else None
    if model_name is None and "--resume" not in argv and not {"-h", "--help"} & set(argv):
        raise UserError("genvision train needs a model name or --resume RUN",
                        "e.g. `genvision train vae --data mnist5k --minutes 3`")
    args = _train_parser(model_name).parse_args(argv)
    train_over = cfg.overrides_from_args(TrainConfig, args)
    if args.resume:
        extra = set(cfg.overrides_from_args(DataConfig, args))
        if extra or args.model or args.conditional or args.out:
            raise UserError("--resume continues a run with its own model and data",
                            "pass only budget/training flags with --resume")
        result = runs.resume(args.resume, train_over)
        out = Path(args.resume)
    else:
        from .models.base import get_model_class

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
    from .train.distributed import is_main

    if is_main():
        print(f"trained {result.step} steps ({result.time_s:.0f} s, "
              f"{result.images_per_s:.0f} images/s); report: {RunLayout(out).report_html}")
    return 0


def cmd_sample(argv: list[str]) -> int:
    import torch

    from .models.base import load
    from .models.sampling import SampleRNG, make_sampler
    from .train.device import resolve_device

    p = _Parser(prog="genvision sample", description="Draw samples from a trained model.")
    p.add_argument("run", help="run or model directory")
    p.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--seed", type=int, default=0,
                   help="sample k uses seed SEED + k, whatever -n is (default 0)")
    p.add_argument("--label", type=int, help="class label for conditional models")
    p.add_argument("-o", "--output", default="samples.png", help="PNG grid or .npz file")
    p.add_argument("--nrow", type=int, help="images per row of the grid")
    p.add_argument("--complete", metavar="IMAGE",
                   help="fill in an image instead: keep its top rows, sample the rest "
                        "(fully visible models)")
    p.add_argument("--keep-rows", type=int, help="rows kept with --complete (default: half)")
    p.add_argument("--sampler", help="the model's sampler (default: its first; an unknown "
                                     "name lists them)")
    _add_sampler_opt_flag(p)
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    if args.n < 1:
        raise UserError(f"-n must be at least 1, got {args.n}", "pass -n 16")
    out = Path(args.output)
    if out.suffix.lower() not in (".png", ".npz"):
        raise UserError(f"cannot write samples to {out.name}", "use a .png or .npz file name")
    if args.keep_rows is not None and not args.complete:
        raise UserError("--keep-rows only applies with --complete IMAGE",
                        "pass --complete image.png or drop --keep-rows")
    device = resolve_device(args.device)
    model = load(args.run, device=device)
    sampler = make_sampler(model, args.sampler, args.sampler_opt)
    if args.complete:
        from .completion import complete_image

        x = complete_image(model, Path(args.complete), n=args.n, keep_rows=args.keep_rows,
                           label=args.label, seed=args.seed, device=device, sampler=sampler)
        _write_images(x, None, out, args.nrow or (args.n + 2))
        print(f"wrote the original, its kept rows and {args.n} completions to {out}")
        return 0
    y = None
    if args.label is not None:
        y = torch.full((args.n,), args.label, dtype=torch.long, device=device)
    model.check_input(torch.zeros(1, *model.config.shape, device=device),
                      None if y is None else y[:1])
    if y is None and model.config.num_classes:
        y = torch.arange(args.n, device=device) % model.config.num_classes
    rng = SampleRNG(range(args.seed, args.seed + args.n))  # sample k: seed SEED + k
    with torch.no_grad():
        x = model.sample(args.n, y=y, generator=rng, sampler=sampler).cpu()
    _write_images(x, y, out, args.nrow)
    print(f"wrote {args.n} samples to {out}")
    return 0


def _add_sampler_opt_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sampler-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="a sampler option, e.g. truncation=0.7 or ema=false (repeatable)")


def _write_images(x, y, out: Path, nrow: int | None) -> None:
    """A PNG grid, or an .npz with ``x`` (and ``y``), written atomically."""
    from .report import save_grid

    if out.suffix.lower() == ".npz":
        import io

        import numpy as np

        from .storage import atomic_write_bytes

        buf = io.BytesIO()
        arrays = {"x": x.numpy()} | ({} if y is None else {"y": y.cpu().numpy()})
        np.savez_compressed(buf, **arrays)
        atomic_write_bytes(out, buf.getvalue())
    else:
        save_grid(x, out, nrow=nrow)


def cmd_evaluate(argv: list[str]) -> int:
    from .evaluation.evaluate import EvalOptions, describe, evaluate_run
    from .runs.layout import RunLayout

    p = _Parser(prog="genvision evaluate",
                description="Score a run: NLL (nats, bits/dim) and sample metrics (FID, KID, "
                            "precision/recall, density/coverage, CAS, memorisation).")
    p.add_argument("run", help="run directory")
    cfg.add_dataclass_flags(p, EvalOptions)
    _add_sampler_opt_flag(p)
    args = p.parse_args(argv)
    opts = cfg.from_dict(EvalOptions, cfg.overrides_from_args(EvalOptions, args),
                         what="evaluate option")
    opts = dataclasses.replace(opts, sampler_opts=tuple(args.sampler_opt))
    for result in evaluate_run(args.run, opts):
        print(describe(result))
    print(f"written to {RunLayout(args.run).evaluations}")
    return 0


def cmd_features(argv: list[str]) -> int:
    import dataclasses

    if argv[:1] == ["probe"]:
        from .apps.features.cli import cmd_probe

        return cmd_probe(argv[1:])

    from .data.download import cache_root
    from .metrics.features import default_config, load_or_train_feature_net

    p = _Parser(prog="genvision features",
                description="Train (and cache) the classifier whose features FID, KID and "
                            "precision/recall are computed in.")
    p.add_argument("action", choices=["train", "probe"],
                   help="train: the metrics' feature network; probe RUN: latent features "
                        "(see `genvision features probe --help`)")
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
    from .data import load_dataset

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
    print(f"feature network {info['key']} ({info['train_seconds']:.1f} s): {where}")
    return 0


def cmd_info(argv: list[str]) -> int:
    from .models.base import list_models
    from .runs.records import read_evaluations, read_run_info

    p = _Parser(prog="genvision info", description="Describe a run, or list the models.")
    p.add_argument("run", nargs="?", help="run directory")
    p.add_argument("--models", action="store_true", help="list the registered models")
    args = p.parse_args(argv)
    if args.models or not args.run:
        for name in list_models():
            print(name)
        return 0
    info = read_run_info(args.run)
    keys = ("model", "num_parameters", "likelihood_kind", "data", "model_config",
            "train_config", "created")
    if info.is_task:  # a task run: its stages say what was trained
        keys = ("task", "model", "data", "stages", "created")
    summary = {k: info.get(k) for k in keys}
    evaluations = read_evaluations(args.run)
    if evaluations:
        summary["evaluations"] = [e.fields for e in evaluations]
    print(json.dumps(summary, indent=2))
    return 0


def cmd_report(argv: list[str]) -> int:
    from .runs.start import finish

    p = _Parser(prog="genvision report", description="(Re)write a run's report.html.")
    p.add_argument("run", help="run directory")
    args = p.parse_args(argv)
    print(f"report: {finish(args.run)}")
    return 0


def cmd_data(argv: list[str]) -> int:
    from .data import list_datasets

    p = _Parser(prog="genvision data", description="Datasets genvision can read.")
    p.add_argument("action", choices=["list"])
    p.parse_args(argv)
    rows = list_datasets()
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        shape = "x".join(str(s) for s in r["shape"]) if r.get("shape") else "any"
        size = r.get("size") or ""
        print(f"{r['name']:<{width}}  {r['kind']:<9} {shape:<9} {str(size):>7}  "
              f"{r['description']}")
    return 0


def cmd_compare(argv: list[str]) -> int:
    from .report.compare import cmd_compare as run_compare

    return run_compare(argv)


def cmd_superres(argv: list[str]) -> int:
    from .apps.superres.cli import cmd_superres as run_superres

    return run_superres(argv)


def cmd_colorize(argv: list[str]) -> int:
    from .apps.colorize.cli import cmd_colorize as run_colorize

    return run_colorize(argv)


def cmd_classify(argv: list[str]) -> int:
    from .apps.classify.cli import cmd_classify as run_classify

    return run_classify(argv)


def cmd_augment(argv: list[str]) -> int:
    from .apps.augment.cli import cmd_augment as run_augment

    return run_augment(argv)


def cmd_outliers(argv: list[str]) -> int:
    from .apps.outliers.cli import cmd_outliers as run_outliers

    return run_outliers(argv)


def cmd_theory(argv: list[str]) -> int:
    from .theory.cli import cmd_theory as run_theory

    return run_theory(argv)


COMMANDS = {"train": cmd_train, "sample": cmd_sample, "evaluate": cmd_evaluate,
            "compare": cmd_compare, "features": cmd_features, "info": cmd_info,
            "report": cmd_report, "data": cmd_data, "superres": cmd_superres,
            "colorize": cmd_colorize, "classify": cmd_classify, "augment": cmd_augment,
            "outliers": cmd_outliers, "theory": cmd_theory}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        usage = __doc__.strip().split("\n\n")[1]  # the command list of the module docstring
        print(f"genvision {__version__}: deep generative models of images\n\n{usage}\n\n"
              "`genvision COMMAND --help` lists every option of a command.")
        return 0
    if argv[0] == "--version":
        print(__version__)
        return 0
    command = COMMANDS.get(argv[0])
    try:
        if command is None:
            raise UserError(f"unknown command {argv[0]!r}",
                            f"use one of: {', '.join(COMMANDS)}")
        return command(argv[1:])
    except UserError as err:
        print(f"error: {err.one_line()}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted; the last checkpoint is kept (resume with --resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
