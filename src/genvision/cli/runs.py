"""Commands that read finished runs: ``genvision info``, ``report`` and ``compare``.

    genvision info RUN [--json]           (a readable summary; --json: the raw records)
    genvision info --models               (the registered models)
    genvision report RUN                  (rewrite samples.png, the figures, report.html)
    genvision compare RUN1 RUN2 ... [-o board.html] [--strict]
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError
from ..models.base import list_models
from ..report.board import write_board
from ..report.compare import collect, render_markdown
from ..report.finish import finish_run
from ..report.summary import summary_lines
from ..runs.records import read_evaluations, read_run_info
from .parser import Parser


def cmd_info(argv: list[str]) -> int:
    """Entry point of ``genvision info``; returns the exit status."""
    p = Parser(prog="genvision info", description="Describe a run, or list the models.")
    p.add_argument("run", nargs="?", help="run directory")
    p.add_argument("--models", action="store_true", help="list the registered models")
    p.add_argument("--json", action="store_true",
                   help="print run.json's main fields and the evaluations as JSON (for "
                        "scripts) instead of the readable summary")
    args = p.parse_args(argv)
    if args.models or not args.run:
        for name in list_models():
            print(name)
        return 0
    info = read_run_info(args.run)
    evaluations = read_evaluations(args.run)
    if not args.json:
        print("\n".join(summary_lines(args.run, info, [e.fields for e in evaluations])))
        return 0
    keys = ("model", "num_parameters", "likelihood_kind", "data", "model_config",
            "train_config", "created")
    if info.is_task:  # a task run: its stages say what was trained
        keys = ("task", "model", "data", "stages", "created")
    summary = {k: info.get(k) for k in keys}
    if evaluations:
        summary["evaluations"] = [e.fields for e in evaluations]
    print(json.dumps(summary, indent=2))
    return 0


def cmd_report(argv: list[str]) -> int:
    """Entry point of ``genvision report``; returns the exit status."""
    p = Parser(prog="genvision report", description="(Re)write a run's report.html.")
    p.add_argument("run", help="run directory")
    args = p.parse_args(argv)
    # the page would show a damaged run.json or metrics.json as a note; asked for the
    # report itself, the user gets the one-line error naming the file, and nothing written
    read_run_info(args.run)
    read_evaluations(args.run)
    print(f"report: {finish_run(args.run)}")
    return 0


def cmd_compare(argv: list[str]) -> int:
    """``genvision compare RUN1 RUN2 ... [-o board.html] [--strict]``.

    Prints the Markdown table (and writes the HTML board with ``-o``). Every problem is
    raised as :class:`UserError` before anything is written, so a failed comparison never
    replaces an existing board.
    """
    p = Parser(prog="genvision compare",
               description="Compare runs trained on the same data: one table of training "
                           "cost, NLL and sample metrics; numbers measured under different "
                           "protocols are marked [a], [b], ... with what differs and how to "
                           "measure them alike.")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories")
    p.add_argument("-o", "--output", metavar="BOARD.html",
                   help="also write a self-contained HTML page: the table with links to each "
                        "run's report, charts (training curves, quality vs likelihood, cost) "
                        "and the sample grids")
    p.add_argument("--strict", action="store_true",
                   help="refuse numbers of different evaluation protocols in one column "
                        "instead of marking them")
    p.add_argument("--mixed", action="store_true",
                   help="accepted for older scripts: different protocols are always shown, "
                        "marked")
    args = p.parse_args(argv)
    out = Path(args.output) if args.output else None
    if out is not None and (out.suffix.lower() not in (".html", ".htm") or out.is_dir()):
        raise UserError(f"cannot write the board to {out}", "pass -o NAME.html")
    board = collect([Path(r) for r in args.runs], strict=args.strict)
    print(render_markdown(board), end="")
    if out is not None:
        print(f"board: {write_board(board, out)}")
    return 0
