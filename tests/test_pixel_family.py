"""What Gated PixelCNN and PixelRNN Row LSTM share, checked once for both on tiny CPU
configs: exact normalisation (also per class), loss == mean -log_prob, cached sampler ==
naive sampler, completion, RNG hygiene, save/load, bad input, registration, CLI training.
Their own structure (blind spot or none, receptive fields, row caches) is tested in
test_gated_pixelcnn.py and test_row_lstm.py."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

import genvision
import pixel_checks as pc
from genvision.cli import main
from genvision.errors import UserError
from genvision.models.pixel_base import PixelSampler

NAIVE = PixelSampler(cached=False)  # the reference sampler

FAMILY_NAMES = list(pc.FAMILIES)
# Deeper gated stacks exercise the cache's layer-to-layer bookkeeping; the Row LSTM's
# two layers already do.
SAMPLER_DEPTH = {"gated-pixelcnn": {"layers": 3}, "row-lstm": {}}
family = pytest.mark.parametrize("name", FAMILY_NAMES)


@family
@pytest.mark.parametrize("head,size", [("bernoulli", (3, 3)), ("categorical", (2, 2)),
                                       ("rgb-categorical", (1, 2)), ("rgb-logistic", (1, 2))])
def test_probabilities_sum_to_one(name, head, size):
    fields, levels = pc.HEADS[head]
    total = pc.total_probability(pc.make(name, size, **fields), levels)
    assert total == pytest.approx(1, abs=1e-5)


@family
def test_probabilities_sum_to_one_per_class(name):
    m = pc.make(name, (3, 3), num_classes=3)
    for y in range(3):
        assert pc.total_probability(m, 2, y) == pytest.approx(1, abs=1e-5)


@family
@pytest.mark.parametrize("head", ["bernoulli", "logistic", "rgb-categorical"])
def test_loss_is_mean_negative_log_prob(name, head):
    fields, _ = pc.HEADS[head]
    m = pc.make(name, (6, 5), **fields)
    x = pc.images(m, 5)
    out = m.loss(x)
    assert torch.allclose(out["loss"], -m.log_prob(x).mean())
    assert out["bits_per_dim"] == pytest.approx(out["loss"].item() / (m.config.dims
                                                                      * 0.6931471805599453))
    out["loss"].backward()
    assert all(p.grad is not None for p in m.parameters())
    assert (m.log_prob(x) <= 0).all()


@family
@pytest.mark.parametrize("case", ["bernoulli", "categorical", "rgb-categorical", "rgb-logistic",
                                  "conditional"])
def test_cached_sampler_equals_naive(name, case):
    fields = {"num_classes": 3} if case == "conditional" else pc.HEADS[case][0]
    m = pc.make(name, (6, 7), **{**fields, **SAMPLER_DEPTH[name], "input_kernel": 5}).eval()
    a = m.sample(5, generator=torch.Generator().manual_seed(1), sampler=NAIVE)
    b = m.sample(5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    c = m.sample(5, generator=torch.Generator().manual_seed(2))
    assert not torch.equal(a, c)
    levels = getattr(m.head, "levels", 2)
    assert a.shape == (5, *m.config.shape)
    assert torch.allclose(a * (levels - 1), (a * (levels - 1)).round())


@family
@pytest.mark.parametrize("case", ["bernoulli", "rgb-categorical", "conditional"])
def test_completion_keeps_kept_values_and_matches_naive(name, case):
    fields = {"num_classes": 3} if case == "conditional" else pc.HEADS[case][0]
    m = pc.make(name, (6, 5), **{**fields, **SAMPLER_DEPTH[name]}).eval()
    x = pc.images(m, 4, seed=3)
    keep = torch.zeros(1, *m.config.shape, dtype=torch.bool)
    keep[:, :, :3] = True        # top half
    keep[:, 0, 4, 2] = True      # and one value further down (partly kept pixel for RGB)
    y = torch.tensor([0, 1, 2, 0]) if case == "conditional" else None
    a = m.complete(x, keep, y, generator=torch.Generator().manual_seed(0), sampler=NAIVE)
    b = m.complete(x, keep, y, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    k = keep.expand_as(x)
    assert torch.equal(a[k], x[k])


@family
def test_sampling_leaves_the_global_rng_and_training_mode_alone(name):
    m = pc.make(name, (4, 4))
    state = torch.get_rng_state()
    m.sample(2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(state, torch.get_rng_state()) and m.training
    figs = m.figures(pc.images(m, 3))
    assert figs["completions"].shape == (12, 1, 4, 4)


@family
def test_save_load_round_trip(name, tmp_path):
    categorical = pc.HEADS["categorical"][0]
    m = pc.make(name, (6, 6), num_classes=2, seed=4, **categorical).eval()
    m.save_pretrained(tmp_path / "m")
    m2 = genvision.load(tmp_path / "m")
    assert type(m2) is type(m) and m2.config == m.config
    x, y = pc.images(m, 3), torch.tensor([0, 1, 1])
    assert torch.equal(m.log_prob(x, y), m2.log_prob(x, y))
    assert torch.equal(m.sample(2, generator=torch.Generator().manual_seed(0)),
                       m2.sample(2, generator=torch.Generator().manual_seed(0)))
    other = pc.make(name, (6, 6), num_classes=2, seed=5, **categorical)
    assert not torch.equal(m.log_prob(x, y), other.log_prob(x, y))


@family
def test_bad_inputs_raise_user_error(name):
    m = pc.make(name, (5, 5))
    with pytest.raises(UserError, match=r"\[0, 1\]"):
        m.log_prob(torch.full((2, 1, 5, 5), 2.0))
    with pytest.raises(UserError, match=r"\[0, 1\]"):
        m.loss(torch.full((2, 1, 5, 5), -0.5))
    with pytest.raises(UserError, match=r"shape \[N, 1, 5, 5\]"):
        m.loss(torch.zeros(2, 1, 4, 5))
    with pytest.raises(UserError, match="unconditional"):
        m.log_prob(torch.zeros(2, 1, 5, 5), torch.tensor([0, 1]))
    with pytest.raises(UserError, match="unconditional"):
        m.sample(2, torch.tensor([0, 1]))
    c = pc.make(name, (5, 5), num_classes=2)
    with pytest.raises(UserError, match="needs labels"):
        c.loss(torch.zeros(2, 1, 5, 5))
    with pytest.raises(UserError, match="out of range"):
        c.sample(2, torch.tensor([0, 2]))
    with pytest.raises(UserError, match="kernel"):
        pc.make(name, kernel=4)
    with pytest.raises(UserError, match="layers"):
        pc.make(name, layers=0)
    with pytest.raises(UserError, match="Bernoulli head models binary"):
        pc.make(name, data_kind="grey8", head="bernoulli")


@family
def test_registered_and_config_help(name):
    cls, config = pc.FAMILIES[name]
    assert name in genvision.list_models()
    for f in dataclasses.fields(config):
        assert f.metadata.get("help") or f.metadata.get("cli") is False, f.name
    assert cls.likelihood_kind == "exact"


@family
def test_cli_train_and_exact_nll(name, tmp_path, capsys):
    out = tmp_path / "run"
    layers = "2" if name == "gated-pixelcnn" else "1"
    assert main(["train", name, "--data", "digits", "--steps", "30",
                 "--hidden", "8", "--layers", layers, "--out-hidden", "8",
                 "--log-every", "10", "--no-progress", "--out", str(out)]) == 0
    lines = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines()]
    train = [v["loss"] for v in lines if v["split"] == "train"]
    assert train[-1] < train[0]
    assert (out / "samples.png").exists() and (out / "completions.png").exists()
    assert main(["evaluate", str(out), "--metrics", "nll", "--n", "50"]) == 0
    assert "bits/dim" in capsys.readouterr().out
    entry = json.loads((out / "metrics.json").read_text())["evaluations"][-1]
    assert entry["protocol"]["kind"] == "exact" and entry["n"] == 50
    assert entry["protocol"]["likelihood"] == "bernoulli"
