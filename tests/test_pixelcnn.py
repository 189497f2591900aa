"""PixelCNN on tiny configs: exact normalisation, causality, cached == naive sampling,
completion, save/load, the CLI, bad input."""

from __future__ import annotations

import itertools
import json

import pytest
import torch

import genvision
from genvision.cli import main
from genvision.errors import UserError
from genvision.models.pixel_base import PixelSampler
from genvision.models.pixelcnn import PixelCNN, PixelCNNConfig, RowCroppedCausalConv2d
from genvision.nn.masked import CausalConv2d

NAIVE = PixelSampler(cached=False)  # the reference sampler

TINY = {"hidden": 6, "bottleneck": 3, "layers": 2, "out_hidden": 6, "input_kernel": 3}


def make(**kw) -> PixelCNN:
    """A tiny PixelCNN with random weights large enough to make every layer matter
    (the default init is fine for training, but leaves near-uniform conditionals)."""
    model = PixelCNN(PixelCNNConfig(**{**TINY, **kw}))
    g = torch.Generator().manual_seed(kw.get("seed", 0) + 1)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.7)
    return model.eval()


RGB = {"channels": 3, "data_kind": "rgb8", "head": "categorical"}
HEADS = {
    "bernoulli": {},
    "categorical": {"data_kind": "grey8", "head": "categorical", "levels": 4},
    "mixture": {"data_kind": "grey8", "head": "logistic_mixture", "levels": 4, "n_mix": 2},
    "rgb": {**RGB, "levels": 3},
}


def all_images(c: int, h: int, w: int, levels: int) -> torch.Tensor:
    """Every image with ``levels`` values per channel: [levels**(c*h*w), c, h, w] float64."""
    vals = torch.arange(levels, dtype=torch.float64) / (levels - 1)
    grid = torch.tensor(list(itertools.product(range(levels), repeat=c * h * w)))
    return vals[grid].view(-1, c, h, w)


# ----- exact likelihood ------------------------------------------------------------------------
@pytest.mark.parametrize("name,size,levels", [("bernoulli", (3, 3), 2),
                                              ("categorical", (2, 2), 4),
                                              ("mixture", (2, 2), 4),
                                              ("rgb", (1, 2), 3)])
def test_probabilities_of_all_images_sum_to_one(name, size, levels):
    model = make(image_size=size, **HEADS[name]).double()
    x = all_images(model.config.channels, *size, levels)
    lp = model.log_prob(x)
    assert lp.shape == (x.shape[0],) and (lp < 0).all()
    assert lp.exp().sum().item() == pytest.approx(1.0, abs=1e-5)
    assert lp.exp().std() > 1e-4  # not the uniform distribution: the test has teeth


def test_conditional_model_normalises_per_class():
    model = make(image_size=(3, 3), num_classes=3).double()
    x = all_images(1, 3, 3, 2)
    totals = [model.log_prob(x, torch.full((512,), k)).exp().sum().item() for k in range(3)]
    assert totals == pytest.approx([1.0] * 3, abs=1e-5)
    # the label changes the distribution
    a, b = (model.log_prob(x[:8], torch.full((8,), k)) for k in (0, 1))
    assert (a - b).abs().max() > 1e-3


def test_loss_is_mean_negative_log_prob_and_trains():
    torch.manual_seed(0)
    model = PixelCNN(PixelCNNConfig(image_size=(6, 6), **TINY))
    x = torch.bernoulli(torch.full((16, 1, 6, 6), 0.3))
    out = model.loss(x)
    assert set(out) == {"loss", "bits_per_dim"}
    assert torch.allclose(out["loss"], -model.log_prob(x).mean())
    assert out["bits_per_dim"].item() == pytest.approx(out["loss"].item() / (36 * 0.693147),
                                                       rel=1e-4)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = out["loss"].item()
    for _ in range(30):
        opt.zero_grad()
        model.loss(x)["loss"].backward()
        opt.step()
    assert model.loss(x)["loss"].item() < first - 3


# ----- causality -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["bernoulli", "categorical", "mixture", "rgb"])
def test_parameters_depend_only_on_earlier_values(name):
    model = make(image_size=(4, 4), kernel=3, input_kernel=5, hidden=12, bottleneck=6,
                 out_hidden=12, **HEADS[name]).double()
    c, h, w = model.config.shape
    p = model.head.params_per_channel
    jac = 0  # summed over a few inputs, so a path that one input's ReLUs close still counts
    for seed in range(4):
        x = torch.rand(1, c, h, w, dtype=torch.float64,
                       generator=torch.Generator().manual_seed(seed))
        j = torch.autograd.functional.jacobian(lambda v: model.params(v), x)
        jac = jac + j.reshape(c, p, h, w, c, h, w).abs().sum(1)  # [c_out, h, w, c_in, h, w]
    order = torch.arange(h * w * c).view(h, w, c).permute(2, 0, 1)  # raster, then channel
    for co, i, j in itertools.product(range(c), range(h), range(w)):
        me = order[co, i, j]
        g = jac[co, i, j]
        assert g[order >= me].eq(0).all(), (co, i, j)
        if me > 0:
            assert g[order < me].ne(0).any(), (co, i, j)
    # what each value sees: the pixel above and the one to the left ...
    assert jac[0, 2, 2, 0, 1, 2] != 0 and jac[0, 2, 2, 0, 2, 1] != 0
    if c == 3:  # ... and the earlier channels of the same pixel
        assert jac[1, 1, 1, 0, 1, 1] != 0 and jac[2, 1, 1, 1, 1, 1] != 0
        assert jac[2, 1, 1, 0, 1, 1] != 0


# ----- sampling --------------------------------------------------------------------------------
SAMPLERS = [("bernoulli", {}), ("categorical", {}), ("rgb", {"levels": 4}),
            ("conditional", {"num_classes": 3}), ("mixture", {}),
            ("bernoulli", {"kernel": 5, "input_kernel": 7, "layers": 3}),
            ("rgb", {"bottleneck": 0}), ("conditional", {"num_classes": 3, "bottleneck": 0})]


@pytest.mark.parametrize("name,extra", SAMPLERS, ids=["binary", "cat4", "rgb", "conditional",
                                                      "mixture", "k5", "plain-rgb",
                                                      "plain-conditional"])
def test_cached_sampling_equals_naive(name, extra):
    model = make(image_size=(5, 4), **{**HEADS.get(name, {}), **extra})
    n = 6
    naive = model.sample(n, generator=torch.Generator().manual_seed(0), sampler=NAIVE)
    cached = model.sample(n, generator=torch.Generator().manual_seed(0))
    assert naive.shape == (n, *model.config.shape)
    assert torch.equal(naive, cached)
    other = model.sample(n, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(cached, other)
    levels = 2 if model.config.data_kind == "binary" else model.config.levels
    assert torch.equal(torch.round(cached * (levels - 1)) / (levels - 1), cached)


@pytest.mark.parametrize("name", ["bernoulli", "rgb", "conditional"])
def test_completion_cached_equals_naive_and_keeps_values(name):
    extra = {"num_classes": 3} if name == "conditional" else {}
    model = make(image_size=(5, 4), **{**HEADS.get(name, {}), **extra})
    c, h, w = model.config.shape
    y = torch.tensor([0, 1, 2, 2]) if name == "conditional" else None
    x = model.sample(4, y, generator=torch.Generator().manual_seed(3))
    keep = torch.zeros(1, c, h, w, dtype=torch.bool)
    keep[:, :, :2] = True          # top rows (seeded by the full pass)
    keep[:, :, 3, 1] = True        # an isolated kept pixel after drawn ones
    keep[:, :1, 4, 3] = True       # one channel of the last pixel (RGB: R kept, G/B drawn)
    runs = [model.complete(x, keep, y, torch.Generator().manual_seed(s),
                           sampler=PixelSampler(cached=cached))
            for s, cached in ((5, False), (5, True), (6, True))]
    assert torch.equal(runs[0], runs[1])
    k = keep.expand_as(x)
    for out in runs:
        assert torch.equal(out[k], x[k])
    assert not torch.equal(runs[1][~k], runs[2][~k])


def test_completion_draws_from_the_conditional_given_the_kept_part():
    # the first drawn pixel follows p(x_(2,0) | kept top rows), which depends on them
    model = make(image_size=(4, 4))
    keep = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    keep[:, :, :2] = True
    n, probs = 2000, []
    for k, top in enumerate((torch.zeros(1, 1, 4, 4), torch.ones(1, 1, 4, 4))):
        p = torch.sigmoid(model.params(top)[0, 0, 2, 0]).item()
        out = model.complete(top.expand(n, -1, -1, -1), keep,
                             generator=torch.Generator().manual_seed(k))
        assert out[:, 0, 2, 0].mean().item() == pytest.approx(p, abs=4 * (p * (1 - p) / n) ** 0.5
                                                              + 1e-3)
        probs.append(p)
    assert abs(probs[0] - probs[1]) > 0.2


def test_figures_show_completions():
    model = make(image_size=(4, 4))
    x = torch.bernoulli(torch.full((3, 1, 4, 4), 0.5))
    figs = model.figures(x, generator=torch.Generator().manual_seed(0))
    assert figs["completions"].shape == (12, 1, 4, 4)


@pytest.mark.parametrize("k,mask", [(3, "B"), (5, "A"), (7, "A"), (1, "B")])
def test_row_cropped_conv_equals_the_full_masked_conv(k, mask):
    torch.manual_seed(0)
    conv = RowCroppedCausalConv2d(6, 9, k, data_channels=3, mask_type=mask)
    with torch.no_grad():
        conv.weight.normal_()
    x = torch.randn(2, 6, 7, 5)
    assert torch.allclose(conv(x), CausalConv2d.forward(conv, x), atol=1e-5)


# ----- config, save / load, errors ---------------------------------------------------------------
def test_widths_round_up_to_channel_groups():
    model = PixelCNN(PixelCNNConfig(**{**TINY, **RGB, "hidden": 8, "bottleneck": 4,
                                       "levels": 4}))
    assert model.input_conv.out_channels == 9 and model.blocks[0].mid.out_channels == 6
    assert model.out2.out_channels == 12


def test_save_load_round_trip(tmp_path):
    model = make(image_size=(5, 5), num_classes=2)
    model.save_pretrained(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "config.json").read_text())["model"] == "pixelcnn"
    again = genvision.load(tmp_path / "m")
    x = torch.bernoulli(torch.full((4, 1, 5, 5), 0.5))
    y = torch.tensor([0, 1, 1, 0])
    assert torch.equal(model.log_prob(x, y), again.log_prob(x, y))


def test_bad_input_raises_user_error():
    model = make(image_size=(4, 4))
    with pytest.raises(UserError, match=r"\[0, 1\]"):
        model.log_prob(torch.full((2, 1, 4, 4), 2.0))
    with pytest.raises(UserError, match="shape"):
        model.log_prob(torch.zeros(2, 1, 5, 4))
    with pytest.raises(UserError, match="unconditional"):
        model.log_prob(torch.zeros(2, 1, 4, 4), torch.tensor([0, 1]))
    with pytest.raises(UserError, match="unconditional"):
        model.sample(2, y=torch.tensor([0, 1]))
    with pytest.raises(UserError, match="labels"):
        make(image_size=(4, 4), num_classes=2).log_prob(torch.zeros(2, 1, 4, 4))
    with pytest.raises(UserError, match="odd"):
        PixelCNNConfig(kernel=4)
    with pytest.raises(UserError, match="binary data"):
        PixelCNN(PixelCNNConfig(data_kind="grey8", head="bernoulli"))


def test_cli_trains_and_evaluates_exact_nll(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "pixelcnn", "--data", "digits", "--steps", "30", "--batch-size", "32",
            "--hidden", "8", "--bottleneck", "4", "--layers", "2", "--out-hidden", "8",
            "--log-every", "10", "--no-progress", "--out", out]
    assert main([str(a) for a in argv]) == 0
    assert (out / "samples.png").exists() and (out / "completions.png").exists()
    assert main(["evaluate", str(out), "--metrics", "nll", "--n", "50"]) == 0
    assert "bits/dim" in capsys.readouterr().out
    entry = json.loads((out / "metrics.json").read_text())["evaluations"][-1]
    assert entry["n"] == 50 and entry["protocol"]["kind"] == "exact"
    assert entry["protocol"]["likelihood"] == "bernoulli"
    assert 0 < entry["nll_nats"] < 64 * 0.6931472 * 1.5
