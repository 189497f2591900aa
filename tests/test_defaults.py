"""Defaults that used to give garbage silently (issue 20): the data kind is chosen from the
pixels and said in the run's first line; a run without a budget, a VAE stopped inside its
KL warm-up, a --minutes run that slowed down and an early GAN collapse are warned of."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import tiny_model  # noqa: F401  (registers "tiny-test")
from genvision.callbacks import TrainState
from genvision.cli import main
from genvision.data import DataConfig, prepare
from genvision.data.prepare import choose_binarize, near_binary_share
from genvision.data.sources import load_dataset
from genvision.models.base import get_model_class
from genvision.runs import start as runs
from genvision.train import TrainConfig, TrainData, train
from genvision.train import budget as budget_mod
from genvision.train.budget import Budget, BudgetWatch

TINY_VAE = ["--latent-dim", "4", "--hidden", "8", "16", "--fc-dim", "32", "--res-blocks", "0",
            "--ar-layers", "1", "--ar-channels", "4", "--batch-size", "16", "--no-progress",
            "--sample-every", "0"]


def grey_npz(path, nearly_binary: bool):
    """40 8x8 images: smooth grey ramps (anti-aliased strokes) or black/white squares
    with 2% grey pixels."""
    g = np.random.default_rng(0)
    if nearly_binary:
        x = (g.random((40, 8, 8)) < 0.3).astype(np.uint8) * 255
        x[:, 0, :2] = 128  # 2 of 64 pixels grey: 3% of all
    else:
        ramp = np.linspace(0, 255, 8)[None, :, None] * np.ones((40, 1, 8))
        x = (ramp * g.random((40, 1, 1))).astype(np.uint8)
    np.savez(path, x=x, y=np.arange(40) % 2)
    return f"npz:{path}"


def kind_of(spec: str, model: str, **data) -> tuple[str, str]:
    cls = get_model_class(model)
    cfg = DataConfig(data=spec, split="all", **data)
    ds = load_dataset(spec, "all")
    return choose_binarize(ds, cfg, cls.input_kind({}), cls.supported_data_kinds)


def test_the_data_kind_follows_the_pixels_and_says_why(tmp_path):
    grey = grey_npz(tmp_path / "grey.npz", nearly_binary=False)
    bw = grey_npz(tmp_path / "bw.npz", nearly_binary=True)
    assert near_binary_share(load_dataset(bw, "all").x) == pytest.approx(62 / 64)
    scheme, why = kind_of(grey, "vae")
    assert scheme == "none" and why.startswith("grey8") and "--binarize dynamic" in why
    assert kind_of(grey, "pixelcnn")[0] == "none"  # every likelihood family alike
    assert kind_of(grey, "sngan")[0] == "none"     # ... and the GANs: one kind per dataset
    scheme, why = kind_of(bw, "vae")
    assert scheme == "dynamic" and "nearly binary (96.9% of pixels" in why
    assert kind_of(grey, "rbm") == ("dynamic", "binary (Bernoulli each batch): the model "
                                               "models binary pixels only")
    assert kind_of(grey, "vae", binarize="dynamic")[0] == "dynamic"  # asked for: honoured
    # the named MNIST protocol sets keep their documented binarisation
    scheme, why = kind_of("digits", "vae")
    assert scheme == "dynamic" and "MNIST benchmark protocol" in why
    assert kind_of("digits", "sngan")[0] == "none"
    prep = prepare(DataConfig(data=grey, split="all"), "binary",
                   supported=get_model_class("vae").supported_data_kinds)
    assert prep.data_kind == "grey8" and prep.kind_reason.startswith("grey8")
    # without the model's kinds (a task preparing its own data) `auto` is the old rule
    assert prepare(DataConfig(data=grey, split="all"), "binary").data_kind == "binary"


def test_a_run_prints_its_data_kind_first_and_resumes_with_it(tmp_path, capsys):
    grey = grey_npz(tmp_path / "grey.npz", nearly_binary=False)
    small = {"latent_dim": 4, "hidden": (8,), "fc_dim": 16, "res_blocks": 0, "ar_layers": 0,
             "kl_warmup_steps": 0}

    def spec(**data) -> runs.RunSpec:
        return runs.RunSpec("vae", dict(small), TrainConfig(steps=1, batch_size=16,
                                                            progress=False, sample_every=0),
                            DataConfig(data=grey, **data))

    runs.start(spec(), tmp_path / "run", argv=["genvision", "train"])
    err = capsys.readouterr().err
    assert err.splitlines()[0].startswith("data: grey8 (8-bit levels): the pixels have grey")
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["model_config"]["data_kind"] == "grey8"
    assert info["data"]["kind_reason"].startswith("grey8")
    # a run started when `auto` meant binary (before issue 20) resumes binary
    old = tmp_path / "old"
    runs.start(spec(binarize="dynamic"), old)
    info = json.loads((old / "run.json").read_text())
    info["data_config"]["binarize"] = "auto"
    (old / "run.json").write_text(json.dumps(info))
    assert runs.resume(old, {"steps": 1}).step == 2  # not "no longer matches its model"


def test_the_validation_images_get_the_kind_chosen_for_the_training_images(tmp_path):
    grey = grey_npz(tmp_path / "grey.npz", nearly_binary=False)
    spec = runs.RunSpec("vae", {"latent_dim": 4, "hidden": (8,), "fc_dim": 16,
                                "res_blocks": 0, "ar_layers": 0},
                        TrainConfig(steps=1, progress=False), DataConfig(data=grey))
    model, data, _ = runs._build(spec)
    assert model.config.data_kind == "grey8" and data.val_x is not None
    # 8-bit like the training images, not the model's binary default (statically binarised)
    assert not torch.isin(data.val_x, torch.tensor([0.0, 1.0])).all()


def warnings_of(run_dir) -> list[str]:
    lines = [json.loads(s) for s in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["warning"] for r in lines if r["split"] == "warning"]


def tiny_data(n: int = 12) -> TrainData:
    return TrainData(x=(torch.rand(n, 1, 4, 4) > 0.5).float())


def test_no_budget_warns_which_flag_to_use(tmp_path):
    model = get_model_class("tiny-test")(get_model_class("tiny-test").config_class())
    train(model, tiny_data(), TrainConfig(batch_size=4, progress=False, sample_every=0),
          tmp_path / "a")
    (msg,) = warnings_of(tmp_path / "a")
    assert "no budget given: this trains one epoch (3 steps)" in msg and "--steps" in msg
    model = get_model_class("tiny-test")(get_model_class("tiny-test").config_class())
    train(model, tiny_data(), TrainConfig(batch_size=4, steps=3, progress=False,
                                          sample_every=0), tmp_path / "b")
    assert warnings_of(tmp_path / "b") == []  # an explicit budget is taken as meant


def test_a_vae_stopped_inside_its_kl_warm_up_is_warned(tmp_path, capsys):
    assert main(["train", "vae", "--data", "digits", "--steps", "3", "--kl-warmup-steps",
                 "1000", "--out", str(tmp_path / "v"), *TINY_VAE]) == 0
    (msg,) = warnings_of(tmp_path / "v")
    assert "ends at step 3, inside the KL warm-up (--kl-warmup-steps) (until step 1000)" in msg
    assert "KL warm-up" in capsys.readouterr().err


def test_a_minutes_run_that_slowed_down_says_so(monkeypatch):
    clock = {"t": 0.0}
    monkeypatch.setattr(budget_mod.time, "monotonic", lambda: clock["t"])
    budget = Budget(TrainConfig(minutes=1), 0, 10)
    watch = BudgetWatch(budget, model=None)
    state = TrainState(0, 0.0, {}, None, {}, None, 0)
    for step in range(1, 200):
        clock["t"] += 0.1 if step < 30 else 1.0  # 10 steps/s, then 1 step/s
        state.step = step
        watch.on_step_end(state)
        if clock["t"] > 60:
            break
    slow = [w for w in state.warnings if "below half" in w]
    assert len(slow) == 1 and "use --steps N" in slow[0] and "10.00 steps/s" in slow[0]
    few = [w for w in state.warnings if "gives only about" in w]
    assert len(few) == 1  # ~60 steps in a minute: too few


def test_the_gan_collapse_check_starts_early_only_after_diverse_samples(tmp_path, capsys):
    from genvision.models.gan import DCGAN
    from genvision.models.gan_watch import GANWatcher

    m = DCGAN(DCGAN.config_class(image_size=(8, 8), data_kind="grey8", latent_dim=4,
                                 g_width=4, d_width=4, watch_every=10, collapse_ratio=0.5))
    watcher = GANWatcher(m)
    real = torch.rand(16, 1, 8, 8)
    state = TrainState(10, 0.0, {"loss": 1.0}, m, {}, tmp_path, 0, batch=(real, None))
    watcher.on_step_end(state)  # an untrained G draws alike images: not a collapse
    assert state.warnings == []
    watcher.most_diverse = 1.5  # ... but a G that had drawn diverse images and lost it is
    state.step = 20
    watcher.on_step_end(state)
    assert len(state.warnings) == 1 and "collapsing" in state.warnings[0]
    # an unconditional GAN is pointed at conditioning first, at start and in the warning
    assert "fix: --self-condition 10 (clusters, no labels)" in state.warnings[0]
    assert "note: an unconditional dcgan can collapse" in capsys.readouterr().err
    watcher.on_step_end(state)
    assert capsys.readouterr().err == ""  # said once


def test_sample_label_accepts_the_class_names_of_the_dataset(tmp_path, capsys):
    from PIL import Image

    for cls in ("A", "J"):
        (tmp_path / "letters" / cls).mkdir(parents=True)
        for i in range(10):
            pixels = (np.random.default_rng(i).random((8, 8)) * 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "letters" / cls / f"{i}.png")
    run = tmp_path / "run"
    assert main(["train", "vae", "--data", f"folder:{tmp_path / 'letters'}", "--conditional",
                 "--steps", "1", "--kl-warmup-steps", "0", "--out", str(run),
                 *TINY_VAE]) == 0
    assert json.loads((run / "run.json").read_text())["data"]["class_names"] == ["A", "J"]
    for label in ("J", "j", "1"):
        assert main(["sample", str(run), "-n", "3", "--label", label,
                     "-o", str(tmp_path / "s.npz")]) == 0
        assert np.load(tmp_path / "s.npz")["y"].tolist() == [1, 1, 1]
    capsys.readouterr()
    assert main(["sample", str(run), "--label", "Q", "-o", str(tmp_path / "q.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert "'Q' is not one of the run's classes" in err and "A, J" in err and "\n" not in err


def test_classify_prints_progress_without_a_terminal(tmp_path, capsys):
    assert main(["classify", "--task", "0-vs-1", "--data", "digits", "--classifiers",
                 "nb,logreg", "--n-test", "20", "--out", str(tmp_path / "c")]) == 0
    err = capsys.readouterr().err
    assert "classify [1/2]: fitting naive-bayes on" in err
    assert "classify [2/2]: logreg n=" in err and "fitted in" in err
