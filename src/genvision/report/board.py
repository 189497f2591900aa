"""The comparison board: ``genvision compare RUN1 RUN2 ... -o board.html``.

One static page: the table of :func:`genvision.report.compare.collect` (each run linked to
its ``report.html``, the first column pinned while the table scrolls sideways, units and
better/worse arrows in the headers, the best number of each column highlighted among
numbers of one protocol, protocol badges explained below the table), then charts that read
without the table (:mod:`genvision.report.board_charts`: training curves, sample quality
vs likelihood, cost), then the runs' ``samples.png`` grids captioned by run, model and
family. The board usually lives away from the runs it shows, so charts and grids are
embedded as ``data:`` URIs and the report links are relative to where the page is
written: the page is one file, and its links work as long as the runs stay where they
are relative to it. No JavaScript, no external resource; every string read from a run is
HTML-escaped. A missing or unreadable grid becomes a short note.
"""

from __future__ import annotations

import base64
import os
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from PIL import Image, UnidentifiedImageError

from ..runs.layout import RunLayout
from ..storage import atomic_write_text
from . import board_charts as charts
from .compare_table import GROUP_LABELS, MISSING, Board, Column, Marker, Row
from .html import _CSS
from .run import read_metrics

#: grids larger than this are not embedded (a note instead): a board should stay light
MAX_EMBED_BYTES = 8 * 1024 * 1024
#: displayed width of each grid, so runs are seen at one scale whatever their grid size
GRID_WIDTH_PX = 260

_BOARD_CSS = f"""
main{{max-width:1400px}}
header nav a{{margin-right:14px}}
.wide{{overflow-x:auto;max-width:100%;border:1px solid #dde1e6;border-radius:4px;
 background:#fff;margin-bottom:8px}}
table.board{{border-collapse:separate;border-spacing:0;margin:0;font-size:12.5px}}
table.board th,table.board td{{border:0;border-right:1px solid #e6e9ed;
 border-bottom:1px solid #e6e9ed;padding:4px 6px}}
table.board thead th{{background:#eef1f4;vertical-align:bottom;text-align:right;
 font-weight:600;line-height:1.25}}
table.board thead tr.grp th{{text-align:center;vertical-align:middle;font-size:12px;
 color:#39424c;border-bottom:1px solid #c9d0d8}}
table.board .unit{{display:block;font-weight:400;font-size:11.5px;color:#6a737d;
 white-space:nowrap}}
table.board .arrow{{color:#2a5db0;font-size:14px}}
table.board .run{{position:sticky;left:0;z-index:2;background:#fff;text-align:left;
 min-width:140px;max-width:220px;box-shadow:inset -2px 0 0 #c9d0d8;font-weight:600}}
table.board thead .run{{background:#eef1f4;z-index:3}}
table.board .run .what{{display:block;font-weight:400;font-size:12px;color:#59636e}}
table.board .run .none{{display:block;font-weight:400;font-size:11.5px;color:#8a5a00}}
table.board td{{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}}
table.board td .q{{display:block;font-size:11.5px;color:#6a737d}}
table.board td.best{{background:#def2e1;font-weight:700}}
table.board td.miss{{color:#9aa3ad}}
sup.mk{{font-size:9.5px;font-weight:700;color:#fff;background:#b26a00;border-radius:3px;
 padding:0 2px;margin-left:2px}}
sup.mk.main{{background:#59636e}}
p.key{{font-size:12.5px;color:#59636e;margin:4px 0 10px}}
span.best{{background:#def2e1;font-weight:700;padding:0 4px}}
ul.proto{{margin:6px 0;padding-left:20px;font-size:13.5px;color:#39424c}}
ul.proto li{{margin:4px 0}}
ul.proto .fix{{display:block;color:#1d232b}}
.charts figure{{display:block;max-width:100%}}
.grids{{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}}
.grids figure{{margin:0;width:{GRID_WIDTH_PX}px}}
.grids img{{width:{GRID_WIDTH_PX}px;height:auto}}
.grids figcaption{{word-break:break-word}}
"""
#: the header row above the column headers: column key -> the heading of its group
_HEADINGS = {"params": "training", "train_time": "training", "steps": "training",
             "nll": "likelihood", "bpd": "likelihood", "memorisation": "memorisation",
             "near_copies": "memorisation", "duplicates": "memorisation",
             "speed": "sampling"}
_GROUP_HEADINGS = {"likelihood": "likelihood", "samples": "sample quality",
                   "image_to_image": "image-to-image"}


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def _data_uri(path: Path) -> tuple[str, int, int] | str:
    """``(data URI, width, height)`` of an image file, or the reason it cannot be shown."""
    try:
        if path.stat().st_size > MAX_EMBED_BYTES:
            return f"{path.name} is larger than {MAX_EMBED_BYTES // 2**20} MiB, not embedded"
        raw = path.read_bytes()
        with Image.open(path) as im:
            im.verify()  # a truncated or corrupt file must not become a broken image
            width, height, mime = im.width, im.height, Image.MIME.get(im.format or "")
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
        return f"{path.name} could not be read as an image"
    if mime is None:
        return f"{path.name} is not in a format browsers show"
    return f"data:{mime};base64,{base64.b64encode(raw).decode('ascii')}", width, height


def _link(target: Path, base: Path | None) -> str:
    """``href`` of ``target`` from a page in ``base``: relative (the board and the runs
    may move together), or a ``file:`` URI when no relative path exists (another drive)
    or the page's folder is not known."""
    if base is not None:
        try:
            return quote(Path(os.path.relpath(target.resolve(), base.resolve())).as_posix())
        except ValueError:
            pass
    return target.resolve().as_uri()


def _what(row: Row) -> str:
    """``model · family`` (· class-conditional) of a run, for captions."""
    parts = [row.model or "model unknown", row.family or "family unknown"]
    return " · ".join(parts + (["class-conditional"] if row.conditional else []))


def _run_cell(row: Row, base: Path | None, tag: str = "th") -> str:
    """The pinned first cell: the run's name linked to its report, model and family."""
    name = _e(row.name)
    if row.report is not None:
        name = f'<a href="{_link(row.report, base)}" title="open this run\'s report">{name}</a>'
        extra = ""
    else:
        extra = f'<span class="none">no report.html: `genvision report {_e(row.path)}`</span>'
    return (f'<{tag} class="run" scope="row">{name}<span class="what">{_e(_what(row))}</span>'
            f"{extra}</{tag}>")


def best_cells(board: Board) -> set[tuple[int, str]]:
    """(row index, column key) of the best number of each scored column, among numbers of
    one protocol (one marker); none where fewer than two numbers or all equal."""
    found: set[tuple[int, str]] = set()
    for col in board.columns:
        if col.better is None:
            continue
        by_mark: dict[str | None, list[tuple[int, float]]] = {}
        for i, row in enumerate(board.rows):
            if col.key in row.values:
                by_mark.setdefault(row.marks.get(col.key), []).append((i, row.values[col.key]))
        for pairs in by_mark.values():
            values = [v for _, v in pairs]
            if len(values) < 2 or min(values) == max(values):
                continue
            best = min(values) if col.better == "lower" else max(values)
            found |= {(i, col.key) for i, v in pairs if v == best}
    return found


def _badge(row: Row, key: str, markers: dict[str, Marker]) -> str:
    mark = row.marks.get(key)
    if mark is None:
        return ""
    found = markers.get(mark)
    title = (f"not comparable with the main protocol: {found.why}" if found and found.why
             else "the protocol most runs share")
    cls = "mk" if found and found.why else "mk main"
    return f'<sup class="{cls}" title="{_e(title)}">{_e(mark.strip("[]"))}</sup>'


def _cell(row: Row, col: Column, best: bool, markers: dict[str, Marker]) -> str:
    if col.key not in row.cells:
        return f'<td class="miss" title="no number for this run">{MISSING}</td>'
    # the error bar goes under the number with the qualifier: narrower columns
    text, _, err = row.cells[col.key].partition(" ± ")
    extra = row.details.get(col.key)
    if col.key == "train_time" and "steps" in row.cells:
        extra = f"{row.cells['steps']} steps"
    detail = " · ".join(d for d in (f"± {err}" if err else "", extra) if d)
    q = f'<span class="q">{_e(detail)}</span>' if detail else ""
    cls = ' class="best" title="best in this column"' if best else ""
    return f"<td{cls}>{_e(text)}{_badge(row, col.key, markers)}{q}</td>"


def _heading(col: Column) -> str:
    return _HEADINGS.get(col.key, _GROUP_HEADINGS.get(col.group, col.group))


def _header(columns: list[Column]) -> str:
    """Two header rows: column groups (colspans), then each column with unit and arrow."""
    groups: list[list[Any]] = []
    for col in columns:
        if groups and groups[-1][0] == _heading(col):
            groups[-1][1] += 1
        else:
            groups.append([_heading(col), 1])
    top = "".join(f'<th colspan="{n}">{_e(h)}</th>' for h, n in groups)
    cells = []
    for col in columns:
        label = col.label.split(" (")[0]  # the unit goes on its own line
        arrow = (f' <span class="arrow" title="{col.better} is better">{col.arrow}</span>'
                 if col.arrow else "")
        text = "h:min:s, steps" if col.key == "train_time" and "steps" not in [
            c.key for c in columns] else col.unit
        unit = f'<span class="unit">{_e(text)}</span>' if text else ""
        cells.append(f"<th>{_e(label)}{arrow}{unit}</th>")
    return (f'<thead><tr class="grp"><th class="run" rowspan="2">run<span class="what">'
            f'model · family</span></th>{top}</tr>\n<tr>{"".join(cells)}</tr></thead>')


def _table_html(board: Board, base: Path | None) -> str:
    # model and family go under the run's name, steps under the training time: the
    # table must fit 1,400 px in the common case
    merged = ("run", "model", "family", "steps") if any(
        c.key == "train_time" for c in board.columns) else ("run", "model", "family")
    columns = [c for c in board.columns if c.key not in merged]
    best = best_cells(board)
    markers = {m.marker: m for m in board.markers}
    body = "".join(
        "<tr>" + _run_cell(row, base)
        + "".join(_cell(row, c, (i, c.key) in best, markers) for c in columns) + "</tr>\n"
        for i, row in enumerate(board.rows))
    return (f'<div class="wide"><table class="board">{_header(columns)}<tbody>\n{body}'
            f"</tbody></table></div>")


def _protocols_html(board: Board) -> str:
    """Each group's protocol in words; under several protocols, every badge explained:
    its runs and protocol, how it differs from the main one, and the fix."""
    main = {m.group: m.marker for m in board.markers if not m.why}
    items = [f"<li>{_e(n)}</li>" for n in board.notes]
    for m in board.markers:
        cls = "mk" if m.why else "mk main"
        text = (f'<sup class="{cls}">{_e(m.marker.strip("[]"))}</sup> '
                f"<b>{_e(GROUP_LABELS[m.group])}</b> of {_e(', '.join(m.runs))}: {_e(m.protocol)}")
        if m.why:
            fix = f"To compare: {_e(m.fix)}" if m.fix else "No command makes them one protocol."
            text += (f". <b>Not comparable with {_e(main.get(m.group, '?'))}</b>: {_e(m.why)}"
                     f'<span class="fix">{fix}</span>')
        items.append(f"<li>{text}</li>")
    return f'<ul class="proto">{"".join(items)}</ul>' if items else ""


def _png_figure(png: bytes | None, alt: str, caption: str, missing: str) -> str:
    if png is None:
        return _note(missing)
    uri = f"data:image/png;base64,{base64.b64encode(png).decode('ascii')}"
    return (f'<figure class="plot"><img src="{uri}" alt="{_e(alt)}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _charts_html(board: Board) -> str:
    rows = board.rows
    records = [read_metrics(RunLayout(r.path).metrics_log) for r in rows]
    main = {m.marker for m in board.markers if not m.why}
    speed_note = "devices differ: not comparable" if any("speed" in r.details for r in rows) else ""
    return "\n".join((
        _png_figure(charts.training_curves(rows, records), "training curves of every run",
                    "Training loss of every run against steps and wall-clock minutes, one "
                    "colour per run; likelihood models (nats/image) and GANs or denoisers "
                    "(no common unit) in separate panels.",
                    "No training curves: no run has a metrics.jsonl with a training loss."),
        _png_figure(charts.quality_vs_likelihood(rows, main),
                    "FID against NLL in bits/dim, one point per run",
                    "FID against NLL (bits/dim), one point per run, marker by family; runs "
                    "without a likelihood (GANs) at their FID on the right. Hollow points "
                    "were measured under another protocol (a badge in the table).",
                    "No quality-vs-likelihood chart: no run has an FID (`genvision evaluate "
                    "RUN` computes it)."),
        _png_figure(charts.cost(rows, speed_note), "training time and sampling speed per run",
                    "What each run cost: training time, and images per second drawn during "
                    "`genvision evaluate` (log scale).",
                    "No cost chart: no run recorded its training time or sampling speed.")))


def _grid(row: Row, base: Path | None) -> str:
    """A captioned figure for one run's sample grid, or a captioned note."""
    label = f"{row.name} · {_what(row)}"
    name = (f'<a href="{_link(row.report, base)}">{_e(row.name)}</a>' if row.report
            else _e(row.name))
    caption = f"<figcaption>{name} · {_e(_what(row))}</figcaption>"
    if row.samples_png is None:
        found: tuple[str, int, int] | str = "no sample grid (samples.png) in this run"
    else:
        found = _data_uri(row.samples_png)
    if isinstance(found, str):
        return f"<figure>{_note(found)}{caption}</figure>"
    uri, width, height = found
    return (f'<figure><img src="{uri}" width="{width}" height="{height}" '
            f'alt="samples of {_e(label)}">{caption}</figure>')


def render_board_html(board: Board, base: str | os.PathLike | None = None) -> str:
    """The board page as an HTML string (self-contained: CSS inline, charts and grids as
    data URIs); ``base`` is the folder the page will be written to, which report links
    are made relative to (``None``: absolute ``file:`` links)."""
    where = Path(base) if base is not None else None
    names = ", ".join(row.name for row in board.rows)
    grids = "\n".join(_grid(row, where) for row in board.rows)
    sub = f"{len(board.rows)} run{'s' if len(board.rows) != 1 else ''} trained on " \
          f"<b>{_e(board.dataset)}</b>"
    key = ('<p class="key">↓ lower is better, ↑ higher is better; <span class="best">'
           "best</span> number of each column among numbers of one protocol; run names link "
           "to their reports")
    key += "; lettered badges mark numbers measured under different protocols (below)</p>" \
        if board.markers else "</p>"
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">\n'
            f"<title>{_e(names)} · genvision compare</title>\n"
            f"<style>{_CSS}{_BOARD_CSS}</style></head>\n<body><main>\n"
            f'<header><h1>Comparison</h1><p class="sub">{sub}</p><nav><a href="#table">'
            f'results</a><a href="#protocols">protocols</a><a href="#charts">charts</a>'
            f'<a href="#samples">samples</a></nav></header>\n'
            f'<section id="table"><h2>Results</h2>\n{key}\n{_table_html(board, where)}\n'
            f'<h3 id="protocols">Protocols</h3>{_protocols_html(board)}</section>\n'
            f'<section id="charts" class="charts"><h2>Charts</h2>\n{_charts_html(board)}'
            f"</section>\n"
            f'<section id="samples"><h2>Samples</h2>\n<div class="grids">{grids}</div>'
            f"</section>\n<footer>Static page written by `genvision compare`; charts and "
            f"sample grids are embedded, report links are relative to this page."
            f"</footer>\n</main></body></html>\n")


def write_board(board: Board, path: str | os.PathLike) -> Path:
    """Write the board page to ``path`` atomically (readers see the old page or the new
    one, never half of one), its report links relative to ``path``'s folder."""
    path = Path(path)
    atomic_write_text(path, render_board_html(board, path.parent))
    return path
