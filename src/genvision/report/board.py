"""The comparison board: ``genvision compare RUN1 RUN2 ... -o board.html``.

One static page holding the table of :func:`genvision.report.compare.collect` (training cost, NLL
and sample metrics per run), the protocol each column group was measured under (and the
``--mixed`` footnotes), and the runs' ``samples.png`` grids side by side, captioned by
run and model. Unlike a run's ``report.html``, the board usually lives away from the runs
it shows, so the grids are embedded as ``data:`` URIs: the page is one file that works
wherever it is written or copied. No JavaScript, no external resource; every string read
from a run is HTML-escaped. A missing or unreadable grid becomes a short note.
"""

from __future__ import annotations

import base64
import os
from html import escape
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from ..storage import atomic_write_text
from .compare_table import Board, Row
from .html import _CSS, _table

#: grids larger than this are not embedded (a note instead): a board should stay light
MAX_EMBED_BYTES = 8 * 1024 * 1024
#: displayed width of each grid, so runs are seen at one scale whatever their grid size
GRID_WIDTH_PX = 260

_BOARD_CSS = f"""
main{{max-width:1400px}}
.wide{{overflow-x:auto}}
.wide table{{white-space:nowrap}}
ul.proto{{margin:6px 0;padding-left:20px;font-size:13.5px;color:#39424c}}
p.foot{{margin:2px 0;font-size:13px;color:#39424c}}
.grids{{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}}
.grids figure{{margin:0;width:{GRID_WIDTH_PX}px}}
.grids img{{width:{GRID_WIDTH_PX}px;height:auto}}
.grids figcaption{{word-break:break-all}}
"""


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


def _grid(row: Row) -> str:
    """A captioned figure for one run's sample grid, or a captioned note."""
    caption = f"{row.name} · {row.model or 'model unknown'}"
    if row.samples_png is None:
        found: tuple[str, int, int] | str = "no sample grid (samples.png) in this run"
    else:
        found = _data_uri(row.samples_png)
    if isinstance(found, str):
        return f"<figure>{_note(found)}<figcaption>{_e(caption)}</figcaption></figure>"
    uri, width, height = found
    return (f'<figure><img src="{uri}" width="{width}" height="{height}" '
            f'alt="samples of {_e(caption)}"><figcaption>{_e(caption)}</figcaption></figure>')


def _table_html(board: Board) -> str:
    rows = [[f'<td class="num">{_e(cell)}</td>' if col.numeric else _e(cell)
             for col, cell in zip(board.columns, cells, strict=True)] for cells in board.table()]
    return f'<div class="wide">{_table([c.label for c in board.columns], rows)}</div>'


def render_board_html(board: Board) -> str:
    """The board page as an HTML string (self-contained: CSS inline, grids as data URIs)."""
    names = ", ".join(row.name for row in board.rows)
    notes = "".join(f"<li>{_e(n)}</li>" for n in board.notes)
    notes_html = f'<ul class="proto">{notes}</ul>' if notes else ""
    foot = "".join(f'<p class="foot">{_e(f)}</p>' for f in board.footnotes)
    grids = "\n".join(_grid(row) for row in board.rows)
    sub = f"{len(board.rows)} run{'s' if len(board.rows) != 1 else ''} trained on " \
          f"<b>{_e(board.dataset)}</b>"
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">\n'
            f"<title>{_e(names)} · genvision compare</title>\n"
            f"<style>{_CSS}{_BOARD_CSS}</style></head>\n<body><main>\n"
            f'<header><h1>Comparison</h1><p class="sub">{sub}</p></header>\n'
            f'<section id="table"><h2>Results</h2>\n{_table_html(board)}\n'
            f"<h3>Protocols</h3>{notes_html}{foot}</section>\n"
            f'<section id="samples"><h2>Samples</h2>\n<div class="grids">{grids}</div>'
            f"</section>\n<footer>Static page written by `genvision compare`; the sample grids "
            f"are embedded, so it can be moved anywhere.</footer>\n</main></body></html>\n")


def write_board(board: Board, path: str | os.PathLike) -> Path:
    """Write the board page to ``path`` atomically (readers see the old page or the new
    one, never half of one); returns the path."""
    path = Path(path)
    atomic_write_text(path, render_board_html(board))
    return path
