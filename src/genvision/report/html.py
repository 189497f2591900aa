"""One static HTML page per run: ``runs/NAME/report.html``.

The page shows the run's title, the warnings (those the loop recorded while training, e.g.
a GAN's discriminator winning, and those computed from the run's files by
:mod:`genvision.report.diagnostics`: mode collapse, worse than the baseline, a budget that
ended inside a warm-up), a summary, the evaluations with their protocols
(:mod:`genvision.report.evaluation`), the sample grid and other figures (each linked to
its full-size PNG), the grids written during training with a fixed-latent progress strip
(``samples/progress_strip.png``: the first row of each grid, one row per step), the loss
curves (``loss.png``, drawn by :mod:`genvision.report.plots`) and the
model / train / data configs. It is self-contained: relative image paths, inline CSS, no
JavaScript and no external resource, so it opens from disk, from a copied run folder or
from a CI artifact. Every string read from the run is HTML-escaped. A missing piece is
replaced by a short note; only a missing run directory is an error.
"""

from __future__ import annotations

import os
import warnings
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from PIL import Image, UnidentifiedImageError

from ..errors import UserError
from ..grids import save_image_array
from ..runs.layout import NOT_FIGURES, RunLayout
from ..runs.load import trained_stages
from ..runs.records import RunInfo, read_evaluations, read_run_info
from ..storage import atomic_write_text
from . import format as fmt
from .diagnostics import RunWarning, run_warnings
from .evaluation import evaluation_tables
from .plots import plot_loss_curves
from .run import (
    figure_captions,
    figure_files,
    grid_first_rows,
    model_family,
    progress_grids,
    read_metrics,
    summarise,
)

#: most progress grids shown in the strip (evenly spaced, always the first and last)
MAX_PROGRESS = 10
#: run.json entries shown as their own config table, with their headings
_CONFIG_BLOCKS = (("model_config", "model"), ("train_config", "training"),
                  ("data", "data (protocol)"), ("data_config", "data options"))
#: families whose training loss is not a likelihood in nats
_NON_LIKELIHOOD_FAMILIES = ("implicit (GAN)", "diffusion")

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
 color:#1d232b;background:#f6f7f9;margin:0}
main{max-width:1100px;margin:0 auto;padding:24px 28px 48px}
h1{font-size:26px;margin:0 0 4px;word-break:break-all}
h2{font-size:19px;margin:32px 0 10px;padding-bottom:4px;border-bottom:1px solid #dde1e6}
h3{font-size:15px;margin:14px 0 6px}
.sub{color:#59636e;margin:0 0 12px}
nav{font-size:13px;margin:8px 0 0}nav a{margin-right:12px;color:#2a5db0}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:8px 14px;min-width:120px}
.card .k{font-size:12px;color:#59636e}.card .v{font-size:18px;font-weight:600}
figure{margin:0 10px 14px 0;display:inline-block;vertical-align:top;background:#fff;
 border:1px solid #dde1e6;border-radius:6px;padding:8px;width:min-content;min-width:280px;
 max-width:100%;box-sizing:border-box}
figure.plot{width:auto;display:block}
figure img{display:block;max-width:100%;height:auto;image-rendering:pixelated}
figure.plot img{image-rendering:auto}
figcaption{font-size:13px;color:#59636e;margin-top:4px;text-align:center}
.strip{display:flex;flex-wrap:wrap;gap:8px}.strip figure{width:150px}
.strip img{width:150px}
table{border-collapse:collapse;background:#fff;font-size:13.5px;margin-bottom:8px}
th,td{border:1px solid #dde1e6;padding:4px 9px;text-align:left;vertical-align:top}
th{background:#eef1f4;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.pk{color:#6a737d}
.configs{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:14px}
.configs table{width:100%}.configs td:first-child{color:#39424c;white-space:nowrap}
.configs td{word-break:break-word}
.note{color:#8a5a00;background:#fff8e6;border:1px solid #f0d89a;border-radius:4px;
 padding:6px 10px;display:inline-block;font-size:13.5px}
footer{margin-top:36px;font-size:12px;color:#6a737d}
figure a{color:inherit}a.full{font-size:12px;color:#2a5db0;white-space:nowrap}
.warnbox{background:#fff1f0;border:1px solid #e8a29c;border-left:5px solid #c62828;
 border-radius:6px;padding:8px 14px;color:#5f1010}
.warnbox p{margin:2px 0 6px}.warnbox ul{margin:0;padding-left:20px}.warnbox li{margin:3px 0}
.wsrc{font-size:12px;font-weight:600;text-transform:uppercase;color:#a11;margin-right:6px}
section#warnings h2{color:#b71c1c;border-bottom-color:#e8a29c}
.scroll{overflow-x:auto;max-width:100%}
table.evals th{white-space:nowrap;text-align:right}
table.evals td.proto{border-top:none;color:#39424c;font-size:12.5px;background:#fafbfc}
.unit{font-weight:400;font-size:11.5px;color:#6a737d}
.arrow{color:#2a5db0;font-weight:700}
td.kind{white-space:nowrap}
details summary{cursor:pointer;color:#2a5db0;font-size:12px;margin-top:3px}
table.raw{font-size:12px;margin-top:4px}table.raw td{padding:1px 6px}
.legend{font-size:12.5px;color:#59636e;margin:0 0 6px}
"""


def write_report(run_dir: str | os.PathLike, *, redraw: bool = True) -> Path:
    """Write ``run_dir/report.html`` (and ``run_dir/loss.png``) atomically; return its path.

    ``redraw=False`` reuses the loss curves and the progress strip already on disk (only
    drawing those that are missing), so re-rendering after ``genvision evaluate`` takes
    a fraction of a second: nothing is sampled or trained, every figure is as written.

    Raises:
        UserError: when ``run_dir`` is not a directory. Any other missing or unreadable
            piece (run.json, metrics, figures) becomes a note on the page.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run directory {run_dir} does not exist",
                        "pass the folder a training run wrote, e.g. runs/NAME")
    out = RunLayout(run_dir).report_html
    atomic_write_text(out, render_report(run_dir, redraw=redraw))
    return out


def render_report(run_dir: Path, *, redraw: bool = True) -> str:
    """The report page of ``run_dir`` as an HTML string (writes ``loss.png`` as a side
    effect, unless ``redraw`` is false and it exists)."""
    layout = RunLayout(run_dir)
    info = _read_info(run_dir)
    run = info.to_dict() if info is not None else None
    records = read_metrics(layout.metrics_log)
    model = run.get("model") if run else None
    model = model if isinstance(model, str) else None
    family = model_family(model, run)
    evaluations = _load_evaluations(run_dir)
    found = run_warnings(run_dir, run or {}, records, evaluations or [])
    sections = [
        ("warnings", f"Warnings ({len(found)})", _warnings(found)),
        ("summary", "Summary", _summary(run, records, family)),
        ("stages", "Stages", _stages(run_dir, info)),
        ("comparison", "Comparison", _comparison(run_dir, info)),
        ("metrics", "Evaluation", _metrics(evaluations)),
        ("samples", "Samples", None if info and info.is_task else _samples(run_dir, run)),
        ("figures", "Figures", _figures(run_dir, model, run)),
        ("progress", "Samples during training", _progress(run_dir, run, redraw)),
        ("loss", "Loss curves", _loss(run_dir, records, family, redraw)),
        ("config", "Configuration", _configs(run)),
    ]
    sections = [s for s in sections if s[2] is not None]
    name = run_dir.resolve().name
    sub = [("model", model), ("family", family),
           ("created", run.get("created") if run else None),
           ("genvision", run.get("genvision_version") if run else None)]
    sub_html = " · ".join(f"{k} <b>{_e(v)}</b>" for k, v in sub if v)
    nav = "".join(f'<a href="#{sid}">{_e(title)}</a>' for sid, title, _ in sections)
    body = "\n".join(f'<section id="{sid}"><h2>{_e(title)}</h2>\n{html}</section>'
                     for sid, title, html in sections)
    missing = "" if run else _note("run.json is missing or unreadable: model and configs unknown.")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">\n'
            f"<title>{_e(name)} · {_e(model or 'run')} · genvision report</title>\n"
            f"<style>{_CSS}</style></head>\n<body><main>\n"
            f"<header><h1>{_e(name)}</h1><p class=\"sub\">{sub_html}</p>{missing}"
            f"<nav>{nav}</nav></header>\n{body}\n"
            f"<footer>Static report written by genvision.report from the files in this "
            f"run folder.</footer>\n</main></body></html>\n")


# ----- helpers --------------------------------------------------------------------------
def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def _img(run_dir: Path, path: Path, caption: str, cls: str = "") -> str:
    """A ``<figure>`` for ``path`` with a relative src, linked to the full-size PNG (a
    click opens it), or a note when it cannot be read."""
    try:
        with Image.open(path) as im:
            width, height = im.size
    except (OSError, UnidentifiedImageError, ValueError):
        return _note(f"{path.relative_to(run_dir).as_posix()} could not be read as an image.")
    src = quote(path.relative_to(run_dir).as_posix())
    cls_attr = f' class="{cls}"' if cls else ""
    return (f'<figure{cls_attr}><a href="{src}" title="open full size"><img src="{src}" '
            f'width="{width}" height="{height}" alt="{_e(caption)}"></a>'
            f'<figcaption>{_e(caption)} <a class="full" href="{src}">full size ↗</a>'
            f"</figcaption></figure>")


def _table(header: list[str], rows: list[list[str]]) -> str:
    """A table from already-escaped cell HTML (cells may carry ``<td ...>`` themselves)."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in r)
                   + "</tr>\n" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}</tbody></table>"


# ----- sections (each returns HTML, or None to leave the section out) ---------------------
def _summary(run: dict | None, records: list[dict], family: str | None = None) -> str:
    stats = summarise(records)
    cards: list[tuple[str, str]] = []
    params = run.get("num_parameters") if run else None
    if fmt.is_result("num_parameters", params):
        cards.append(("parameters", fmt.fmt_number(params)))
    if "step" in stats:
        cards.append(("steps", fmt.fmt_number(int(stats["step"]))))
    if "epoch" in stats:
        cards.append(("epochs", fmt.fmt_number(round(stats["epoch"], 2))))
    if "time_s" in stats:
        cards.append(("training time", fmt.fmt_duration(stats["time_s"])))
    if "images_per_s" in stats:
        cards.append(("train images/s (median)", fmt.fmt_number(round(stats["images_per_s"], 1))))
    cards += _loss_cards(records, stats, family)
    html = "".join(f'<div class="card"><div class="k">{_e(k)}</div><div class="v">{_e(v)}</div>'
                   f"</div>" for k, v in cards)
    html = f'<div class="cards">{html}</div>' if cards else ""
    if not records:
        html += _note("Training is logged per stage (below)." if run and run.get("task")
                      else "No training metrics logged (metrics.jsonl missing or empty).")
    return html


def _loss_cards(records: list[dict], stats: dict[str, float], family: str | None
                ) -> list[tuple[str, str]]:
    """The last training losses. A GAN's ``loss`` is the discriminator's objective, which
    says nothing about sample quality alone: it shows the last D and G terms, named."""
    if family != "implicit (GAN)":
        return [(f"last {split} loss", fmt.fmt_number(stats[f"{split}_loss"]))
                for split in ("train", "val") if f"{split}_loss" in stats]
    last = next((r for r in reversed(records) if r.get("split", "train") == "train"
                 and "g_loss" in r), None)
    if last is None:
        return []
    named = (("loss", "last D loss"), ("g_loss", "last G loss"), ("d_real", "last D(real)"),
             ("d_fake", "last D(fake)"))
    return [(label, fmt.fmt_number(float(f"{last[key]:.4g}"))) for key, label in named
            if isinstance(last.get(key), (int, float)) and not isinstance(last[key], bool)]


def _samples(run_dir: Path, run: dict | None = None) -> str:
    path = RunLayout(run_dir).samples_png
    if not path.is_file():
        return _note("No sample grid (samples.png) in this run.")
    config = run.get("model_config") if run else None
    classes = config.get("num_classes") if isinstance(config, dict) else None
    how = (f"one class per column (classes 0 to {classes - 1}, left to right)"
           if isinstance(classes, int) and classes > 0 else "8 per row, seeds 0, 1, 2, ... "
           "in reading order")
    return _img(run_dir, path, f"samples from the final model: {how}")


def _figures(run_dir: Path, model: str | None, run: dict | None = None) -> str | None:
    figs = figure_files(run_dir, exclude=NOT_FIGURES)
    if not figs:
        return None
    captions = figure_captions(model, run)
    return "\n".join(_img(run_dir, p, captions.get(p.stem, p.stem.replace("_", " ")))
                     for p in figs)


def _warnings(found: list[RunWarning]) -> str | None:
    """Every warning about the run, at the top of the page: what the loop recorded while
    training, then what the budget and the evaluations show (report.diagnostics)."""
    if not found:
        return None
    items = []
    for w in found:
        where = {"training": f"training, step {w.step:,}" if w.step is not None else "training",
                 "budget": "budget", "evaluation": "evaluation"}.get(w.source, w.source)
        items.append(f'<li><span class="wsrc">{_e(where)}</span> {_e(w.message)}</li>')
    return (f'<div class="warnbox"><p><b>{len(found)} warning(s)</b>: they may explain the '
            f'samples and numbers below.</p><ul>{"".join(items)}</ul></div>')


def _progress(run_dir: Path, run: dict | None = None, redraw: bool = True) -> str | None:
    grids = progress_grids(run_dir)
    if not grids:
        return None
    if len(grids) > MAX_PROGRESS:
        idx = {round(i * (len(grids) - 1) / (MAX_PROGRESS - 1)) for i in range(MAX_PROGRESS)}
        grids = [g for i, g in enumerate(grids) if i in idx]
    figs = "\n".join(_img(run_dir, p, f"step {step:,}") for step, p in grids)
    return _strip(run_dir, run, grids, redraw) + f'<div class="strip">{figs}</div>'


def _strip(run_dir: Path, run: dict | None, grids: list[tuple[int, Path]],
           redraw: bool = True) -> str:
    """The fixed-latent progress strip: one row per shown step, one column per latent."""
    config = run.get("model_config") if run else None
    size = config.get("image_size") if isinstance(config, dict) else None
    if len(grids) < 2 or size is None:
        return ""
    arr = grid_first_rows([p for _, p in grids], size)
    if arr is None:
        return ""
    path = RunLayout(run_dir).progress_strip
    if redraw or not path.is_file():
        save_image_array(arr, path, scale=max(1, min(4, 480 // arr.shape[1])))
    steps = ", ".join(f"{s:,}" for s, _ in grids)
    return _img(run_dir, path, f"the same latents at steps {steps} (top to bottom)")


def _loss(run_dir: Path, records: list[dict], family: str | None, redraw: bool = True) -> str:
    unit = "value" if family in _NON_LIKELIHOOD_FAMILIES else "nats/image"
    existing = RunLayout(run_dir).loss_png
    try:
        path = (existing if not redraw and existing.is_file() and records else
                plot_loss_curves(records, existing, default_unit=unit))
    except (ValueError, OSError, RuntimeError) as exc:  # a report must not die on a plot
        warnings.warn(f"loss curves not drawn: {exc}", stacklevel=2)
        return _note(f"The loss curves could not be drawn ({exc}).")
    if path is None:
        return _note("No loss terms logged yet, so no loss curves.")
    return _img(run_dir, path, f"train (blue) and validation (red) curves; y axis in {unit} "
                               f"unless labelled otherwise", cls="plot")


def _read_info(run_dir: Path) -> RunInfo | None:
    """The run record; a missing or corrupt one is a note on the page (with a warning)."""
    layout = RunLayout(run_dir)
    if not (layout.run_json.is_file() or layout.task_json.is_file()):
        return None
    try:
        return read_run_info(run_dir)
    except UserError as err:
        warnings.warn(str(err), stacklevel=3)
        return None


def _load_evaluations(run_dir: Path) -> list[dict] | None:
    if not RunLayout(run_dir).evaluations.exists():
        return None
    try:
        return [e.fields for e in read_evaluations(run_dir)]
    except UserError as err:  # a report shows what it can: a corrupt file is a note
        warnings.warn(str(err), stacklevel=3)
        return []


def _stages(run_dir: Path, info: RunInfo | None) -> str | None:
    """A task run's stages: one summary row each, then each stage's loss curves."""
    if info is None or not info.is_task:
        return None
    layout = RunLayout(run_dir)
    trained = set(trained_stages(run_dir, info))
    rows, plots = [], []
    for name in info.stage_names:
        record = info.stages[name]
        val = record.get("val") if isinstance(record.get("val"), dict) else {}
        steps = fmt.fmt_number(record.get("steps")) if name in trained else "not trained"
        time_s = record.get("time_s")
        rows.append([_e(name), _e(record.get("model", "?")),
                     _e(fmt.fmt_number(record.get("num_parameters"))), _e(steps),
                     _e(fmt.fmt_duration(time_s) if isinstance(time_s, (int, float)) else "—"),
                     _e(", ".join(f"{k} {fmt.fmt_number(v)}" for k, v in val.items()) or "—")])
        stage = layout.stage(name)
        records = read_metrics(stage.metrics_log)
        if records:
            try:
                path = plot_loss_curves(records, stage.loss_png, default_unit="value")
            except (ValueError, OSError, RuntimeError) as exc:
                warnings.warn(f"{name} loss curves not drawn: {exc}", stacklevel=2)
                path = None
            if path is not None:
                plots.append(_img(run_dir, path, f"{name}: train (blue) and validation (red)",
                                  cls="plot"))
    table = _table(["stage", "model", "parameters", "steps", "time", "validation"], rows)
    return table + "\n".join(plots)


def _comparison(run_dir: Path, info: RunInfo | None) -> str | None:
    """A task run's comparison figure and table (``genvision TASK compare``), if written."""
    if info is None or not info.is_task:
        return None
    files = RunLayout(run_dir).compare_files()
    parts = []
    if files["figure"].is_file():
        parts.append(_img(run_dir, files["figure"], "methods side by side"))
    if files["table"].is_file():
        text = files["table"].read_text(encoding="utf-8", errors="replace")
        parts.append(f"<pre>{_e(text)}</pre>")
    if not parts:
        return _note(f"No comparison yet: run `genvision {info.task} compare {run_dir}`.")
    return "\n".join(parts)


def _metrics(evaluations: list[dict] | None) -> str:
    if evaluations is None:
        return _note("Not evaluated yet (no metrics.json): run `genvision evaluate` on this run.")
    tables = evaluation_tables(evaluations)
    return tables if tables is not None else _note("metrics.json holds no numeric results.")


def _configs(run: dict | None) -> str | None:
    if run is None:
        return None
    blocks = []
    for key, title in _CONFIG_BLOCKS:
        if key in run:
            rows = [[_e(k), _e(v)] for k, v in fmt.flatten(run[key])]
            blocks.append(f"<div><h3>{title}</h3>{_table(['key', 'value'], rows)}</div>")
    other = {k: v for k, v in run.items() if k not in dict(_CONFIG_BLOCKS)}
    if other:
        rows = [[_e(k), _e(v)] for k, v in fmt.flatten(other)]
        blocks.append(f"<div><h3>run</h3>{_table(['key', 'value'], rows)}</div>")
    return f'<div class="configs">{"".join(blocks)}</div>' if blocks else None
