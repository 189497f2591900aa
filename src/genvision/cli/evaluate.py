"""``genvision evaluate RUN [--metrics nll,fid,...] [--n 10000] [--sampler-opt key=value]``.

Flags are derived from :class:`~genvision.evaluation.evaluate.EvalOptions`. The results
are merged into the run's metrics.json, then its report.html is re-rendered from disk.
"""

from __future__ import annotations

import dataclasses

from .. import dataclass_config as cfg
from ..evaluation.evaluate import EvalOptions, describe, evaluate_run
from ..report.finish import refresh_report
from ..runs.layout import RunLayout
from ..runs.records import read_evaluations
from .parser import Parser, add_sampler_opt_flag, sampler_opts


def cmd_evaluate(argv: list[str]) -> int:
    """Entry point of ``genvision evaluate``; returns the exit status."""
    p = Parser(prog="genvision evaluate",
               description="Score a run: NLL (nats, bits/dim) and sample metrics (FID, KID, "
                           "precision/recall, density/coverage, CAS, memorisation).")
    p.add_argument("run", help="run directory")
    cfg.add_dataclass_flags(p, EvalOptions)
    add_sampler_opt_flag(p)
    args = p.parse_args(argv)
    given = cfg.overrides_from_args(EvalOptions, args)
    opts = cfg.from_dict(EvalOptions, given, what="evaluate option")
    opts = dataclasses.replace(opts, sampler_opts=tuple(sampler_opts(args)))
    # a damaged metrics.json is refused before minutes of scoring, not after (the results
    # are merged into it, and it is never overwritten)
    read_evaluations(args.run)
    # scoring the images a run trained on is refused unless --split was typed: the default
    # (test) must never quietly score training images
    for result in evaluate_run(args.run, opts, allow_training_images="split" in given):
        flag = result.get("data", {}).get("training_images")
        print(f"TRAINING IMAGES ({flag}): {describe(result)}" if flag else describe(result))
    print(f"written to {RunLayout(args.run).evaluations}")
    # the page must not keep saying "Not evaluated yet": re-render it from disk (seconds;
    # the figures are not re-sampled, `genvision report` does that)
    print(f"report: {refresh_report(args.run)}")
    return 0
