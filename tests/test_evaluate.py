"""`genvision evaluate` with sample metrics, and the metrics' behaviour on real images.

The feature network here is genvision's classifier of the 8x8 `digits` (trained once per
test session into the session's private cache, ~3 s), so the image-level checks run in the
same feature space a user gets.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from genvision.cli import main
from genvision.data import load_dataset
from genvision.errors import UserError
from genvision.metrics.feature_net import extract_features, load_or_train_feature_net
from genvision.metrics.sample_quality import sample_quality

TINY = ["--latent-dim", "4", "--hidden", "8", "16", "--fc-dim", "32", "--ar-layers", "1",
        "--ar-channels", "4", "--batch-size", "32", "--no-progress", "--checkpoint-every", "10"]


def gv(*argv: object) -> int:
    return main([str(a) for a in argv])


def entries(run: Path) -> list[dict]:
    return json.loads((run / "metrics.json").read_text())["evaluations"]


@pytest.fixture(scope="module")
def cond_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "cond"
    assert gv("train", "vae", "--conditional", "--data", "digits", "--steps", "30",
              "--out", out, *TINY) == 0
    return out


@pytest.fixture(scope="module")
def digits_net():
    net, _ = load_or_train_feature_net("digits", split="train", progress=False)
    return net


@pytest.fixture(scope="module")
def digit_halves():
    ds = load_dataset("digits", "all")
    perm = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0))
    half = len(ds) // 2
    return ds.to_float(), ds.y, perm[:half], perm[half:]


# ----- the command ------------------------------------------------------------------------
def test_evaluate_all_metrics_stamps_every_protocol(cond_run, capsys):
    assert gv("evaluate", cond_run, "--metrics", "all", "--n", "60", "--k", "2") == 0
    out = capsys.readouterr().out
    assert "NLL" in out and "FID" in out and "CAS" in out
    lik, smp = entries(cond_run)[-2:]
    assert lik["kind"] == "likelihood" and lik["protocol"]["estimator"] == "IWAE-2"
    assert smp["kind"] == "samples" and smp["steps"] == lik["steps"] == 30
    p = smp["protocol"]
    assert p["features"]["name"] == "genvision-classifier" and len(p["features"]["key"]) == 16
    assert p["features"]["trained_on"]["spec"] == "digits"
    assert (p["n_real"], p["n_fake"], p["pr_k"], p["kid_subset_size"]) == (60, 60, 3, 30)
    assert p["labels"].startswith("balanced")
    assert smp["data"]["binarize"] == {"scheme": "static", "seed": 0}  # as the likelihood
    for key in ("precision", "recall", "density", "coverage", "cas_accuracy",
                "train_closer_share", "near_copy_share", "feature_accuracy", "expected_share"):
        assert 0.0 <= smp[key] <= (2.0 if key == "density" else 1.0), key
    assert smp["fid"] > 0 and smp["sampling_images_per_s"] > 0


def test_separate_metric_calls_merge_into_one_entry(cond_run):
    base = ["evaluate", cond_run, "--n", "40", "--seed", "3"]
    assert gv(*base, "--metrics", "fid") == 0
    assert gv(*base, "--metrics", "pr") == 0
    mine = [e for e in entries(cond_run) if e.get("kind") == "samples" and e["seed"] == 3]
    assert len(mine) == 1 and {"fid", "precision", "recall"} <= set(mine[0])
    assert gv(*base, "--metrics", "fid", "--samples", "50") == 0  # another protocol: new entry
    assert len([e for e in entries(cond_run) if e.get("seed") == 3]) == 2


def test_memorisation_flags_a_model_that_returns_training_images(cond_run, monkeypatch):
    import genvision.evaluation.samples as es
    from genvision.data import prepare_eval
    from genvision.data.config import DataConfig

    train = prepare_eval(DataConfig(data="digits"), "train", model_data_kind="binary").x
    # fresh images: the test split (val is the memorisation check's held-out reference)
    test = prepare_eval(DataConfig(data="digits"), "test", model_data_kind="binary").x

    def fake_draw(source):
        def draw(model, n, **kw):
            return source[:n], torch.arange(n) % 10, 1000.0
        return draw

    results = {}
    for name, source in (("copier", train), ("fresh", test)):
        monkeypatch.setattr(es, "draw_samples", fake_draw(source))
        assert gv("evaluate", cond_run, "--metrics", "mem", "--n", "120", "--seed",
                  10 + len(results)) == 0
        results[name] = entries(cond_run)[-1]
    assert results["copier"]["near_copy_share"] == 1.0
    assert results["copier"]["memorisation_score"] == 1.0
    assert results["fresh"]["near_copy_share"] < 0.05
    assert abs(results["fresh"]["memorisation_score"]) < 0.3


@pytest.mark.parametrize("argv, message", [
    (["--metrics", "fid,bogus"], "unknown metric(s) bogus"),
    (["--metrics", "pr", "--n", "3"], "(k < n)"),
    (["--metrics", "kid", "--n", "20", "--kid-subset-size", "50"], "KID subsets of 50"),
    (["--metrics", "fid", "--n", "1"], "at least 2 real"),
    (["--metrics", "fid", "--features", "/no/such/dir"], "unknown feature network"),
    (["--metrics", "fid", "--features", "inception:"], "needs a weights file"),
])
def test_bad_evaluate_options_are_one_line_errors(cond_run, argv, message, capsys):
    before = (cond_run / "metrics.json").read_bytes()
    assert gv("evaluate", cond_run, *argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and err.startswith("error:")
    assert (cond_run / "metrics.json").read_bytes() == before  # nothing overwritten


def test_feature_net_of_another_dataset_is_refused(cond_run, tmp_path, capsys):
    other = tmp_path / "fn-mnist8"
    assert gv("features", "train", "--data", "mnist5k", "--image-size", "8", "--epochs", "1",
              "--width", "4", "--out", other) == 0
    assert gv("features", "train", "--data", "digits", "--out", other) == 2  # never overwrites
    capsys.readouterr()
    assert gv("evaluate", cond_run, "--metrics", "fid", "--features", other) == 2
    err = capsys.readouterr().err
    assert "trained on mnist5k 8x8, not digits 8x8" in err


def test_features_train_writes_a_loadable_network(tmp_path, capsys):
    out = tmp_path / "fn"
    assert gv("features", "train", "--data", "digits", "--epochs", "2", "--width", "8",
              "--out", out) == 0
    text = capsys.readouterr().out
    assert "test accuracy on digits test" in text and str(out) in text
    from genvision.metrics.feature_net import load_feature_net

    net, info = load_feature_net(out, expect_data="digits")
    assert info["config"]["epochs"] == 2 and net.config.width == 8


def test_cas_needs_a_conditional_model_and_nll_a_likelihood(tmp_path, capsys):
    import tiny_model  # noqa: F401  registers the likelihood-free "tiny-test" model
    from genvision.data.config import DataConfig
    from genvision.runs import start as runs
    from genvision.train import TrainConfig

    run = tmp_path / "implicit"
    runs.start(runs.RunSpec("tiny-test", {}, TrainConfig(steps=3, progress=False),
                            DataConfig(data="digits")), run)
    assert gv("evaluate", run, "--metrics", "nll") == 2
    assert "has no likelihood" in capsys.readouterr().err
    assert gv("evaluate", run, "--metrics", "cas") == 2
    assert "needs a class-conditional model" in capsys.readouterr().err
    # auto on a model without a likelihood: sample metrics only
    assert gv("evaluate", run, "--n", "50") == 0
    assert [e["kind"] for e in entries(run)] == ["samples"]


def test_run_whose_dataset_is_gone_is_a_clear_error(cond_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "moved"
    shutil.copytree(cond_run, run)
    info = json.loads((run / "run.json").read_text())
    info["data_config"]["data"] = f"folder:{tmp_path / 'deleted-folder'}"
    (run / "run.json").write_text(json.dumps(info))
    assert gv("evaluate", run, "--metrics", "fid") == 2
    err = capsys.readouterr().err
    assert "deleted-folder" in err and err.count("\n") == 1


# ----- the metrics on real images, in the digits feature space --------------------------
def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    r = 3
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-t ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))


def _noise(x: torch.Tensor, sigma: float) -> torch.Tensor:
    return (x + sigma * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
            ).clamp(0, 1)


@pytest.mark.parametrize("corrupt, levels", [(_noise, [0.05, 0.1, 0.2, 0.4]),
                                              (_gaussian_blur, [0.6, 1.0, 1.5, 2.5])])
def test_fid_and_kid_grow_with_corruption_strength(digits_net, digit_halves, corrupt, levels):
    x, _, a, b = digit_halves
    real = extract_features(digits_net, x[a])
    fids, kids = [], []
    for level in [0.0, *levels]:
        fake = extract_features(digits_net, corrupt(x[b], level) if level else x[b])
        r = sample_quality(real, fake, metrics=("fid", "kid"), kid_subset_size=500)
        fids.append(r["fid"])
        kids.append(r["kid_mean"])
    assert fids == sorted(fids) and kids == sorted(kids)
    # other half of the same data: small; the strongest corruption: an order of magnitude more
    assert fids[0] < 2.0 and fids[-1] > 25 * fids[0]
    assert abs(kids[0]) < 0.01 and kids[-1] > 100 * abs(kids[0])


def test_fid_of_noise_images_is_large(digits_net, digit_halves):
    x, _, a, b = digit_halves
    real = extract_features(digits_net, x[a])
    same = sample_quality(real, extract_features(digits_net, x[b]), metrics=("fid",))["fid"]
    noise = torch.rand(len(b), *x.shape[1:], generator=torch.Generator().manual_seed(2))
    far = sample_quality(real, extract_features(digits_net, noise), metrics=("fid",))["fid"]
    assert far > 100 * same


def test_dropping_half_the_classes_halves_recall_and_coverage(digits_net, digit_halves):
    x, y, a, b = digit_halves
    real = extract_features(digits_net, x[a])
    full = sample_quality(real, extract_features(digits_net, x[b]), metrics=("pr", "dc"))
    kept = b[y[b] < 5]
    half = sample_quality(real, extract_features(digits_net, x[kept]), metrics=("pr", "dc"))
    assert full["recall"] > 0.8 and full["coverage"] > 0.8
    assert half["recall"] == pytest.approx(full["recall"] / 2, abs=0.1)
    assert half["coverage"] == pytest.approx(full["coverage"] / 2, abs=0.1)
    assert half["precision"] > 0.85  # what is generated is still realistic


def test_inception_features_from_a_local_weights_file(cond_run, tmp_path, capsys):
    from genvision.metrics.inception import FIDInceptionV3
    from genvision.storage import save_tensors

    torch.manual_seed(0)
    weights = tmp_path / "inception.safetensors"
    save_tensors(weights, FIDInceptionV3().state_dict())
    assert gv("evaluate", cond_run, "--metrics", "fid,kid", "--n", "12",
              "--kid-subset-size", "6", "--features", f"inception:{weights}") == 0
    entry = entries(cond_run)[-1]
    feats = entry["protocol"]["features"]
    assert feats["name"] == "inception-v3-fid" and feats["dim"] == 2048
    assert feats["key"].startswith("inception-") and entry["fid"] > 0
    assert "feature_accuracy" not in entry  # not a classifier of the digits
    assert "inception-v3-fid features" in capsys.readouterr().out
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    assert gv("evaluate", cond_run, "--metrics", "fid", "--features",
              f"inception:{tmp_path / 'bad.pth'}") == 2


def test_fid_does_not_depend_on_the_batch_size_and_the_sampler_is_protocol(cond_run,
                                                                           tmp_path):
    from genvision.report import compare, compare_table

    base = ["evaluate", cond_run, "--metrics", "fid", "--n", "40", "--seed", "21"]
    fids = []
    for bs in ("7", "40"):  # sample i uses seed 21 + i in any batch
        assert gv(*base, "--batch-size", bs) == 0
        fids.append(entries(cond_run)[-1]["fid"])
    assert fids[0] == fids[1]
    plain = entries(cond_run)[-1]
    assert plain["protocol"]["sampler"] == {"name": "ancestral", "decoder": "sample"}
    assert "base_seed + i" in plain["protocol"]["seeding"]
    # fresh copies of the run, each evaluated once: one plain, one with decoder means
    one, other = tmp_path / "one", tmp_path / "same-model"
    for run, opts in ((one, []), (other, ["--sampler-opt", "decoder=mean"])):
        shutil.copytree(cond_run, run)
        (run / "metrics.json").unlink()
        assert gv("evaluate", run, *base[2:], *opts) == 0
    means = entries(other)[-1]
    assert means["protocol"]["sampler"] == {"name": "ancestral", "decoder": "mean"}
    assert means["fid"] != plain["fid"]
    assert "sampler ancestral (decoder=mean)" in compare_table._samples_words(means)
    # two runs of one model drawn with different samplers: not one protocol (marked, and
    # refused under --strict), with the sampler option that would match them
    with pytest.raises(UserError, match="both vae.*different samplers"):
        compare.collect([one, other], strict=True)
    marked = compare.collect([one, other])
    assert [row.marks["fid"] for row in marked.rows] == ["[a]", "[b]"]
    assert "--sampler ancestral --sampler-opt decoder=sample" in marked.footnotes[1]
    # runs of different models each use their own sampler: compared, each named
    info = json.loads((other / "run.json").read_text())
    (other / "run.json").write_text(json.dumps({**info, "model": "made"}))
    board = compare.collect([one, other])
    notes = " ".join(board.notes)
    assert "decoder=mean" in notes and "decoder=sample" in notes


def test_bad_sampler_options_are_one_line_errors(cond_run, capsys):
    for argv, message in ((["--sampler", "ddim"], "vae has no sampler 'ddim'"),
                          (["--sampler-opt", "truncation=0.5"], "has no option 'truncation'"),
                          (["--sampler-opt", "decoder=blurry"], "not one of sample, mean")):
        assert gv("evaluate", cond_run, "--metrics", "fid", "--n", "20", *argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and message in err and "fix:" in err, err
