"""`genvision train dcgan|wgan-gp|sngan` and `genvision sample` end to end, tiny budgets."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import genvision.models.gan  # noqa: F401  (registers dcgan, wgan-gp, sngan)
from genvision.cli import main

TINY = ["--data", "digits", "--latent-dim", "4", "--g-width", "4", "--d-width", "4",
        "--batch-size", "16", "--log-every", "2", "--checkpoint-every", "4", "--no-progress"]


def gv(*argv) -> int:
    return main([str(a) for a in argv])


@pytest.fixture(scope="module")
def cond_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gan") / "sngan"
    assert gv("train", "sngan", "--conditional", "--steps", "4", "--sample-every", "2",
              "--diffaug", "translation", "--out", out, *TINY) == 0
    return out


def test_conditional_run_report_and_labelled_sampling(cond_run, tmp_path, capsys):
    info = json.loads((cond_run / "run.json").read_text())
    assert info["family"] == "implicit (GAN)" and info["likelihood_kind"] == "none"
    assert info["model_config"]["num_classes"] == 10 and info["data"]["data_kind"] == "grey8"
    for name in ("samples.png", "interpolations.png", "report.html", "loss.png",
                 "samples/step-00000002.png", "samples/progress_strip.png"):
        assert (cond_run / name).is_file(), name
    html = (cond_run / "report.html").read_text()
    assert "progress_strip.png" in html and "interpolations" in html
    out = tmp_path / "three.png"
    assert gv("sample", cond_run, "-n", "8", "--label", "3", "-o", out) == 0
    with Image.open(out) as im:
        assert im.size[0] > 0
    capsys.readouterr()
    assert gv("sample", cond_run, "-n", "4", "--label", "12", "-o", out) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "out of range" in err and "0..9" in err


@pytest.mark.parametrize("argv,message", [
    (["train", "dcgan", "--data", "faces", "--steps", "1"], "--image-size 24"),
    (["train", "wgan-gp", "--lr", "0.01", "--steps", "1"], "--lr-g and --lr-d"),
    (["train", "dcgan", "--binarize", "dynamic", "--steps", "1"], "cannot model binary"),
])
def test_bad_training_input_is_one_line(argv, message, tmp_path, capsys):
    extra = [] if "--data" in argv else ["--data", "digits"]
    assert gv(*argv, *extra, "--out", tmp_path / "r", "--no-progress") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err and "fix:" in err


def test_unconditional_label_and_log_prob_are_refused(tmp_path, capsys):
    run = tmp_path / "dc"
    assert gv("train", "dcgan", "--steps", "2", "--out", run, *TINY) == 0
    capsys.readouterr()
    assert gv("sample", run, "-n", "4", "--label", "3", "-o", tmp_path / "x.png") == 2
    assert "--conditional" in capsys.readouterr().err
    assert gv("evaluate", run, "--metrics", "nll") == 2
    assert "no likelihood" in capsys.readouterr().err


def test_self_conditioned_run_fits_clusters_and_samples_without_labels(tmp_path, capsys):
    run = tmp_path / "sc"
    assert gv("train", "sngan", "--self-condition", "4", "--steps", "2", "--sample-every", "2",
              "--out", run, *TINY) == 0
    assert (run / "clusters.png").is_file() and "clusters.png" in (run / "report.html").read_text()
    assert gv("sample", run, "-n", "6", "-o", tmp_path / "s.png") == 0
    capsys.readouterr()
    assert gv("train", "sngan", "--self-condition", "4", "--conditional", "--steps", "1",
              "--out", tmp_path / "bad", *TINY) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--self-condition is for unconditional" in err
    assert gv("train", "sngan", "--self-condition", "100000", "--steps", "1",
              "--out", tmp_path / "big", *TINY) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "needs at least 100000 training images" in err


def test_sample_and_evaluate_reach_the_latent_sampler(cond_run, tmp_path, capsys):
    def draw(*argv) -> np.ndarray:
        out = tmp_path / "s.npz"
        assert gv("sample", cond_run, "-o", out, "--label", "4", *argv) == 0
        return np.load(out)["x"]

    plain = draw("-n", "6")
    # sample k uses seed SEED + k, whatever -n is
    assert np.array_equal(plain[4:], draw("-n", "2", "--seed", "4"))
    assert not np.array_equal(plain, draw("-n", "6", "--sampler-opt", "truncation=0.2"))
    assert not np.array_equal(plain, draw("-n", "6", "--sampler", "latent",
                                          "--sampler-opt", "ema=false"))
    capsys.readouterr()
    assert gv("sample", cond_run, "--label", "1", "--sampler-opt", "ema=perhaps",
              "-o", tmp_path / "x.png") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "ema='perhaps' is not a valid bool" in err
    assert gv("evaluate", cond_run, "--metrics", "fid", "--n", "30",
              "--sampler-opt", "truncation=0.5", "--sampler-opt", "ema=false") == 0
    entry = json.loads((cond_run / "metrics.json").read_text())["evaluations"][-1]
    assert entry["protocol"]["sampler"] == {"name": "latent", "truncation": 0.5, "ema": False}
