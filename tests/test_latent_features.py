"""`genvision features probe`: latent features vs raw pixels (probe, k-means, maps), tiny runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from genvision.apps.latent_features import data as fdata
from genvision.apps.latent_features.extract import feature_fn
from genvision.apps.latent_features.scores import balanced_subset, cluster_scores, linear_probe
from genvision.cli import main
from genvision.data import DataConfig
from genvision.errors import UserError

FAST = ["--seeds", "2", "--map-n", "120", "--kmeans-init", "1", "--no-progress"]


def gv(*argv) -> int:
    return main([str(a) for a in argv])


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("probe") / "vae"
    assert gv("train", "vae", "--data", "digits", "--latent-dim", "4", "--hidden", "8",
              "--fc-dim", "16", "--ar-layers", "0", "--steps", "20", "--batch-size", "32",
              "--no-progress", "--out", out) == 0
    return out


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("probe") / "dcgan"
    assert gv("train", "dcgan", "--data", "digits", "--latent-dim", "4", "--g-width", "4",
              "--d-width", "4", "--steps", "4", "--batch-size", "16", "--no-progress",
              "--out", out) == 0
    return out


# ----- scores -------------------------------------------------------------------------------
def test_balanced_subset_is_balanced_seeded_and_checked():
    y = np.repeat(np.arange(4), [50, 30, 20, 10])
    idx = balanced_subset(y, 22, seed=3)
    assert len(idx) == 22 and len(set(idx)) == 22
    assert np.all(np.bincount(y[idx], minlength=4) >= 5)  # 22 // 4 per class, 2 extra
    assert np.array_equal(idx, balanced_subset(y, 22, seed=3))
    assert not np.array_equal(idx, balanced_subset(y, 22, seed=4))
    with pytest.raises(ValueError):
        balanced_subset(y, 3, seed=0)  # fewer labels than classes


def test_probe_and_clusters_separate_informative_from_noise_features():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 100)
    centres = np.array([[0, 0], [8, 0], [0, 8]], dtype=float)
    good = centres[y] + rng.normal(size=(300, 2))
    noise = rng.normal(size=(300, 2))
    tr, ev = np.arange(0, 300, 2), np.arange(1, 300, 2)
    p_good = linear_probe(good[tr], y[tr], good[ev], y[ev], 9, [0, 1, 2])
    p_noise = linear_probe(noise[tr], y[tr], noise[ev], y[ev], 9, [0, 1, 2])
    assert p_good["mean"] > 0.95 and p_noise["mean"] < 0.6
    assert p_good["mean"] == pytest.approx(np.mean(p_good["accuracy"]))
    assert len(p_good["accuracy"]) == 3 and p_good["n_labels"] == 9
    c_good, c_noise = cluster_scores(good, y), cluster_scores(noise, y)
    assert c_good["k"] == 3 and c_good["nmi"] > 0.9 and c_good["ari"] > 0.9
    assert c_noise["nmi"] < 0.1 and abs(c_noise["ari"]) < 0.1


# ----- features -----------------------------------------------------------------------------
def test_features_are_the_encoder_mean_and_the_discriminator_input(vae_run, gan_run):
    from genvision.models.base import load

    x = torch.rand(5, 1, 8, 8).round()
    vae = load(vae_run)
    mu = feature_fn(vae, "vae")(x)
    assert mu.shape == (5, 4) and torch.equal(mu, vae.encode(x)[0])
    gan = load(gan_run)
    phi = feature_fn(gan, "dcgan")(x)
    assert phi.shape == (5, 2 * 4 * 2 * 2)
    # the features are exactly what the discriminator's final linear score reads
    torch.testing.assert_close(gan.D.out(phi).squeeze(1), gan.D(x))


# ----- end to end ---------------------------------------------------------------------------
def test_vae_probe_writes_table_json_and_maps(vae_run, capsys):
    assert gv("features", "probe", vae_run, "--labels", "20,200", *FAST) == 0
    printed = capsys.readouterr().out
    assert "| vae: VAE encoder mean mu(x) | 4 |" in printed and "raw pixels" in printed
    out = vae_run / "probe"
    res = json.loads((out / "results.json").read_text())
    proto = res["protocol"]
    assert proto["label_pool"]["source"] == "digits" and proto["label_pool"]["split"] == "train"
    assert proto["evaluation"]["split"] == "test" and proto["labels"] == [20, 200]
    assert proto["label_seeds"] == [0, 1]
    pix = res["representations"]["pixels"]
    assert pix["dim"] == 64 and res["representations"]["latent"]["dim"] == 4
    assert len(pix["probe"]["200"]["accuracy"]) == 2
    # 8x8 digits are easy: raw pixels beat chance (0.1) by far, more labels do not hurt much
    assert pix["probe"]["200"]["mean"] > 0.6
    assert pix["probe"]["200"]["mean"] > pix["probe"]["20"]["mean"] - 0.05
    assert 0 < pix["kmeans"]["nmi"] <= 1 and pix["kmeans"]["k"] == 10
    md = (out / "results.md").read_text()
    assert "Evaluated on: digits test" in md and "seeds 0..1" in md
    for name in ("pca.png", "tsne.png"):
        assert (out / name).stat().st_size > 1000
    assert res["maps"]["n"] == 120


def test_gan_probe_uses_discriminator_features_and_data_flag(gan_run, tmp_path, capsys):
    out = tmp_path / "res"
    assert gv("features", "probe", gan_run, "--labels", "50", "--data", "digits",
              "--split", "val", "--no-tsne", "--out", out, *FAST) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["representations"]["latent"]["dim"] == 2 * 4 * 2 * 2  # 2 d_width, 8/4 side
    assert res["protocol"]["evaluation"]["split"] == "val"
    assert "as asked" in res["protocol"]["evaluation_reason"]
    assert res["protocol"]["label_pool"]["data_kind"] == "grey8"  # GANs see grey pixels
    assert (out / "pca.png").is_file() and not (out / "tsne.png").exists()
    assert not (gan_run / "probe").exists()


# ----- data choice --------------------------------------------------------------------------
def test_mnist_runs_are_scored_on_the_official_test_split_when_present(monkeypatch, tmp_path):
    run = DataConfig(data="mnist5k", split="all")
    monkeypatch.setattr(fdata, "shared_mnist_test", lambda: tmp_path)
    ev, why = fdata.eval_config(run, (1, 28, 28))
    assert ev.data == f"idx:{tmp_path}" and ev.split == "test" and "official MNIST" in why
    assert fdata.pool_config(run, ev) == run  # another source: the whole run's data
    monkeypatch.setattr(fdata, "shared_mnist_test", lambda: None)
    ev, why = fdata.eval_config(run, (1, 28, 28))
    assert ev.data == "mnist5k" and "no official MNIST test folder" in why
    assert fdata.pool_config(run, ev).split == "train"  # `all` holds the test split
    digits = DataConfig(data="digits", split="train")
    ev, _ = fdata.eval_config(digits, (1, 8, 8))
    assert ev.data == "digits" and ev.split == "test"
    with pytest.raises(UserError, match="its own training images"):
        fdata.pool_config(digits, DataConfig(data="digits", split="train"))


# ----- bad input ----------------------------------------------------------------------------
def _copy_run(run: Path, dst: Path, **changes) -> Path:
    shutil.copytree(run, dst, ignore=shutil.ignore_patterns("probe"))
    info = json.loads((dst / "run.json").read_text())
    for key, value in changes.items():
        if key == "data":
            info["data_config"]["data"] = value
        else:
            info[key] = value
    (dst / "run.json").write_text(json.dumps(info))
    return dst


def _npz_without_labels(path: Path) -> str:
    np.savez(path, x=np.random.default_rng(0).integers(0, 256, (40, 8, 8), dtype=np.uint8))
    return f"npz:{path}"


@pytest.mark.parametrize("case,message", [
    ("family", "dcgan, wgan-gp or sngan"),
    ("conditional", "leak the class"),
    ("unlabelled", "has no labels"),
    ("missing", "does not exist"),
    ("corrupt", "not valid JSON"),
    ("labels", "--labels 5000 is outside"),
    ("badflag", "comma list of integers"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(vae_run, tmp_path, capsys, case,
                                                         message):
    run, extra = tmp_path / "run", []
    if case == "family":
        _copy_run(vae_run, run, model="pixelcnn")
    elif case == "conditional":
        _copy_run(vae_run, run, conditional=True)
    elif case == "unlabelled":
        _copy_run(vae_run, run, data=_npz_without_labels(tmp_path / "x.npz"))
    elif case == "corrupt":
        _copy_run(vae_run, run)
        (run / "run.json").write_text("{not json")
    elif case in ("labels", "badflag"):
        _copy_run(vae_run, run)
        extra = ["--labels", "5000" if case == "labels" else "ten"]
    capsys.readouterr()
    assert gv("features", "probe", run, *extra, *FAST) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err and "fix:" in err
    assert not (run / "probe").exists()
