"""One static HTML page per run: ``runs/NAME/report.html``.

The page shows the run's title, a summary, the warnings a model raised while training
(e.g. a GAN's collapse), the sample grid and other figures, the grids written during
training with a fixed-latent progress strip (``samples/progress_strip.png``: the first row
of each grid, one row per step), the loss curves (``loss.png``, drawn by
:mod:`genvision.report.plots`), every evaluation number next
to its protocol (data, split, n, binarisation, likelihood kind / estimator / k) and the
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
from .plots import plot_loss_curves
from .run import (
    figure_captions,
    figure_files,
    grid_first_rows,
    model_family,
    progress_grids,
    read_metrics,
    summarise,
    training_warnings,
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
figure{margin:0 0 14px;display:inline-block;vertical-align:top;background:#fff;
 border:1px solid #dde1e6;border-radius:6px;padding:8px}
figure img{display:block;max-width:100%;height:auto;image-rendering:pixelated}
figure.plot img{image-rendering:auto}
figcaption{font-size:13px;color:#59636e;margin-top:4px;text-align:center}
.strip{display:flex;flex-wrap:wrap;gap:8px}.strip figure{width:150px}
.strip img{width:150px}
table{border-collapse:collapse;background:#fff;font-size:13.5px;margin-bottom:8px}
th,td{border:1px solid #dde1e6;padding:4px 9px;text-align:left;vertical-align:top}
th{background:#eef1f4;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.grp,td.proto{border-top:2px solid #aab3bd}
td.proto{font-size:12.5px;color:#39424c;max-width:380px}
.pk{color:#6a737d}
.configs{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:14px}
.configs table{width:100%}.configs td:first-child{color:#39424c;white-space:nowrap}
.configs td{word-break:break-word}
.note{color:#8a5a00;background:#fff8e6;border:1px solid #f0d89a;border-radius:4px;
 padding:6px 10px;display:inline-block;font-size:13.5px}
footer{margin-top:36px;font-size:12px;color:#6a737d}
"""


def write_report(run_dir: str | os.PathLike) -> Path:
    """Write ``run_dir/report.html`` (and ``run_dir/loss.png``) atomically; return its path.

    Raises:
        UserError: when ``run_dir`` is not a directory. Any other missing or unreadable
            piece (run.json, metrics, figures) becomes a note on the page.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run directory {run_dir} does not exist",
                        "pass the folder a training run wrote, e.g. runs/NAME")
    out = RunLayout(run_dir).report_html
    atomic_write_text(out, render_report(run_dir))
    return out


def render_report(run_dir: Path) -> str:
    """The report page of ``run_dir`` as an HTML string (writes ``loss.png`` as a side effect)."""
    layout = RunLayout(run_dir)
    info = _read_info(run_dir)
    run = info.to_dict() if info is not None else None
    records = read_metrics(layout.metrics_log)
    model = run.get("model") if run else None
    model = model if isinstance(model, str) else None
    family = model_family(model, run)
    sections = [
        ("summary", "Summary", _summary(run, records)),
        ("warnings", "Training warnings", _warnings(records)),
        ("stages", "Stages", _stages(run_dir, info)),
        ("comparison", "Comparison", _comparison(run_dir, info)),
        ("samples", "Samples", None if info and info.is_task else _samples(run_dir)),
        ("figures", "Figures", _figures(run_dir, model)),
        ("progress", "Samples during training", _progress(run_dir, run)),
        ("loss", "Loss curves", _loss(run_dir, records, family)),
        ("metrics", "Evaluation", _metrics(run_dir)),
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
    """A ``<figure>`` for ``path`` with a relative src, or a note when it cannot be read."""
    try:
        with Image.open(path) as im:
            width, height = im.size
    except (OSError, UnidentifiedImageError, ValueError):
        return _note(f"{path.relative_to(run_dir).as_posix()} could not be read as an image.")
    src = quote(path.relative_to(run_dir).as_posix())
    cls_attr = f' class="{cls}"' if cls else ""
    return (f'<figure{cls_attr}><img src="{src}" width="{width}" height="{height}" '
            f'alt="{_e(caption)}"><figcaption>{_e(caption)}</figcaption></figure>')


def _table(header: list[str], rows: list[list[str]]) -> str:
    """A table from already-escaped cell HTML (cells may carry ``<td ...>`` themselves)."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in r)
                   + "</tr>\n" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}</tbody></table>"


# ----- sections (each returns HTML, or None to leave the section out) ---------------------
def _summary(run: dict | None, records: list[dict]) -> str:
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
    for split in ("train", "val"):
        if f"{split}_loss" in stats:
            cards.append((f"last {split} loss", fmt.fmt_number(stats[f"{split}_loss"])))
    html = "".join(f'<div class="card"><div class="k">{_e(k)}</div><div class="v">{_e(v)}</div>'
                   f"</div>" for k, v in cards)
    html = f'<div class="cards">{html}</div>' if cards else ""
    if not records:
        html += _note("Training is logged per stage (below)." if run and run.get("task")
                      else "No training metrics logged (metrics.jsonl missing or empty).")
    return html


def _samples(run_dir: Path) -> str:
    path = RunLayout(run_dir).samples_png
    if not path.is_file():
        return _note("No sample grid (samples.png) in this run.")
    return _img(run_dir, path, "samples from the final model")


def _figures(run_dir: Path, model: str | None) -> str | None:
    figs = figure_files(run_dir, exclude=NOT_FIGURES)
    if not figs:
        return None
    captions = figure_captions(model)
    return "\n".join(_img(run_dir, p, captions.get(p.stem, p.stem.replace("_", " ")))
                     for p in figs)


def _warnings(records: list[dict]) -> str | None:
    found = training_warnings(records)
    if not found:
        return None
    rows = [[_e("" if step is None else f"{step:,}"), _e(msg)] for step, msg in found]
    return _note(f"{len(found)} warning(s) raised while training; they may explain the "
                 "samples below.") + _table(["step", "warning"], rows)


def _progress(run_dir: Path, run: dict | None = None) -> str | None:
    grids = progress_grids(run_dir)
    if not grids:
        return None
    if len(grids) > MAX_PROGRESS:
        idx = {round(i * (len(grids) - 1) / (MAX_PROGRESS - 1)) for i in range(MAX_PROGRESS)}
        grids = [g for i, g in enumerate(grids) if i in idx]
    figs = "\n".join(_img(run_dir, p, f"step {step:,}") for step, p in grids)
    return _strip(run_dir, run, grids) + f'<div class="strip">{figs}</div>'


def _strip(run_dir: Path, run: dict | None, grids: list[tuple[int, Path]]) -> str:
    """The fixed-latent progress strip: one row per shown step, one column per latent."""
    config = run.get("model_config") if run else None
    size = config.get("image_size") if isinstance(config, dict) else None
    if len(grids) < 2 or size is None:
        return ""
    arr = grid_first_rows([p for _, p in grids], size)
    if arr is None:
        return ""
    path = RunLayout(run_dir).progress_strip
    save_image_array(arr, path, scale=max(1, min(4, 480 // arr.shape[1])))
    steps = ", ".join(f"{s:,}" for s, _ in grids)
    return _img(run_dir, path, f"the same latents at steps {steps} (top to bottom)")


def _loss(run_dir: Path, records: list[dict], family: str | None) -> str:
    unit = "value" if family in _NON_LIKELIHOOD_FAMILIES else "nats/image"
    try:
        path = plot_loss_curves(records, RunLayout(run_dir).loss_png, default_unit=unit)
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


def _metrics(run_dir: Path) -> str:
    evaluations = _load_evaluations(run_dir)
    if evaluations is None:
        return _note("Not evaluated yet (no metrics.json): run `genvision evaluate` on this run.")
    rows: list[list[str]] = []
    for ev in evaluations:
        results = fmt.result_rows(ev)
        if not results:
            continue
        proto = "<br>".join(f'<span class="pk">{_e(k)}:</span> {_e(v)}'
                            for k, v in fmt.protocol_parts(ev))
        for i, (label, value, unit) in enumerate(results):
            cell = f'<td class="proto" rowspan="{len(results)}">{proto}</td>' if i == 0 else ""
            grp = " grp" if i == 0 else ""  # a rule above each evaluation's first row
            row = [f'<td class="{grp}">{_e(label)}</td>', f'<td class="num{grp}">{_e(value)}</td>',
                   f'<td class="{grp}">{_e(unit)}</td>']
            rows.append(row + ([cell] if cell else []))
    if not rows:
        return _note("metrics.json holds no numeric results.")
    return _table(["metric", "value", "unit", "protocol (applies to the rows beside it)"], rows)


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
