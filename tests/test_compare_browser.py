"""Render a comparison board in headless Chromium: the table is there and the embedded
sample grids decode and show, from a folder away from the runs; at 1,400 px the page does
not overflow, the table scrolls inside its box with the run column pinned, and every
report link resolves to a file.

Skipped when Chromium is not installed (CI installs it: ``apt-get install chromium``).
"""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
from PIL import Image

from browser import chromium, count_colour, run_chromium
from genvision.report.board import write_board
from genvision.report.compare import collect
from test_compare import make_run, nll_entry, samples_entry

MAGENTA = (255, 0, 255)  # run a's grid colour: appears nowhere else on the page
LIME = (0, 255, 0)  # run b's grid colour


def test_board_renders_in_chromium(tmp_path):
    exe = chromium()
    runs = tmp_path / "runs"
    a = make_run(runs, "vae-run", evaluations=[nll_entry(84.7431), samples_entry(3.2)],
                 samples=MAGENTA)
    b = make_run(runs, "gan-run", model="dcgan", likelihood_kind="none",
                 evaluations=[samples_entry(2.5)], samples=LIME)
    # the page is written elsewhere and the runs are moved away: the grids are embedded
    page = write_board(collect([a, b]), tmp_path / "boards" / "board.html")
    shutil.rmtree(runs)
    url = page.resolve().as_uri()

    dom = run_chromium(exe, tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count('<th class="run" scope="row">') == 2  # two runs
    assert "vae-run" in dom.stdout and "gan-run" in dom.stdout
    assert '84.74<span class="q">± 0.90 · IWAE-100</span>' in dom.stdout and "2.50" in dom.stdout
    assert len(re.findall(r'<img src="data:image/png;base64,[^"]+" width="20" height="12" '
                          r'alt="samples of', dom.stdout)) == 2
    assert dom.stdout.count('<figure class="plot"><img src="data:image/png;base64,') == 3

    shot = tmp_path / "board.png"
    res = run_chromium(exe, tmp_path, f"--screenshot={shot}", "--window-size=1400,4000", url)
    assert shot.is_file(), res.stderr[-2000:]
    with Image.open(shot) as im:
        img = np.asarray(im.convert("RGB"))
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 50, "screenshot is blank"
    # each 20x12 grid is shown 260 px wide (about 156 px high): both decoded and drawn
    assert count_colour(img, MAGENTA) > 20000, "run a's samples.png did not show"
    assert count_colour(img, LIME) > 20000, "run b's samples.png did not show"


#: appended to a copy of the board (the board itself has no script): scroll the table to
#: its right end, then record where the pinned column is and what every link resolves to
_MEASURE = """<script>
window.addEventListener('load', () => {
  const wrap = document.querySelector('.wide'), cell = document.querySelector('tbody .run');
  const before = cell.getBoundingClientRect().left;
  wrap.scrollLeft = wrap.scrollWidth;
  const r = cell.getBoundingClientRect(), w = wrap.getBoundingClientRect();
  const hit = document.elementFromPoint(r.left + 6, r.top + r.height / 2);
  document.body.setAttribute('data-result', JSON.stringify({
    inner: window.innerWidth, page: document.documentElement.scrollWidth,
    scrollWidth: wrap.scrollWidth, clientWidth: wrap.clientWidth, scrolled: wrap.scrollLeft,
    before: before, left: r.left, wrapLeft: w.left, hitRun: !!(hit && hit.closest('.run')),
    links: [...document.querySelectorAll('a[href]')].map(a => a.href)}));
});
</script>"""


def _measure(exe: str, tmp: Path, page: Path, width: int) -> dict:
    probe = page.with_name(f"probe-{width}.html")
    probe.write_text(page.read_text().replace("</body>", _MEASURE + "</body>"))
    dom = run_chromium(exe, tmp, "--dump-dom", f"--window-size={width},1000",
                       probe.resolve().as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = re.search(r'data-result="([^"]*)"', dom.stdout)
    assert found, "the measuring script did not run"
    return json.loads(html.unescape(found.group(1)))


def test_board_table_fits_or_scrolls_with_a_pinned_run_column(tmp_path):
    exe = chromium()
    runs = tmp_path / "runs"
    full = samples_entry(3.2, cas_accuracy=0.9, memorisation_score=0.01, near_copy_share=0.0,
                         duplicate_share=0.0)
    made = [make_run(runs, f"run-{i}", evaluations=[nll_entry(80.0 + i), full])
            for i in range(3)]
    for run in made:
        (run / "report.html").write_text("<!DOCTYPE html><title>report</title>")
    page = write_board(collect(made), tmp_path / "boards" / "board.html")
    wide = _measure(exe, tmp_path, page, 1400)
    assert wide["inner"] == 1400
    assert wide["page"] <= wide["inner"], "the page itself scrolls sideways at 1,400 px"
    if wide["scrollWidth"] > wide["clientWidth"]:  # the table scrolls inside its box
        assert wide["left"] == pytest.approx(wide["wrapLeft"], abs=2) and wide["hitRun"]
    narrow = _measure(exe, tmp_path, page, 700)
    assert narrow["page"] <= narrow["inner"]
    assert narrow["scrollWidth"] > narrow["clientWidth"] and narrow["scrolled"] > 100
    # scrolled to the far right, the run column is still where it was, and on top
    assert narrow["left"] == pytest.approx(narrow["before"], abs=2)
    assert narrow["left"] == pytest.approx(narrow["wrapLeft"], abs=2) and narrow["hitRun"]
    reports = [u for u in wide["links"] if "#" not in u]
    assert len(reports) == 6  # each run's name in the table and under its grid
    for url in reports:
        target = Path(unquote(urlparse(url).path))
        assert target.is_file() and target.name == "report.html", url
