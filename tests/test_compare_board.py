"""The comparison board (issue 20): runs of different protocols side by side with a fix that
works, best values, units and arrows, report links that resolve, charts that stand alone
(run folders written by hand, as in test_compare)."""

from __future__ import annotations

import base64
import io
import re
import shlex
from urllib.parse import unquote

import pytest
from PIL import Image

from genvision import dataclass_config as cfg
from genvision.cli.parser import Parser, add_sampler_opt_flag
from genvision.cli.train import train_parser
from genvision.errors import UserError
from genvision.evaluation.evaluate import EvalOptions
from genvision.report import board_charts
from genvision.report.board import best_cells, render_board_html, write_board
from genvision.report.compare import collect, render_markdown
from test_compare import DATA, make_run, nll_entry, samples_entry

GREY = DATA | {"binarize": {"scheme": "none", "seed": None}, "data_kind": "grey8"}


def _gan_entry(fid: float, **extra) -> dict:
    """A GAN's samples entry: scored against the grey (not binarised) test images."""
    return samples_entry(fid, data=GREY | {"n": 500}, **extra)


def _commands(text: str, program: str) -> list[list[str]]:
    """The arguments of every `genvision PROGRAM ...` command quoted in ``text``."""
    return [shlex.split(c)[2:] for c in re.findall(rf"`(genvision {program} [^`]*)`", text)]


def _eval_parser() -> Parser:
    """The flags `genvision evaluate` accepts (as cli.evaluate builds them)."""
    p = Parser(prog="genvision evaluate")
    p.add_argument("run")
    cfg.add_dataclass_flags(p, EvalOptions)
    add_sampler_opt_flag(p)
    return p


def test_binary_and_grey_runs_sit_side_by_side_with_a_fix_that_works(tmp_path):
    # the likelihood models binarise grey data, the GAN does not: their FIDs are scored on
    # different images, so they are marked, not refused, and the fix is a train flag
    vae = make_run(tmp_path, "vae", evaluations=[nll_entry(), samples_entry(9.0)])
    pcnn = make_run(tmp_path, "pcnn", model="pixelcnn", likelihood_kind="exact",
                    evaluations=[nll_entry(80.0, estimator="exact", kind="exact"),
                                 samples_entry(7.0)])
    gan = make_run(tmp_path, "gan", model="dcgan", likelihood_kind="none",
                   evaluations=[_gan_entry(5.0)])
    board = collect([vae, pcnn, gan])
    md = render_markdown(board)
    assert [r.text("fid") for r in board.rows] == ["9.00 [a]", "7.00 [a]", "5.00 [b]"]
    assert all("[" not in r.text("nll") for r in board.rows[:2])  # one NLL protocol
    why = board.footnotes[-1]
    assert why.startswith("[b] sample metrics:") and "(runs: gan)" in why
    assert "Not comparable with [a]: evaluation images binarised vs not binarised" in why
    assert "To compare:" in why and why in md
    # the fix names train flags that exist, for the runs that need them
    assert f"retrain {gan} with `--binarize dynamic`" in why
    assert f"{vae}, {pcnn} with `--binarize none`" in why
    for flag in ("dynamic", "none"):
        args = train_parser("vae").parse_args(["--binarize", flag, "--steps", "1"])
        assert args.binarize == flag
    with pytest.raises(UserError, match="strict"):
        collect([vae, pcnn, gan], strict=True)
    html = render_board_html(board)
    assert 'title="not comparable with the main protocol: evaluation images binarised' in html


def test_every_evaluate_fix_parses_with_the_real_flags(tmp_path):
    # n, sample count, k and sampler: the fix quotes a command evaluate accepts
    a = make_run(tmp_path, "a", model="dcgan", evaluations=[samples_entry(3.0, n=500)])
    b = make_run(tmp_path, "b", model="dcgan", evaluations=[samples_entry(4.0, n=200)])
    c = make_run(tmp_path, "c", model="dcgan", evaluations=[samples_entry(5.0, n=500)])
    board = collect([a, b, c])
    assert board.rows[1].marks["fid"] == "[b]"
    commands = _commands(board.footnotes[1], "evaluate")
    assert commands, board.footnotes[1]
    args = _eval_parser().parse_args(commands[0])
    assert args.n == 500 and args.samples == 500 and args.kid_subset_size == 500
    with pytest.raises(UserError, match="evaluate RUN --n 500 --samples 500"):
        collect([a, b, c], strict=True)


def test_same_model_with_another_sampler_is_marked_and_strict_names_the_sampler(tmp_path):
    plain = samples_entry(3.0)
    plain["protocol"]["sampler"] = {"name": "ancestral", "temperature": 1.0}
    cool = samples_entry(2.0)
    cool["protocol"]["sampler"] = {"name": "ancestral", "temperature": 0.7}
    a = make_run(tmp_path, "a", model="glow", evaluations=[plain])
    b = make_run(tmp_path, "b", model="glow", evaluations=[cool])
    board = collect([a, b])
    assert [r.text("fid") for r in board.rows] == ["3.00 [a]", "2.00 [b]"]
    assert "sampler" in board.footnotes[1] and "--sampler-opt temperature=1.0" in \
        board.footnotes[1]
    args = _eval_parser().parse_args(_commands(board.footnotes[1], "evaluate")[0])
    assert args.sampler == "ancestral" and args.sampler_opt == ["temperature=1.0"]
    with pytest.raises(UserError, match="different samplers"):
        collect([a, b], strict=True)


def test_conditional_and_unconditional_gans_share_the_fid_column(tmp_path):
    cond = samples_entry(4.0)
    cond["protocol"]["labels"] = "balanced (i mod classes)"
    a = make_run(tmp_path, "sngan", model="sngan", evaluations=[samples_entry(6.0)])
    b = make_run(tmp_path, "csngan", model="sngan", evaluations=[cond])
    run_json = b / "run.json"
    run_json.write_text(run_json.read_text().replace('"conditional": false',
                                                     '"conditional": true'))
    board = collect([a, b], strict=True)  # one protocol: not even --strict refuses
    assert [r.text("fid") for r in board.rows] == ["6.00", "4.00"]
    assert "class-conditional" in render_board_html(board)


def test_best_value_per_column_knows_which_way_is_better(tmp_path):
    a = make_run(tmp_path, "a", evaluations=[nll_entry(90.0), samples_entry(5.0, precision=0.9)])
    b = make_run(tmp_path, "b", evaluations=[nll_entry(80.0), samples_entry(3.0, precision=0.6)])
    c = make_run(tmp_path, "c", evaluations=[nll_entry(85.0), samples_entry(4.0)])
    board = collect([a, b, c])
    best = best_cells(board)
    assert {(1, "nll"), (1, "bpd"), (1, "fid"), (0, "precision")} <= best
    assert (0, "fid") not in best and (1, "precision") not in best
    assert not any(key in ("recall", "params", "train_time") for _, key in best)  # ties, costs
    html = render_board_html(board)
    assert re.search(r'<th>FID <span class="arrow" title="lower is better">↓</span>', html)
    assert re.search(r'<th>precision <span class="arrow" title="higher is better">↑', html)
    assert '<span class="unit">nats/image</span>' in html
    # the best of b's FID is highlighted, a number of another protocol is not compared
    gan = make_run(tmp_path, "gan", model="dcgan", evaluations=[_gan_entry(1.0)])
    marked = collect([a, b, gan])
    assert (2, "fid") not in best_cells(marked) and (1, "fid") in best_cells(marked)


def test_report_links_resolve_from_where_the_board_is_written(tmp_path):
    runs = tmp_path / "runs"
    a = make_run(runs, "vae run", evaluations=[nll_entry()])
    b = make_run(runs, "no-report", evaluations=[nll_entry(83.0)])
    (a / "report.html").write_text("<html></html>")
    page = write_board(collect([a, runs / ".." / "runs" / "no-report"]),
                       tmp_path / "boards" / "deep" / "board.html")
    html = page.read_text()
    links = [h for h in re.findall(r'href="([^"#][^"]*)"', html)]
    assert links and all(not h.startswith(("/", "file:")) for h in links)  # relative
    for href in links:
        assert (page.parent / unquote(href)).resolve() == (a / "report.html").resolve()
    assert f"no report.html: `genvision report {runs / '..' / 'runs' / 'no-report'}`" in html
    assert "vae run · vae · explicit latent variable" in html  # not "vae · vae"
    assert b.name in html


def test_charts_are_embedded_and_each_stands_alone(tmp_path):
    a = make_run(tmp_path, "vae", evaluations=[nll_entry(), samples_entry(9.0)])
    b = make_run(tmp_path, "gan", model="dcgan", likelihood_kind="none",
                 evaluations=[samples_entry(5.0)])
    html = render_board_html(collect([a, b]))
    figures = re.findall(r'<figure class="plot"><img src="data:image/png;base64,([^"]+)" '
                         r'alt="([^"]+)"><figcaption>([^<]+)</figcaption>', html)
    assert [alt.split()[0] for _, alt, _ in figures] == ["training", "FID", "training"]
    for data, _, _ in figures:
        with Image.open(io.BytesIO(base64.b64decode(data))) as im:
            assert im.width >= 900 and im.height >= 250
    assert not re.search(r'(src|href)="(?!data:|#)', html)  # no link: no report.html here


def test_charts_say_why_when_there_is_nothing_to_draw(tmp_path):
    a = make_run(tmp_path, "a", time_s=0.0)  # not evaluated
    (a / "metrics.jsonl").write_text("")
    board = collect([a])
    assert board_charts.quality_vs_likelihood(board.rows, set()) is None
    assert board_charts.training_curves(board.rows, [[]]) is None
    html = render_board_html(board)
    assert "No training curves" in html and "no run has an FID" in html


def test_curves_keep_nats_and_gan_losses_apart(tmp_path):
    a = make_run(tmp_path, "vae", evaluations=[nll_entry()])
    b = make_run(tmp_path, "gan", model="dcgan", evaluations=[samples_entry()])
    board = collect([a, b])
    records = [[{"step": 1, "time_s": 1.0, "loss": 3.0}], [{"step": 1, "loss": 1.0}]]
    panels = board_charts._curve_panels(board.rows, records)
    assert panels == {"nats/image": [0], "value": [1]}
    assert board_charts.loss_series([{"step": 2, "loss": float("nan")},
                                     {"step": 1, "time_s": 60.0, "loss": 4.0},
                                     {"step": 3, "split": "val", "loss": 1.0}]) == \
        ([1.0], [1.0], [4.0])
