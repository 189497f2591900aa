"""``genvision classify``: generative versus discriminative classifiers.

    genvision classify --task 0-vs-1
    genvision classify --task all --curve 10,30,100,300,1000,all --n-test 1000
    genvision classify --task 3,5,8 --classifiers nb,vae,logreg,cnn

Trains every classifier on the task's binary training images and prints test accuracy,
log-loss and expected calibration error, with the data protocol; ``--curve`` repeats it
for nested, class-balanced training subsets (the learning curves of Ng & Jordan 2002).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

from ..apps.classify.classifiers import (
    ALL_CLASSIFIERS,
    DEFAULT_CLASSIFIERS,
    build_classifier,
    parse_classifiers,
)
from ..apps.classify.data import load_task_data, task_slug
from ..apps.classify.experiment import keep_dir_for, parse_sizes, run_curve
from ..apps.classify.generative import GENERATIVE_MODELS, GenBudget
from ..apps.classify.report import (
    crossover,
    crossover_sentence,
    curve_table,
    final_table,
    plot_curve,
    plot_posteriors,
    plot_reliability,
    protocol_line,
)
from ..errors import UserError
from ..storage import atomic_write_json
from .parser import Parser

DEFAULT_CURVE = "10,30,100,300,1000,all"


def _parser() -> argparse.ArgumentParser:
    p = Parser(prog="genvision classify",
                description="Generative (Bayes' rule on p(x|y) p(y)) versus discriminative "
                            "(p(y|x) directly) classifiers on binary images: accuracy, "
                            "log-loss, calibration, and learning curves.")
    p.add_argument("--task", default="0-vs-1",
                   help="classes to separate: 0-vs-1 (default), all, or labels like 3,5,8")
    p.add_argument("--data", default="mnist5k", help="labelled training data spec "
                                                     "(default mnist5k)")
    p.add_argument("--test-data", default="auto",
                   help="test data spec; auto = the official MNIST test split (mnist) for "
                        "mnist5k when the download cache holds it (after one --test-data "
                        "mnist), else the data's own test split (pass a spec to choose)")
    p.add_argument("--n-test", type=int, help="score only the first N test images of the "
                                              "task (default: all)")
    p.add_argument("--classifiers", default=",".join(DEFAULT_CLASSIFIERS),
                   help=f"comma-separated, from {', '.join(ALL_CLASSIFIERS)} (nb = "
                        f"naive-bayes); default {','.join(DEFAULT_CLASSIFIERS)}")
    p.add_argument("--curve", nargs="?", const=DEFAULT_CURVE, metavar="SIZES",
                   help=f"learning curve over these training sizes (default {DEFAULT_CURVE}; "
                        "'all' = every training image)")
    p.add_argument("--seed", type=int, default=0, help="subset draw and training seed")
    g = p.add_argument_group("budgets")
    g.add_argument("--gen-steps", type=int, default=300,
                   help="training steps of each deep generative model (default 300)")
    g.add_argument("--gen-batch", type=int, default=32, help="their batch size (default 32)")
    g.add_argument("--gen-lr", type=float,
                   help="their learning rate (default: 2e-3 for vae, 5e-3 for the PixelCNNs, "
                        "1e-2 for rbm)")
    g.add_argument("--gen-option", action="append", default=[], metavar="MODEL:KEY=VALUE",
                   help="model option, e.g. vae:latent_dim=8 or gated-pixelcnn:layers=6 "
                        "(repeatable; VALUE is JSON)")
    g.add_argument("--k", type=int, default=16,
                   help="importance samples of the VAE's IWAE bound / a flow's "
                        "dequantisation noise, per class (default 16)")
    g.add_argument("--cnn-epochs", type=float, default=10,
                   help="CNN epochs (at least 200 steps; default 10)")
    g.add_argument("--logreg-iter", type=int, default=200,
                   help="logistic regression lbfgs iterations (default 200)")
    g.add_argument("--nb-alpha", type=float, default=1.0, help="naive Bayes smoothing")
    p.add_argument("--out", help="output directory (default runs/classify-TASK)")
    p.add_argument("--force", action="store_true", help="write into a non-empty --out")
    p.add_argument("--keep-models", action="store_true",
                   help="keep the generative models' training runs in OUT/models")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar (default: in a terminal, else one line per fit; "
                        "--progress in a log: plain progress lines)")
    return p


def parse_gen_options(items: list[str]) -> dict[str, dict[str, Any]]:
    """``["vae:latent_dim=8"]`` -> ``{"vae": {"latent_dim": 8}}``."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        model, _, rest = item.partition(":")
        key, eq, value = rest.partition("=")
        if model not in GENERATIVE_MODELS or not key or not eq:
            raise UserError(f"cannot read --gen-option {item!r}",
                            f"write MODEL:KEY=VALUE with MODEL one of "
                            f"{', '.join(GENERATIVE_MODELS)}")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        out.setdefault(model, {})[key.replace("-", "_")] = parsed
    return out


def check_out_dir(out: Path, force: bool) -> None:
    """Refuse a non-empty output directory unless ``force`` (checked before any work)."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} exists and is not a directory", "choose another --out")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UserError(f"{out} is not empty", "choose another --out or pass --force")


def _check_args(args: argparse.Namespace) -> None:
    checks = [(args.gen_steps >= 1, "--gen-steps must be >= 1"),
              (args.gen_batch >= 1, "--gen-batch must be >= 1"),
              (args.gen_lr is None or args.gen_lr > 0, "--gen-lr must be > 0"),
              (args.k >= 1, "--k must be >= 1"),
              (args.cnn_epochs > 0, "--cnn-epochs must be > 0"),
              (args.logreg_iter >= 1, "--logreg-iter must be >= 1"),
              (args.nb_alpha > 0, "--nb-alpha must be > 0")]
    for ok, msg in checks:
        if not ok:
            raise UserError(msg, "pass a positive value")


def cmd_classify(argv: list[str]) -> int:
    """Entry point of ``genvision classify``; returns the exit status."""
    args = _parser().parse_args(argv)
    _check_args(args)
    names = parse_classifiers(args.classifiers)
    sizes = parse_sizes(args.curve) if args.curve else [None]
    options = parse_gen_options(args.gen_option)
    out = Path(args.out or f"runs/classify-{task_slug(args.task)}")
    check_out_dir(out, args.force)
    t0, c0 = time.perf_counter(), time.process_time()
    data = load_task_data(args.task, args.data, args.test_data, args.n_test)
    if any(s is not None and s < data.num_classes for s in sizes):
        raise UserError(f"training sizes must be at least the {data.num_classes} classes",
                        f"use --curve sizes >= {data.num_classes}")

    def make(name: str, n: int | None):
        budget = GenBudget(args.gen_steps, args.gen_batch, args.gen_lr, options.get(name, {}))
        keep = keep_dir_for(out, name, n) if args.keep_models else None
        return build_classifier(name, data.num_classes, data.shape, budget=budget, k=args.k,
                                cnn_epochs=args.cnn_epochs, logreg_iter=args.logreg_iter,
                                nb_alpha=args.nb_alpha, keep_dir=keep)

    for name in names:  # bad model options fail before minutes of training
        make(name, None)
    out.mkdir(parents=True, exist_ok=True)
    if args.force and args.keep_models and (out / "models").is_dir():
        shutil.rmtree(out / "models")  # our own sub-directory: fresh runs need it empty
    result = run_curve(data, names, sizes, args.seed, make, args.progress)
    deep = any(n in GENERATIVE_MODELS for n in names)
    budgets = {"gen steps": args.gen_steps if deep else None,
               "gen batch": args.gen_batch if deep else None,
               "IWAE k": args.k if {"vae", "realnvp", "glow"} & set(names) else None,
               "cnn epochs": args.cnn_epochs if "cnn" in names else None,
               "logreg iters": args.logreg_iter if "logreg" in names else None}
    budgets = {k: v for k, v in budgets.items() if v is not None} or {"none": "closed form"}
    summary = _write_outputs(out, args, data, result, budgets, names)
    summary["command"] = " ".join(["genvision", "classify", *argv])
    summary["wall_s"] = round(time.perf_counter() - t0, 1)
    summary["cpu_s"] = round(time.process_time() - c0, 1)
    atomic_write_json(out / "results.json", summary)
    print(summary["markdown"])
    print(f"\ntotal: {summary['wall_s']} s wall, {summary['cpu_s']} s CPU")
    print(f"files: {out / 'results.json'}, {out / 'table.md'}, "
          f"{', '.join(str(out / f) for f in summary['figures'].values())}")
    return 0


def _write_outputs(out: Path, args: argparse.Namespace, data, result, budgets,
                   names: list[str]) -> dict[str, Any]:
    proto = protocol_line(data.protocol, budgets)
    title = f"task {args.task}: {proto.split(';')[0]}"
    cross = crossover(result.rows)
    lines = [f"## genvision classify --task {args.task}", "", proto, "",
             final_table(result.rows), ""]
    figures = {}
    if len({r["n_train"] for r in result.rows}) > 1:
        lines += ["Learning curve: test accuracy (%) by number of labelled training images "
                  "(best in bold)", "", curve_table(result.rows), "",
                  crossover_sentence(cross), ""]
        figures["curve"] = plot_curve(result.rows, out / "curve.png", title).name
    n_max = max(r["n_train"] for r in result.rows)
    figures["reliability"] = plot_reliability(
        result.final_log_proba, data.y_test, out / "reliability.png",
        f"task {args.task}: {n_max} training, {len(data.y_test)} test images").name
    path, ambiguous = plot_posteriors(result.final_log_proba, data.x_test, data.y_test,
                                      data.class_names, out / "posteriors.png",
                                      "p(y|x) of the most ambiguous test digits "
                                      "(highest entropy of the mean posterior)")
    figures["posteriors"] = path.name
    markdown = "\n".join(lines).rstrip() + "\n"
    (out / "table.md").write_text(markdown, encoding="utf-8")
    return {"task": args.task, "classifiers": names, "seed": args.seed,
            "protocol": data.protocol, "budgets": budgets, "rows": result.rows,
            "crossover": cross, "ambiguous": ambiguous, "figures": figures,
            "markdown": markdown}
