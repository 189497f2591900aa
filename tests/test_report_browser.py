"""Render a report in headless Chromium: the page loads from disk and its images show.

Skipped when Chromium is not installed (CI installs it: ``apt-get install chromium``).
"""

from __future__ import annotations

import json
import re
from urllib.parse import unquote

import numpy as np
import torch
from PIL import Image

from browser import chromium, count_colour, run_chromium
from genvision.report import save_grid, write_report
from test_report import EVALUATION, make_run
from test_report_runpage import SAMPLES

MAGENTA = (255, 0, 255)  # the sample grid's colour: appears nowhere else on the page
CURVE_BLUE = (31, 119, 180)  # the train curve in loss.png


def test_report_renders_in_chromium(tmp_path):
    exe = chromium()
    run = make_run(tmp_path / "runs")
    save_grid(torch.tensor([1.0, 0.0, 1.0]).view(1, 3, 1, 1).expand(16, 3, 28, 28),
              run / "samples.png")
    page = write_report(run)
    url = page.resolve().as_uri()

    dom = run_chromium(exe, tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<table" in dom.stdout and "IWAE-1000" in dom.stdout and "vae-run" in dom.stdout

    shot = tmp_path / "report.png"
    res = run_chromium(exe, tmp_path, f"--screenshot={shot}", "--window-size=1200,4000", url)
    assert shot.is_file(), res.stderr[-2000:]
    with Image.open(shot) as im:
        img = np.asarray(im.convert("RGB"))
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 50, "screenshot is blank"
    # the sample grid (16 magenta 28x28 tiles, upscaled) and the loss curves really loaded
    assert count_colour(img, MAGENTA) > 20000, "samples.png did not load"
    assert count_colour(img, CURVE_BLUE, tol=30) > 100, "loss.png did not load"


def test_report_evaluation_and_clickable_images_in_chromium(tmp_path):
    """In the DOM Chromium builds: the warnings come first, each evaluation table starts
    with its headline metric and carries better/worse arrows, and every image is a link to
    its full-size PNG, which exists."""
    exe = chromium()
    run = make_run(tmp_path / "runs")
    (run / "metrics.json").write_text(json.dumps({"evaluations": [EVALUATION, SAMPLES]}))
    url = write_report(run).resolve().as_uri()
    dom = run_chromium(exe, tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert re.findall(r'<section id="([a-z]+)"', html)[0] == "warnings"
    assert "mode collapse" in html
    firsts = re.findall(r'<table class="evals"[^>]*><thead><tr><th data-metric="([^"]+)"', html)
    assert firsts == ["nll_nats", "fid"]
    assert html.count('class="arrow"') >= 6 and "↓" in html and "↑" in html
    links = re.findall(r'<a href="([^"]+)" title="open full size"><img src="([^"]+)"', html)
    assert ("samples.png", "samples.png") in links and len(links) >= 4
    for href, src in links:
        assert href == src and (run / unquote(href)).is_file(), href
