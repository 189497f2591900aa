"""Render a comparison board in headless Chromium: the table is there and the embedded
sample grids decode and show, from a folder away from the runs.

Skipped when Chromium is not installed (CI installs it: ``apt-get install chromium``).
"""

from __future__ import annotations

import shutil

import numpy as np
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
    assert dom.stdout.count("<tr>") == 3  # header + two runs
    assert "vae-run" in dom.stdout and "gan-run" in dom.stdout
    assert "84.74 ± 0.90 (IWAE-100)" in dom.stdout and "2.50" in dom.stdout
    assert dom.stdout.count('<img src="data:image/png;base64,') == 2

    shot = tmp_path / "board.png"
    res = run_chromium(exe, tmp_path, f"--screenshot={shot}", "--window-size=1400,2000", url)
    assert shot.is_file(), res.stderr[-2000:]
    with Image.open(shot) as im:
        img = np.asarray(im.convert("RGB"))
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 50, "screenshot is blank"
    # each 20x12 grid is shown 260 px wide (about 156 px high): both decoded and drawn
    assert count_colour(img, MAGENTA) > 20000, "run a's samples.png did not show"
    assert count_colour(img, LIME) > 20000, "run b's samples.png did not show"
