"""genvision.distributions: same numbers and draws as the code it replaced, exact normalisation.

The reference implementations are frozen copies in ``tests/legacy_likelihoods.py``.
"""

from __future__ import annotations

import itertools

import pytest
import torch

import legacy_likelihoods as old
from genvision.distributions import (
    Bernoulli,
    Categorical,
    DiscretizedLogistic,
    DiscretizedLogisticMixture,
)
from genvision.models.pixel_heads import BernoulliHead, CategoricalHead, LogisticMixtureHead
from genvision.models.sampling import SampleRNG
from genvision.models.vae import VAE, VAEConfig


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _levels(shape, levels: int, seed: int) -> torch.Tensor:
    return torch.randint(0, levels, shape, generator=_gen(seed)).float() / (levels - 1)


# ----- same numbers as before ----------------------------------------------------------------
def test_bernoulli_matches_vae_and_head_forms():
    logits = torch.randn(4, 3, 1, 6, 5, generator=_gen(0)) * 4
    x = torch.bernoulli(torch.full((4, 1, 1, 6, 5), 0.5), generator=_gen(1))
    new = Bernoulli(logits).log_prob(x)                          # broadcasts over k = 3
    assert new.shape == (4, 3)
    ref_vae = old.vae_bernoulli_log_prob(logits, x).flatten(-3).sum(-1)
    ref_head = old.head_bernoulli_log_prob_map(logits, x.expand_as(logits)).flatten(-3).sum(-1)
    torch.testing.assert_close(new, ref_vae, rtol=1e-5, atol=0)
    torch.testing.assert_close(new, ref_head, rtol=1e-5, atol=0)
    # large logits: no cancellation (the old x*l - softplus(l) gave exactly 0 here)
    assert Bernoulli(torch.tensor(30.0)).log_prob_map(torch.tensor(1.0)).item() < 0


def test_discretized_logistic_matches_the_vae_function():
    g = _gen(2)
    mean = torch.rand(8, 3, 5, 5, generator=g) * 1.4 - 0.2
    log_s = torch.rand(8, 3, 5, 5, generator=g) * 9 - 8                 # [-8, 1]: clamp too
    x = _levels((8, 3, 5, 5), 256, 3)
    x[0, 0, 0] = 0.0
    x[0, 0, 1] = 1.0                                                      # both edge bins
    new = DiscretizedLogistic(mean, log_s).log_prob(x)
    ref = old.vae_discretized_logistic_log_prob(x, mean, log_s).flatten(-3).sum(-1)
    torch.testing.assert_close(new, ref, rtol=1e-5, atol=0)


def test_heads_match_their_old_log_probs():
    g = _gen(4)
    x8 = _levels((3, 3, 4, 4), 256, 5)
    cat = CategoricalHead(256)
    p = torch.randn(3, 3 * 256, 4, 4, generator=g) * 3
    ref = old.head_categorical_log_prob_map(p, x8, 256).flatten(1).sum(1)
    torch.testing.assert_close(cat.log_prob(p, x8), ref, rtol=1e-5, atol=0)
    mix = LogisticMixtureHead(5, 256)
    p = torch.randn(3, 3 * 15, 4, 4, generator=g) * 2
    ref = old.head_mixture_log_prob_map(p, x8, 5, 256).flatten(1).sum(1)
    torch.testing.assert_close(mix.log_prob(p, x8), ref, rtol=1e-5, atol=0)
    xb = torch.bernoulli(torch.full((3, 1, 4, 4), 0.5), generator=g)
    p = torch.randn(3, 1, 4, 4, generator=g) * 3
    ref = old.head_bernoulli_log_prob_map(p, xb).flatten(1).sum(1)
    torch.testing.assert_close(BernoulliHead().log_prob(p, xb), ref, rtol=1e-5, atol=0)


def test_head_draws_follow_the_distributions_inverse_cdf_per_sample():
    """The heads draw one stream per image (models/sampling.py), through the
    distributions' ``from_uniform``: row k equals a lone draw from seed k."""
    g = _gen(6)
    for head in (BernoulliHead(), CategoricalHead(16), LogisticMixtureHead(3, 256)):
        p = torch.randn(8, head.params_per_channel, generator=g) * 2
        batch = head.sample_channel(p, SampleRNG(range(8)))
        rows = torch.cat([head.sample_channel(p[k:k + 1], SampleRNG([k])) for k in range(8)])
        assert torch.equal(batch, rows)


@pytest.mark.parametrize("likelihood", ["bernoulli", "logistic"])
@pytest.mark.parametrize("mean", [False, True])
def test_vae_draws_are_bit_identical(likelihood, mean):
    cfg = {"bernoulli": {}, "logistic": {"likelihood": "logistic", "data_kind": "grey8"}}
    model = VAE(VAEConfig(image_size=(6, 6), latent_dim=2, hidden=(4,), res_blocks=0,
                          fc_dim=8, ar_layers=0, **cfg[likelihood]))
    params = torch.randn(5, 2 if likelihood == "logistic" else 1, 6, 6, generator=_gen(8))
    g_new, g_old = _gen(9), _gen(9)
    new = model._draw(params, g_new, mean)
    assert torch.equal(new, old.vae_draw(likelihood, params, g_old, mean))
    assert torch.equal(torch.rand(3, generator=g_new), torch.rand(3, generator=g_old))


# ----- exact normalisation on tiny cases ------------------------------------------------------
def test_bernoulli_normalises_over_every_2x2_binary_image():
    logits = torch.randn(1, 1, 2, 2, generator=_gen(10), dtype=torch.float64) * 3
    images = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)),
                          dtype=torch.float64).view(16, 1, 2, 2)
    lp = Bernoulli(logits).log_prob(images)
    assert lp.shape == (16,)
    assert lp.exp().sum().item() == pytest.approx(1.0, abs=1e-12)


def _one_pixel_values(levels: int) -> torch.Tensor:
    """Every value of one 8-bit pixel as images [L, 1, 1, 1]."""
    return (torch.arange(levels, dtype=torch.float64) / (levels - 1)).view(-1, 1, 1, 1)


@pytest.mark.parametrize("loc,log_s", [(0.5, -3.0), (0.0, -7.0), (1.0, 0.5), (-2.0, -1.0),
                                       (0.3, 4.0), (0.7, -9.0)])
def test_discretized_logistic_normalises_over_one_8bit_pixel(loc, log_s):
    x = _one_pixel_values(256)
    d = DiscretizedLogistic(torch.tensor(loc, dtype=torch.float64),
                            torch.tensor(log_s, dtype=torch.float64))
    lp = d.log_prob(x)
    assert torch.isfinite(lp).all() and lp.shape == (256,)
    assert lp.exp().sum().item() == pytest.approx(1.0, abs=1e-9)
    # float32 as the models run it
    lp32 = DiscretizedLogistic(torch.tensor(loc), torch.tensor(log_s)).log_prob(x.float())
    assert lp32.double().exp().sum().item() == pytest.approx(1.0, abs=1e-5)


def test_mixture_and_categorical_normalise_over_one_8bit_pixel():
    x = _one_pixel_values(256)
    g = _gen(11)
    shape = (1, 1, 4, 1, 1)                        # [N, C, M, H, W], M = 4 components
    mix = DiscretizedLogisticMixture(torch.randn(shape, generator=g, dtype=torch.float64),
                                     torch.rand(shape, generator=g, dtype=torch.float64),
                                     torch.randn(shape, generator=g, dtype=torch.float64) - 3,
                                     256, dim=2)
    assert mix.log_prob(x).exp().sum().item() == pytest.approx(1.0, abs=1e-9)
    cat = Categorical(torch.randn(1, 1, 256, 1, 1, generator=g, dtype=torch.float64)
                      .expand(256, 1, 256, 1, 1), dim=2)
    assert cat.log_prob(x).exp().sum().item() == pytest.approx(1.0, abs=1e-12)


def test_samples_follow_the_distribution():
    """Empirical frequencies of 20k draws against exp(log_prob), for each distribution."""
    n = 20_000
    bern = Bernoulli(torch.full((n,), 0.8))
    assert bern.sample(_gen(12)).mean().item() == pytest.approx(torch.sigmoid(
        torch.tensor(0.8)).item(), abs=0.015)
    cat = Categorical(torch.tensor([[0.0, 1.0, -1.0, 2.0]]).expand(n, 4), dim=1)
    freq = torch.bincount((cat.sample(_gen(13)) * 3).round().long(), minlength=4) / n
    torch.testing.assert_close(freq, torch.softmax(cat.logits[0], 0), atol=0.015, rtol=0)
    logi = DiscretizedLogistic(torch.full((n,), 0.5), torch.full((n,), -2.0), levels=8)
    vals = logi.sample(_gen(14))
    probs = DiscretizedLogistic(torch.tensor(0.5), torch.tensor(-2.0), levels=8).log_prob_map(
        torch.arange(8) / 7).exp()
    freq = torch.bincount((vals * 7).round().long(), minlength=8) / n
    torch.testing.assert_close(freq, probs, atol=0.015, rtol=0)


def test_values_between_levels_round_to_the_nearest_class():
    """Categorical.index rounds (a value a float pipeline put just below k/(L-1) is class k,
    not k-1); kills ``floor`` in place of ``round``."""
    cat = Categorical(torch.zeros(1, 256), dim=1)
    k = torch.arange(256, dtype=torch.float64)
    for off in (-0.3, -1e-4, 1e-4, 0.3):
        x = ((k + off) / 255).clamp(0, 1)
        assert torch.equal(cat.index(x), k.long())
