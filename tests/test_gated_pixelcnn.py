"""Gated PixelCNN on tiny CPU configs: exact normalisation, causality, no blind spot,
incremental sampler == naive sampler, completion, save/load, CLI training."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

import genvision
import pixel_checks as pc
from genvision.cli import main
from genvision.errors import UserError
from genvision.models.gated_pixelcnn import GatedPixelCNN, GatedPixelCNNConfig, _RowCache

TINY = {"hidden": 6, "layers": 2, "kernel": 3, "input_kernel": 3,
        "out_hidden": 12}
HEADS = {  # name -> config fields and the number of levels of its data
    "bernoulli": ({}, 2),
    "categorical": ({"data_kind": "grey8", "head": "categorical", "levels": 4}, 4),
    "logistic": ({"data_kind": "grey8", "head": "logistic_mixture", "levels": 4,
                  "n_mix": 2}, 4),
    "rgb-categorical": ({"channels": 3, "data_kind": "rgb8", "head": "categorical",
                         "levels": 3}, 3),
    "rgb-logistic": ({"channels": 3, "data_kind": "rgb8", "head": "logistic_mixture",
                      "levels": 2, "n_mix": 2}, 2),
}


def make(image_size=(5, 5), **kw) -> GatedPixelCNN:
    return GatedPixelCNN(GatedPixelCNNConfig(**{**TINY, "image_size": image_size, **kw}))


def images(model, n=4, seed=0) -> torch.Tensor:
    """Random images on the model's levels."""
    g = torch.Generator().manual_seed(seed)
    levels = getattr(model.head, "levels", 2)
    k = torch.randint(levels, (n, *model.config.shape), generator=g)
    return k.float() / (levels - 1)


@pytest.mark.parametrize("head,size", [("bernoulli", (3, 3)), ("categorical", (2, 2)),
                                       ("rgb-categorical", (1, 2)), ("rgb-logistic", (1, 2))])
def test_probabilities_sum_to_one(head, size):
    fields, levels = HEADS[head]
    assert pc.total_probability(make(size, **fields), levels) == pytest.approx(1, abs=1e-5)


def test_probabilities_sum_to_one_per_class():
    m = make((3, 3), num_classes=3)
    for y in range(3):
        assert pc.total_probability(m, 2, y) == pytest.approx(1, abs=1e-5)


@pytest.mark.parametrize("head", list(HEADS))
def test_causal_and_no_blind_spot(head):
    """Parameters of (pixel i, channel c) see every earlier value and nothing else.

    With a first kernel of 3 and 4 layers the receptive field spans 5 rows up and 4
    columns either side, so in a 5x5 image *every* earlier value is in it -- including the
    region above and to the right that the original PixelCNN's stacked masks never reach.
    """
    fields, _ = HEADS[head]
    size = (4, 4) if fields.get("channels") == 3 else (5, 5)
    deps = pc.dependency_map(make(size, **{**fields, "layers": 4}))
    pc.assert_causal(deps)
    assert pc.unseen_earlier(deps) == []


def test_paper_variant_without_vertical_residual():
    m = make((5, 5), layers=4, vertical_residual=False)
    deps = pc.dependency_map(m)
    pc.assert_causal(deps)
    assert pc.unseen_earlier(deps) == []
    assert pc.total_probability(make((3, 3), vertical_residual=False), 2) == \
        pytest.approx(1, abs=1e-5)
    m = make((5, 6), layers=3, vertical_residual=False).eval()
    assert torch.equal(m.sample(4, generator=torch.Generator().manual_seed(0), cached=False),
                       m.sample(4, generator=torch.Generator().manual_seed(0)))


def test_conditional_is_causal_and_labels_matter():
    m = make((4, 4), num_classes=3, layers=4).double()
    y = torch.tensor([0, 1, 2])
    deps = pc.dependency_map(m, y=y)
    pc.assert_causal(deps)
    assert pc.unseen_earlier(deps) == []
    x = images(m, 3).double()
    assert not torch.allclose(m.log_prob(x, y), m.log_prob(x, y.roll(1)))


def test_receptive_field_is_limited_by_depth():
    """One 3x3 layer: the vertical stack reaches 2 rows up, the horizontal 1 pixel left."""
    deps = pc.dependency_map(make((5, 5), layers=1))
    pc.assert_causal(deps)
    seen = deps[4 * 5 + 2, 0]  # pixel (4, 2)
    assert seen[2:4, 1:4].all() and seen[4, 1]
    assert not seen[:2].any() and not seen[:, 0].any() and not seen[:, 4].any()


@pytest.mark.parametrize("head", ["bernoulli", "logistic", "rgb-categorical"])
def test_loss_is_mean_negative_log_prob(head):
    fields, _ = HEADS[head]
    m = make((6, 5), **fields)
    x = images(m, 5)
    out = m.loss(x)
    assert torch.allclose(out["loss"], -m.log_prob(x).mean())
    assert out["bits_per_dim"] == pytest.approx(out["loss"].item() / (m.config.dims
                                                                      * 0.6931471805599453))
    out["loss"].backward()
    assert all(p.grad is not None for p in m.parameters())
    assert (m.log_prob(x) <= 0).all()


@pytest.mark.parametrize("case", ["bernoulli", "categorical", "rgb-categorical", "rgb-logistic",
                                  "conditional"])
def test_cached_sampler_equals_naive(case):
    fields = {"num_classes": 3} if case == "conditional" else HEADS[case][0]
    m = make((6, 7), **{**fields, "layers": 3, "input_kernel": 5}).eval()
    a = m.sample(5, generator=torch.Generator().manual_seed(1), cached=False)
    b = m.sample(5, generator=torch.Generator().manual_seed(1), cached=True)
    assert torch.equal(a, b)
    c = m.sample(5, generator=torch.Generator().manual_seed(2))
    assert not torch.equal(a, c)
    levels = getattr(m.head, "levels", 2)
    assert a.shape == (5, *m.config.shape)
    assert torch.allclose(a * (levels - 1), (a * (levels - 1)).round())


@pytest.mark.parametrize("case", ["bernoulli", "rgb-categorical", "conditional"])
def test_completion_keeps_kept_values_and_matches_naive(case):
    fields = {"num_classes": 3} if case == "conditional" else HEADS[case][0]
    m = make((6, 5), **{**fields, "layers": 3}).eval()
    x = images(m, 4, seed=3)
    keep = torch.zeros(1, *m.config.shape, dtype=torch.bool)
    keep[:, :, :3] = True        # top half
    keep[:, 0, 4, 2] = True      # and one value further down (partly kept pixel for RGB)
    y = torch.tensor([0, 1, 2, 0]) if case == "conditional" else None
    a = m.complete(x, keep, y, generator=torch.Generator().manual_seed(0), cached=False)
    b = m.complete(x, keep, y, generator=torch.Generator().manual_seed(0), cached=True)
    assert torch.equal(a, b)
    k = keep.expand_as(x)
    assert torch.equal(a[k], x[k])


@pytest.mark.parametrize("case", ["bernoulli", "rgb-logistic", "conditional"])
def test_row_cache_reproduces_the_full_network(case):
    """The cached per-column computation gives the parameters of a full pass."""
    fields = {"num_classes": 3} if case == "conditional" else HEADS[case][0]
    m = make((5, 6), **{**fields, "layers": 3, "input_kernel": 5}).eval()
    x = images(m, 3, seed=1)
    y = torch.tensor([2, 0, 1]) if case == "conditional" else None
    with torch.no_grad():
        full = m.params(x, y)
        cache = _RowCache(m, x.clone(), y)
        for i in range(5):
            cache.row = i
            cache.start_row(i)
            for j in range(6):
                assert torch.allclose(cache.column(j), full[:, :, i, j], atol=1e-5), (i, j)
            cache.end_row(i)


def test_sampling_leaves_the_global_rng_and_training_mode_alone():
    m = make((4, 4))
    state = torch.get_rng_state()
    m.sample(2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(state, torch.get_rng_state()) and m.training
    figs = m.figures(images(m, 3))
    assert figs["completions"].shape == (12, 1, 4, 4)


def test_save_load_round_trip(tmp_path):
    m = make((6, 6), num_classes=2, seed=4, **HEADS["categorical"][0]).eval()
    m.save_pretrained(tmp_path / "g")
    m2 = genvision.load(tmp_path / "g")
    assert isinstance(m2, GatedPixelCNN) and m2.config == m.config
    x, y = images(m, 3), torch.tensor([0, 1, 1])
    assert torch.equal(m.log_prob(x, y), m2.log_prob(x, y))
    assert torch.equal(m.sample(2, generator=torch.Generator().manual_seed(0)),
                       m2.sample(2, generator=torch.Generator().manual_seed(0)))
    assert not torch.equal(m.log_prob(x, y), make((6, 6), num_classes=2, seed=5,
                                                  **HEADS["categorical"][0]).log_prob(x, y))


def test_rgb_widths_round_up_to_channel_groups():
    m = make((3, 3), channels=3, data_kind="rgb8", hidden=8, out_hidden=8)
    assert m.p == 9 and m.out1.out_channels == 9
    assert torch.isfinite(m.loss(images(m, 2))["loss"])


def test_bad_inputs_raise_user_error():
    m = make((5, 5))
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
    c = make((5, 5), num_classes=2)
    with pytest.raises(UserError, match="needs labels"):
        c.loss(torch.zeros(2, 1, 5, 5))
    with pytest.raises(UserError, match="out of range"):
        c.sample(2, torch.tensor([0, 2]))
    with pytest.raises(UserError, match="kernel"):
        make(kernel=4)
    with pytest.raises(UserError, match="layers"):
        make(layers=0)
    with pytest.raises(UserError, match="Bernoulli head models binary"):
        make(data_kind="grey8", head="bernoulli")


def test_registered_and_config_help():
    assert "gated-pixelcnn" in genvision.list_models()
    for f in dataclasses.fields(GatedPixelCNNConfig):
        assert f.metadata.get("help") or f.metadata.get("cli") is False, f.name
    assert GatedPixelCNN.likelihood_kind == "exact"


def test_cli_train_and_exact_nll(tmp_path, capsys):
    out = tmp_path / "g"
    assert main(["train", "gated-pixelcnn", "--data", "digits", "--steps", "30",
                 "--hidden", "8", "--layers", "2", "--out-hidden", "8",
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
