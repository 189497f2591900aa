"""``genvision evaluate RUN [--metrics nll,fid,...] [--n 10000] [--sampler-opt key=value]``.

Flags are derived from :class:`~genvision.evaluation.evaluate.EvalOptions`.
"""

from __future__ import annotations

import dataclasses

from .. import dataclass_config as cfg
from ..evaluation.evaluate import EvalOptions, describe, evaluate_run
from ..runs.layout import RunLayout
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
    opts = cfg.from_dict(EvalOptions, cfg.overrides_from_args(EvalOptions, args),
                         what="evaluate option")
    opts = dataclasses.replace(opts, sampler_opts=tuple(sampler_opts(args)))
    for result in evaluate_run(args.run, opts):
        print(describe(result))
    print(f"written to {RunLayout(args.run).evaluations}")
    return 0
