"""Pixel heads (exact per-value likelihoods, sampling) and causal convolution masks."""

from __future__ import annotations

import math

import pytest
import torch

from genvision.models.pixel_heads import (
    BernoulliHead,
    CategoricalHead,
    LogisticMixtureHead,
    make_head,
)
from genvision.nn.masked import CausalConv2d, causal_mask, channel_groups


def _all_values(levels: int) -> torch.Tensor:
    """Every value of one channel, as an image batch [L, 1, 1, 1]."""
    return (torch.arange(levels, dtype=torch.float64) / (levels - 1)).view(-1, 1, 1, 1)


def _params(head, n_rows: int, seed: int, scale: float = 2.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n_rows, head.params_per_channel, 1, 1, generator=g,
                       dtype=torch.float64) * scale


# ----- masks ----------------------------------------------------------------------------------
def test_mask_shapes_and_spatial_pattern():
    m = causal_mask((5, 5), 2, 4, 1, "A")
    assert m.shape == (4, 2, 5, 5)
    assert m[:, :, :2].eq(1).all() and m[:, :, 2, :2].eq(1).all()          # above, left
    assert m[:, :, 2, 2].eq(0).all()                                        # A: no centre
    assert m[:, :, 2, 3:].eq(0).all() and m[:, :, 3:].eq(0).all()           # right, below
    b = causal_mask((3, 3), 4, 4, 1, "B")
    assert b[:, :, 1, 1].eq(1).all() and int(b[0, 0].sum()) == 5
    assert causal_mask((1, 1), 3, 6, 1, "B").eq(1).all()


def test_channel_groups_rgb_centre_masks():
    assert channel_groups(6, 3).tolist() == [0, 0, 1, 1, 2, 2]
    with pytest.raises(ValueError, match="multiple"):
        channel_groups(8, 3)
    a = causal_mask((3, 3), 3, 6, 3, "A")[:, :, 1, 1]   # raw R, G, B in; 2 features per group
    assert a.tolist() == [[0, 0, 0], [0, 0, 0], [1, 0, 0], [1, 0, 0], [1, 1, 0], [1, 1, 0]]
    b = causal_mask((1, 1), 6, 3, 3, "B")[:, :, 0, 0]
    assert b.tolist() == [[1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]]
    # every non-centre tap above / left sees all channel groups
    assert causal_mask((3, 3), 3, 6, 3, "A")[:, :, 0].eq(1).all()
    with pytest.raises(ValueError, match="odd"):
        causal_mask((2, 3), 1, 1)
    with pytest.raises(ValueError, match="mask_type"):
        causal_mask((3, 3), 1, 1, 1, "C")  # type: ignore[arg-type]


def test_causal_conv_masks_weights_and_output():
    torch.manual_seed(0)
    conv = CausalConv2d(1, 4, 5, mask_type="A")
    assert conv.weight[:, :, 2, 2:].eq(0).all() and conv.weight[:, :, 3:].eq(0).all()
    assert "mask" not in conv.state_dict()
    x = torch.randn(1, 1, 6, 6, requires_grad=True)
    conv(x)[0, :, 3, 2].sum().backward()
    g = x.grad[0, 0]
    flat = g.flatten()
    assert flat[3 * 6 + 2:].eq(0).all()        # the pixel itself and everything after it
    assert g[1:3, 0:5].ne(0).all() and g[3, :2].ne(0).all()


# ----- heads ----------------------------------------------------------------------------------
@pytest.mark.parametrize("head", [CategoricalHead(4), CategoricalHead(256),
                                  LogisticMixtureHead(3, 4), LogisticMixtureHead(5, 256)],
                         ids=["cat4", "cat256", "mix4", "mix256"])
def test_heads_normalise_over_all_levels(head):
    lv = head.levels
    x = _all_values(lv)
    for seed, scale in ((0, 1.0), (1, 5.0), (2, 20.0)):
        p = _params(head, 1, seed, scale).expand(lv, -1, -1, -1)
        lp = head.log_prob(p, x)
        assert lp.shape == (lv,) and torch.isfinite(lp).all()
        assert lp.exp().sum().item() == pytest.approx(1.0, abs=1e-6)


def test_logistic_mixture_extreme_scales_and_edges():
    head = LogisticMixtureHead(2, 256)
    x = _all_values(256)
    p = torch.tensor([0.0, 0.0, -30.0, 30.0, -20.0, -20.0], dtype=torch.float64)
    lp = head.log_prob(p.view(1, 6, 1, 1).expand(256, -1, -1, -1), x)
    assert torch.isfinite(lp).all()
    assert lp.exp().sum().item() == pytest.approx(1.0, abs=1e-6)
    # means squashed to 0 and 1, scales clamped at e^-7: each edge bin holds half a
    # logistic's mass below its upper edge 0.5/255
    edge = 0.5 * torch.sigmoid(torch.tensor(0.5 / 255 * math.exp(7.0))).item()
    assert lp[0].exp().item() == pytest.approx(edge, rel=1e-6)
    assert lp[-1].exp().item() == pytest.approx(edge, rel=1e-6)


def test_bernoulli_log_prob_and_split():
    head = BernoulliHead()
    logits = torch.tensor([[[[0.3]]], [[[0.3]]]], dtype=torch.float64)
    lp = head.log_prob(logits, torch.tensor([0.0, 1.0], dtype=torch.float64).view(2, 1, 1, 1))
    assert lp.exp().sum().item() == pytest.approx(1.0, abs=1e-12)
    assert lp[1].item() == pytest.approx(torch.sigmoid(torch.tensor(0.3)).log().item())
    assert head.network_input(torch.tensor([0.0, 1.0])).tolist() == [-1.0, 1.0]
    assert CategoricalHead(4).split(torch.zeros(2, 12, 3, 5), 3).shape == (2, 3, 4, 3, 5)


def _chi2(counts: torch.Tensor, probs: torch.Tensor) -> float:
    expected = probs * counts.sum()
    keep = expected > 5  # the usual chi-square validity rule; pool the rest
    obs = torch.cat([counts[keep], counts[~keep].sum().view(1)])
    exp = torch.cat([expected[keep], expected[~keep].sum().view(1)])
    exp = exp.clamp_min(1e-9)
    return float(((obs - exp) ** 2 / exp).sum()), int(keep.sum())


@pytest.mark.parametrize("head", [BernoulliHead(), CategoricalHead(6), LogisticMixtureHead(3, 8)],
                         ids=["bernoulli", "categorical", "mixture"])
def test_sampling_frequencies_match_log_prob(head):
    levels = getattr(head, "levels", 2)
    n = 40_000
    p = _params(head, 1, seed=3, scale=1.5)
    if isinstance(head, LogisticMixtureHead):  # means spread over the bins, wide scales
        p[0, 6:9] = 0.5
    draws = head.sample_channel(p[:, :, 0, 0].float().expand(n, -1),
                                torch.Generator().manual_seed(0))
    assert draws.shape == (n,)
    idx = torch.round(draws.double() * (levels - 1)).long()
    assert torch.allclose(idx.double() / (levels - 1), draws.double())  # on the grid
    counts = torch.bincount(idx, minlength=levels).double()
    probs = head.log_prob(p.expand(levels, -1, -1, -1), _all_values(levels)).exp()
    stat, dof = _chi2(counts, probs)
    # 99.9% quantile of chi-square with <= 8 degrees of freedom is < 27
    assert dof >= 2 and stat < 27, (counts / n, probs)
    # and a wrong distribution is rejected by the same statistic
    wrong = torch.full_like(probs, 1.0 / levels)
    assert _chi2(counts, wrong)[0] > 100


def test_sampling_is_reproducible_by_generator():
    head = CategoricalHead(16)
    p = torch.randn(50, 16)
    a = head.sample_channel(p, torch.Generator().manual_seed(5))
    b = head.sample_channel(p, torch.Generator().manual_seed(5))
    c = head.sample_channel(p, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_make_head_picks_and_refuses():
    assert isinstance(make_head("binary"), BernoulliHead)
    assert isinstance(make_head("grey8"), CategoricalHead)
    assert make_head("rgb8", "logistic_mixture", levels=16, n_mix=4).params_per_channel == 12
    assert make_head("grey8", "categorical", levels=4).params_per_channel == 4
    with pytest.raises(ValueError, match="binary"):
        make_head("grey8", "bernoulli")
    with pytest.raises(ValueError, match="bernoulli"):
        make_head("binary", "categorical")
    with pytest.raises(ValueError, match="unknown head"):
        make_head("grey8", "gaussian")
    with pytest.raises(ValueError, match="2 levels"):
        CategoricalHead(1)
