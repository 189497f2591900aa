"""genvision translate: the training rows (true pairs for pix2pix, pairs denied for
CycleGAN), training and resuming through the CLI, apply, compare and the run's records."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import genvision
from genvision.apps.common import runs as task_runs
from genvision.apps.translate import data as tdata
from genvision.apps.translate import train as ttrain
from genvision.apps.translate.compare import compare_translations
from genvision.apps.translate.data import (
    PairOptions,
    cycled_indices,
    cyclic_permutation,
    load_sides,
    stack,
)
from genvision.apps.translate.scores import DomainClassifier
from genvision.cli import main

TINY = ["--width", "4", "--depth", "1", "--disc-width", "4", "--disc-layers", "1",
        "--batch-size", "4", "--eval-every", "0", "--checkpoint-every", "1", "--no-progress"]


def val_sides(pair: str):
    return load_sides(PairOptions(pair=pair), "val")


# ----- the rows the loop trains on ----------------------------------------------------------
def test_pix2pix_rows_are_the_true_pairs():
    sides = val_sides("mnist-mnistm")
    x, rows = stack(sides, "pix2pix", seed=0)
    assert torch.equal(x, torch.cat([sides.a.x, sides.b.x], 1)) and "true pairs" in rows["rows"]


def test_cyclegan_on_a_paired_pair_is_denied_every_pair():
    sides = val_sides("mnist-mnistm")
    x, rows = stack(sides, "cyclegan", seed=3)
    a, b = x[:, :1], x[:, 1:]
    assert torch.equal(a, sides.a.x)  # A keeps its order
    perm = torch.from_numpy(cyclic_permutation(len(sides.b), 3))
    assert torch.equal(b, sides.b.x[perm])  # B is the true set, reordered
    assert not (b == sides.b.x).flatten(1).all(1).any()  # no row holds its own counterpart
    assert rows["permutation_seed"] == 3 and "denied" in rows["rows"]
    assert torch.equal(stack(sides, "cyclegan", seed=3)[0], x)
    assert not torch.equal(stack(sides, "cyclegan", seed=4)[0], x)


def test_the_cyclic_permutation_has_no_fixed_point_and_is_a_permutation():
    for n, seed in ((2, 0), (7, 1), (500, 2)):
        p = cyclic_permutation(n, seed)
        assert sorted(p.tolist()) == list(range(n)) and (p != np.arange(n)).all()
    # one cycle through every index
    p, i, seen = cyclic_permutation(50, 0), 0, set()
    while i not in seen:
        seen.add(i)
        i = p[i]
    assert len(seen) == 50


def test_an_unpaired_pair_cycles_its_smaller_side():
    sides = val_sides("digits-mnist")
    na, nb = len(sides.a), len(sides.b)
    assert na < nb
    x, rows = stack(sides, "cyclegan", seed=0)
    assert len(x) == nb and torch.equal(x[:, 1:], sides.b.x)
    idx = cycled_indices(na, nb, 0)
    assert torch.equal(x[:, :1], sides.a.x[torch.from_numpy(idx)])
    counts = np.bincount(idx, minlength=na)
    assert counts.min() >= nb // na and counts.max() <= -(-nb // na)
    assert "smaller side (A) cycled" in rows["rows"]


# ----- training through the CLI -------------------------------------------------------------
@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """Both methods on mnist-mnistm, 2 steps each, into one run."""
    out = tmp_path_factory.mktemp("translate") / "mm"
    assert main(["translate", "train", "--method", "cyclegan", "--pair", "mnist-mnistm",
                 "--steps", "2", "--out", str(out), *TINY]) == 0
    assert main(["translate", "train", "--method", "pix2pix", "--steps", "2", "--out",
                 str(out), *TINY]) == 0
    return out


def test_the_run_records_the_data_protocol_and_each_methods_rows(run):
    info = json.loads((run / "run.json").read_text())
    assert info["task"] == "translate" and info["stage_order"] == ["cyclegan", "pix2pix"]
    data = info["data"]
    assert data["pair"] == "mnist-mnistm" and data["paired"] and data["labelled"]
    assert data["shape"] == [4, 28, 28] and data["split_seed"] == 0
    assert (data["a_channels"], data["b_channels"]) == (1, 3)
    assert "denied" in info["stages"]["cyclegan"]["training_rows"]["rows"]
    assert "true pairs" in info["stages"]["pix2pix"]["training_rows"]["rows"]
    cyc = info["stages"]["cyclegan"]
    assert cyc["train_config"]["lr_schedule"] == "hold-linear"
    assert (cyc["train_config"]["lr"], cyc["train_config"]["beta1"]) == (2e-4, 0.5)
    assert genvision.load(run).name == "pix2pix"  # the last trained method
    assert ttrain.load_translator(run).name == "cyclegan"


def test_cyclegan_trains_on_shuffled_b_of_the_train_split_only(tmp_path, monkeypatch):
    splits, seen = [], {}
    real_pair, real_stage = tdata.domain_pairs.load_domain_pair, task_runs.train_stage

    def spy_pair(name, split, seed=0):
        splits.append(split)
        return real_pair(name, split, seed)

    def spy_stage(model, data, *args, **kwargs):
        seen["x"] = data.x
        return real_stage(model, data, *args, **kwargs)

    monkeypatch.setattr(tdata.domain_pairs, "load_domain_pair", spy_pair)
    monkeypatch.setattr(task_runs, "train_stage", spy_stage)
    assert main(["translate", "train", "--method", "cyclegan", "--pair", "mnist-mnistm",
                 "--steps", "1", "--seed", "5", "--out", str(tmp_path / "r"), *TINY]) == 0
    assert "test" not in splits and "train" in splits  # val validates; test is held out
    train = load_sides(PairOptions(pair="mnist-mnistm"), "train")
    x = (seen["x"] * 255).round().to(torch.uint8)
    assert torch.equal(x[:, :1], train.a.x)
    perm = torch.from_numpy(cyclic_permutation(len(train.b), 5))
    assert torch.equal(x[:, 1:], train.b.x[perm])


def test_resume_continues_a_method_on_the_same_rows(run, tmp_path):
    out = tmp_path / "mm"
    assert main(["translate", "train", "--method", "cyclegan", "--pair", "mnist-mnistm",
                 "--steps", "2", "--seed", "7", "--out", str(out), *TINY]) == 0
    assert main(["translate", "train", "--method", "cyclegan", "--resume", "--steps", "1",
                 "--out", str(out), "--no-progress"]) == 0
    record = json.loads((out / "run.json").read_text())["stages"]["cyclegan"]
    assert record["steps"] == 3 and record["pairing_seed"] == 7
    assert record["train_config"]["seed"] == 7  # the method's own settings, kept


def test_users_sources_train_pix2pix_when_paired(tmp_path):
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (40, 8, 8), dtype=np.uint8)
    np.savez(tmp_path / "a.npz", x=grey)
    np.savez(tmp_path / "b.npz", x=np.stack([255 - grey] * 3, axis=-1))  # [N, H, W, 3]
    out = tmp_path / "run"
    assert main(["translate", "train", "--method", "pix2pix", "--a", f"npz:{tmp_path}/a.npz",
                 "--b", f"npz:{tmp_path}/b.npz", "--paired", "--steps", "1", "--out",
                 str(out), *TINY]) == 0
    data = json.loads((out / "run.json").read_text())["data"]
    assert data["paired"] and data["shape"] == [4, 8, 8] and not data["labelled"]


# ----- apply and compare --------------------------------------------------------------------
def test_apply_writes_translations_in_both_directions(run, tmp_path, capsys):
    digit = tmp_path / "digit.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(digit)
    out = tmp_path / "out"
    assert main(["translate", "apply", str(run), str(digit), "--out", str(out)]) == 0
    assert np.asarray(Image.open(out / "digit_a2b.png")).shape == (28, 28, 3)
    colour = tmp_path / "photo.png"
    Image.fromarray(np.zeros((20, 24, 3), np.uint8)).save(colour)
    assert main(["translate", "apply", str(run), str(colour), "--direction", "b2a",
                 "--out", str(out)]) == 0
    assert np.asarray(Image.open(out / "photo_b2a.png")).shape == (20, 24)  # grey, same size
    assert "trained on 28x28" in capsys.readouterr().out


class _Stub(DomainClassifier):
    """A classifier that answers fixed labels (its features: the first pixels)."""

    def __init__(self, labels: torch.Tensor):
        super().__init__(cnn=None, task="labels", what="stub")  # type: ignore[arg-type]
        self.labels = labels

    def predict(self, x):
        return self.labels[:len(x)]

    def features(self, x):
        return x.flatten(1)[:, :4] + torch.linspace(0, 1, len(x))[:, None]


def test_label_preservation_asks_the_target_domains_classifier(run):
    from genvision.apps.translate.compare import heldout_sides

    test = heldout_sides(PairOptions(pair="mnist-mnistm"), "heldout", 20)
    wrong = (test.a.y + 1) % 10
    # B's classifier answers A's true labels, A's answers wrong ones: a -> b must score 1,
    # b -> a 0, whichever model translates
    clfs = {"a": _Stub(wrong), "b": _Stub(test.a.y)}
    models = {"cyclegan": ttrain.load_translator(run, "cyclegan")}
    results, outputs = compare_translations(models, test, clfs)
    acc = {(r["direction"], r["method"]): r["label_accuracy"] for r in results["rows"]}
    assert acc[("a2b", "identity")] == acc[("a2b", "cyclegan")] == 1.0
    assert acc[("b2a", "identity")] == acc[("b2a", "cyclegan")] == 0.0
    assert {"psnr", "ssim", "fid", "kid_mean", "cycle_l1"} <= set(results["rows"][1])
    assert set(outputs["a2b"]) == {"source", "identity", "cyclegan", "truth"}


def test_fid_is_left_out_for_a_target_whose_classifier_is_at_chance(run):
    from genvision.apps.translate.compare import heldout_sides, table

    test = heldout_sides(PairOptions(pair="mnist-mnistm"), "heldout", 20)
    learned, chance = _Stub(test.a.y), _Stub(test.a.y)
    learned.accuracy, learned.classes = 0.9, 10
    chance.accuracy, chance.classes = 0.12, 10  # below 1.5 / 10: learned nothing
    assert learned.learned and not chance.learned
    models = {"cyclegan": ttrain.load_translator(run, "cyclegan")}
    results, _ = compare_translations(models, test, {"a": chance, "b": learned})
    for r in results["rows"]:
        assert ("fid" in r) == (r["direction"] == "a2b"), r  # into B yes, into A no
    assert results["classifiers"]["a"]["learned"] is False
    assert "FID/KID of translations into A are not reported" in table(results)
    assert "into B are not reported" not in table(results)


def test_compare_prints_identity_beside_every_method_and_records_it(run, capsys):
    assert main(["translate", "compare", str(run), "--n", "24",
                 "--classifier-steps", "5"]) == 0
    text = capsys.readouterr().out
    assert text.count("identity (do nothing)") == 2  # one row per direction
    for words in ("pix2pix (paired)", "CycleGAN (unpaired)", "A → B", "B → A",
                  "trained 5 steps on 4000 mnist-m train images", "label acc."):
        assert words in text, words
    results = json.loads((run / "compare" / "compare.json").read_text())
    methods = {(r["direction"], r["method"]) for r in results["rows"]}
    assert methods == {("a2b", "identity"), ("a2b", "pix2pix"), ("a2b", "cyclegan"),
                       ("b2a", "identity"), ("b2a", "cyclegan")}
    assert Image.open(run / "compare" / "compare.png").height > 8 * 64
    entry = json.loads((run / "metrics.json").read_text())["evaluations"][-1]
    assert entry["task"] == "translate" and entry["method"] == "pix2pix"
    assert "label_accuracy" in entry and "label_accuracy" in entry["identity_baseline"]
    assert main(["report", str(run)]) == 0
    page = (run / "report.html").read_text()
    assert "compare.png" in page and "identity (do nothing)" in page


def test_a_domain_classifier_is_trained_once_and_reused_from_the_cache(tmp_path, monkeypatch):
    from genvision.apps.common.small_cnn import SmallCNN
    from genvision.apps.translate import scores

    sides = val_sides("mnist-mnistm")
    train, test = sides.b.subset(np.arange(64)), sides.b.subset(np.arange(64, 96))
    first = scores.domain_classifier(train, test, 5, cache=tmp_path)
    (file,) = tmp_path.glob("classifier-*.safetensors")

    def no_training(*args, **kwargs):
        raise AssertionError("retrained although the cache holds this classifier")
    fit = SmallCNN.fit
    monkeypatch.setattr(SmallCNN, "fit", no_training)
    again = scores.domain_classifier(train, test, 5, cache=tmp_path)
    x = test.to_float()
    assert torch.equal(again.predict(x), first.predict(x)) and again.accuracy == first.accuracy
    assert torch.allclose(again.features(x), first.features(x))
    with pytest.raises(AssertionError, match="retrained"):  # other steps: another key
        scores.domain_classifier(train, test, 6, cache=tmp_path)
    with pytest.raises(AssertionError, match="retrained"):  # other images: another key
        scores.domain_classifier(sides.b.subset(np.arange(1, 65)), test, 5, cache=tmp_path)
    file.write_bytes(b"not a safetensors file")  # a corrupt cache entry is retrained
    monkeypatch.setattr(SmallCNN, "fit", fit)
    fixed = scores.domain_classifier(train, test, 5, cache=tmp_path)
    assert torch.equal(fixed.predict(x), first.predict(x))  # seeded: the same classifier
    assert len(file.read_bytes()) > 1000
