"""genvision outliers: scores, detection metrics, set preparation and the CLI on a tiny run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from genvision.apps.outliers import (
    batch_typicality,
    detection_metrics,
    nll_bits,
    ratio_score,
    typicality_score,
)
from genvision.apps.outliers.data import check_ood_names, ood_set, split_label
from genvision.apps.outliers.likelihood import log_probs
from genvision.cli import main
from genvision.data.config import DataConfig
from genvision.errors import UserError
from genvision.models.pixelcnn import PixelCNN, PixelCNNConfig
from genvision.runs import start as runs
from genvision.train import TrainConfig


def gv(*argv: object) -> int:
    return main([str(a) for a in argv])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A small PixelCNN trained for a few steps on the 8x8 digits."""
    run = tmp_path_factory.mktemp("outliers") / "pixelcnn"
    runs.start(runs.RunSpec("pixelcnn", {"layers": 1, "hidden": 8, "out_hidden": 8},
                            TrainConfig(steps=30, lr=3e-3, progress=False),
                            DataConfig(data="digits")), run)
    return run


# ----- scores and metrics -------------------------------------------------------------------
def test_detection_metrics_perfect_reversed_and_by_hand():
    low, high = torch.arange(10.0), torch.arange(10.0) + 100
    assert detection_metrics(low, high)["auroc"] == 1.0
    assert detection_metrics(low, high)["fpr_at_95_tpr"] == 0.0
    assert detection_metrics(high, low) == {"auroc": 0.0, "fpr_at_95_tpr": 1.0,
                                            "n_in": 10, "n_ood": 10}
    # 20 outliers at 1..20, in-distribution at 0.5, 1.5, ..., 9.5: catching 95% of the
    # outliers (19 of 20) needs the threshold at 2, which flags the 8 in-dist above it
    in_s, ood_s = torch.arange(10.0) + 0.5, torch.arange(1.0, 21.0)
    m = detection_metrics(in_s, ood_s)
    assert m["fpr_at_95_tpr"] == pytest.approx(0.8)
    pairs = sum(float(o > i) + 0.5 * float(o == i) for o in ood_s for i in in_s)
    assert m["auroc"] == pytest.approx(pairs / 200)


def test_scores_units_and_typicality():
    lp = torch.tensor([-10.0, -20.0])
    assert nll_bits(lp, 4).tolist() == pytest.approx([10 / (4 * math.log(2)),
                                                      20 / (4 * math.log(2))])
    # the ratio is the NLL difference in bits/dim: higher when the model likes x less
    assert ratio_score(lp, torch.tensor([-12.0, -12.0]), 4).tolist() == pytest.approx(
        [-2 / (4 * math.log(2)), 8 / (4 * math.log(2))])
    assert typicality_score(torch.tensor([1.0, 3.0]), 2.0).tolist() == [1.0, 1.0]


def test_batch_typicality_uses_disjoint_batches_of_the_mean():
    nll = torch.tensor([1.0, 3.0] * 5 + [7.0])  # 11 images, batches of 2 -> 5 batches
    s = batch_typicality(nll, 2.0, 2, seed=0)
    assert s.shape == (5,)
    perm = torch.randperm(11, generator=torch.Generator().manual_seed(0))[:10]
    assert s.tolist() == pytest.approx((nll[perm].view(5, 2).mean(1) - 2).abs().tolist())
    # an in-distribution batch mean is near the entropy even if single images are not
    assert batch_typicality(torch.tensor([1.0, 3.0] * 50), 2.0, 100).item() == 0.0


def test_conditional_models_are_scored_by_their_marginal():
    torch.manual_seed(0)
    model = PixelCNN(PixelCNNConfig(image_size=(8, 8), num_classes=3, layers=1, hidden=6,
                                    out_hidden=6)).eval()
    x = torch.bernoulli(torch.full((5, 1, 8, 8), 0.3))
    per = torch.stack([model.log_prob(x, torch.full((5,), c)) for c in range(3)])
    want = torch.logsumexp(per.double(), 0) - math.log(3)
    assert log_probs(model, x, batch_size=2).tolist() == pytest.approx(want.tolist())


# ----- sets -----------------------------------------------------------------------------------
def test_ood_sets_are_binarised_like_the_model_inputs_and_sized_only_with_resize(tiny_run):
    info = json.loads((tiny_run / "run.json").read_text())
    faces = ood_set("faces", info, resize=True, n=30)
    assert faces.x.shape == (30, 1, 8, 8)
    assert set(faces.x.unique().tolist()) <= {0.0, 1.0}
    assert faces.protocol["binarize"] == {"scheme": "static", "seed": 0}
    noise = ood_set("noise:0.25", info, resize=False, n=400)
    assert abs(noise.x.mean().item() - 0.25) < 0.02
    assert ood_set("blank", info, resize=False, n=3).x.sum() == 0
    with pytest.raises(Exception, match="--resize"):
        ood_set("faces", info, resize=False, n=30)
    with pytest.raises(Exception, match="noise"):
        ood_set("noise:2", info, resize=False, n=3)
    with pytest.raises(Exception, match="twice"):
        check_ood_names("faces,faces")


def test_ood_sets_take_a_label_shown_instead_of_their_spec(tiny_run):
    info = json.loads((tiny_run / "run.json").read_text())
    named = ood_set("white-noise=noise:0.25", info, resize=False, n=50)
    plain = ood_set("noise:0.25", info, resize=False, n=50)
    assert named.name == "white-noise" and named.protocol["spec"] == "noise:0.25"
    assert torch.equal(named.x, plain.x)  # the label changes the name, not the images
    faces = ood_set("lfw=faces", info, resize=True, n=5)
    assert faces.name == "lfw" and faces.x.shape == (5, 1, 8, 8)
    # a path with "=" in it is not a label: only a plain name before "=" is
    assert split_label("folder:/data/a=b") == (None, "folder:/data/a=b")
    with pytest.raises(UserError, match="names no set after"):
        split_label("mnist=")
    with pytest.raises(Exception, match="twice"):
        check_ood_names("a=noise,a=blank")


# ----- CLI ------------------------------------------------------------------------------------
def test_cli_scores_every_set_and_writes_table_json_and_figure(tiny_run, tmp_path, capsys):
    out = tmp_path / "o"
    assert gv("outliers", tiny_run, "--ood", "faces,noise,blank", "--resize", "--n", "60",
              "--background-steps", "20", "--typicality-m", "5", "--out", out) == 0
    text = capsys.readouterr().out
    assert "| faces |" in text and "likelihood ratio AUROC" in text
    result = json.loads((out / "outliers.json").read_text())
    assert (out / "outliers_hist.png").stat().st_size > 5000
    assert (out / "outliers.md").read_text().startswith("In-distribution")
    assert result["in_distribution"]["protocol"]["source"] == "digits"
    assert result["likelihood"]["kind"] == "exact" and result["background"]["reused"] is False
    # every image's scores, and the gallery of the least / most anomalous per set
    rows = (out / "outliers_scores.csv").read_text().splitlines()
    assert rows[0] == "set,index,nll_bits,nll,ratio,typicality"
    assert len(rows) == 1 + 60 + 60 + 3 * 60  # in-distribution, training reference, 3 sets
    assert (out / "outliers_gallery.png").stat().st_size > 1000
    assert "outliers_gallery.png (rows: in-dist, faces, noise, blank" in text
    # a 30-step model is still worse than independent pixels: said, not scored silently
    strength = result["background_strength"]
    assert strength["nll_model_nats"] > strength["nll_independent_pixels_nats"] > 0
    assert "no better than independent pixels" in result["warnings"][0]
    md = (out / "outliers.md").read_text()
    assert "Background model: NLL" in md and "**Warning:** the model is no better" in md
    for name in ("faces", "noise", "blank"):
        ms = result["ood"][name]["metrics"]
        assert set(ms) == {"nll", "ratio", "typicality", "typicality_batch"}
        assert all(0 <= m["auroc"] <= 1 and 0 <= m["fpr_at_95_tpr"] <= 1 for m in ms.values())
        assert ms["typicality_batch"]["n_in"] == 60 // 5
    # Bernoulli(0.5) noise is far less likely than digits even under a barely trained model
    assert result["ood"]["noise"]["metrics"]["nll"]["auroc"] > 0.9
    # a second call reuses the background model instead of training it again
    assert gv("outliers", tiny_run, "--ood", "noise", "--n", "20", "--background-steps", "20",
              "--out", out) == 0
    assert json.loads((out / "outliers.json").read_text())["background"]["reused"] is True


def test_cli_without_background_has_no_ratio(tiny_run, tmp_path, capsys):
    # digits are 8x8 like the run's images: no --resize needed
    assert gv("outliers", tiny_run, "--ood", "digits", "--n", "20", "--background", "none",
              "--out", tmp_path / "o") == 0
    result = json.loads((tmp_path / "o" / "outliers.json").read_text())
    assert "ratio" not in result["ood"]["digits"]["metrics"] and result["background"] is None
    assert not (tmp_path / "o" / "background").exists()


@pytest.mark.parametrize("extra, message", [
    (["--ood", "faces"], "pass --resize"),               # 25x25 faces, 8x8 model
    (["--ood", "faces,nosuchset", "--resize"], "unknown dataset"),
    (["--ood", "noise", "--n", "0"], "--n"),
    (["--ood", "noise", "--k", "5"], "drop --k"),
])
def test_cli_bad_input_is_one_line_exit_2_and_writes_nothing(tiny_run, tmp_path, capsys,
                                                             extra, message):
    out = tmp_path / "o"
    assert gv("outliers", tiny_run, *extra, "--out", out) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and message in err
    assert not (out / "outliers.json").exists() and not (out / "background").exists()


def test_cli_refuses_models_without_likelihood(tmp_path, capsys):
    import tiny_model  # noqa: F401  registers the likelihood-free "tiny-test" model

    run = tmp_path / "implicit"
    runs.start(runs.RunSpec("tiny-test", {}, TrainConfig(steps=2, progress=False),
                            DataConfig(data="digits")), run)
    assert gv("outliers", run, "--ood", "noise") == 2
    err = capsys.readouterr().err.strip()
    assert "has no likelihood" in err and "\n" not in err
