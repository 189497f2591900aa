"""Tiny-config tests of the VAE family (CPU, a few seconds)."""

import math

import pytest
import torch

import genvision
from genvision.distributions import discretized_logistic_log_prob
from genvision.errors import UserError
from genvision.models.protocol import StepContext
from genvision.models.vae import VAE, VAEConfig, VAESampler

MEANS = VAESampler(decoder="mean")  # pixel means instead of drawn pixels
TINY = {"latent_dim": 4, "hidden": (4, 8), "res_blocks": 1, "fc_dim": 16, "iwae_k_eval": 5,
        "ar_layers": 0}


def make(**kw) -> VAE:
    cfg = {**TINY, **kw}
    return VAE(VAEConfig(**cfg))


def data(kind: str, shape=(1, 8, 8), n=6, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, *shape, generator=g)
    if kind == "binary":
        return torch.bernoulli(x, generator=g)
    if kind in ("grey8", "rgb8"):
        return (x * 255).round() / 255
    return x


@pytest.mark.parametrize("kind,lik", [("binary", "bernoulli"), ("grey8", "logistic"),
                                      ("continuous", "gaussian")])
@pytest.mark.parametrize("ar", [0, 2])
def test_loss_terms_finite(kind, lik, ar):
    m = make(image_size=(8, 8), data_kind=kind, likelihood="auto", ar_layers=ar, ar_channels=8)
    assert m.likelihood == lik
    x = data(kind)
    out = m.loss(x)
    assert set(out) == {"loss", "recon", "kl", "elbo", "beta"}
    for v in out.values():
        assert v.shape == () and torch.isfinite(v)
    assert out["kl"] >= 0
    assert torch.allclose(out["elbo"], -(out["recon"] + out["kl"]))
    out["loss"].backward()
    assert all(p.grad is not None for p in m.parameters() if p.requires_grad)
    lp = m.log_prob(x, k=3)
    assert lp.shape == (6,) and torch.isfinite(lp).all()
    if kind != "continuous":  # discrete likelihoods: log p(x) <= 0
        assert (lp <= 0).all()


def test_conditional_loss_and_iwae_training():
    m = make(num_classes=3, train_k=4)
    x, y = data("binary", (1, 28, 28)), torch.tensor([0, 1, 2, 0, 1, 2])
    out = m.loss(x, y)
    assert torch.isfinite(out["loss"]) and out["loss"].shape == ()
    assert m.log_prob(x, y, k=2).shape == (6,)
    assert m.elbo(x, y).shape == (6,)


def test_discretized_logistic_normalised():
    levels = torch.arange(256).float() / 255
    for mean, log_s in [(0.5, -3.0), (0.0, -5.0), (1.0, 0.5), (0.3, -7.0), (-2.0, -1.0)]:
        lp = discretized_logistic_log_prob(levels, torch.tensor(mean), torch.tensor(log_s))
        assert torch.isfinite(lp).all()
        assert lp.double().exp().sum().item() == pytest.approx(1.0, abs=1e-5)


def test_iwae_bound_ge_elbo_and_grows_with_k():
    torch.manual_seed(0)
    m = make(image_size=(8, 8), kl_warmup_steps=1000)
    # a few gradient steps at beta = 0 (warm-up start) so the posterior carries information
    # and differs from the prior (where all bounds would coincide)
    m.train()
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    protos = data("binary", n=4)  # 4 patterns: a code worth putting in z
    x = protos.repeat(4, 1, 1, 1)
    for _ in range(60):
        opt.zero_grad()
        m.loss(x, step=0)["loss"].backward()
        opt.step()
    m.eval()
    means = {k: torch.stack([m.log_prob(x, k=k, generator=torch.Generator().manual_seed(s))
                             for s in range(5)]).mean().item() for k in (1, 10, 100)}
    elbo = torch.stack([m.elbo(x, generator=torch.Generator().manual_seed(s))
                        for s in range(20)]).mean().item()
    assert means[1] < means[10] < means[100]
    assert means[100] >= elbo
    assert means[1] == pytest.approx(elbo, rel=0.1)  # IWAE-1 is a (noisier) ELBO estimate


def test_log_prob_chunking_invariant():
    m = make(image_size=(8, 8), ar_layers=2, ar_channels=8).eval()
    x = data("binary", n=5)
    full = m.log_prob(x, k=12, generator=torch.Generator().manual_seed(3), chunk=10_000)
    for chunk in (1, 5, 7, 24):
        part = m.log_prob(x, k=12, generator=torch.Generator().manual_seed(3), chunk=chunk)
        assert torch.allclose(full, part, atol=1e-4), chunk


def test_protocol():
    m = make()
    assert VAE.likelihood_kind == "bound"
    assert m.likelihood_protocol(k=1000) == {"kind": "bound", "estimator": "IWAE-1000",
                                             "k": 1000, "likelihood": "bernoulli"}
    assert m.likelihood_protocol(k=1)["estimator"] == "ELBO"
    assert m.likelihood_protocol()["k"] == 5


def test_kl_warmup():
    m = make(beta=2.0, kl_warmup_steps=100)
    x = data("binary", (1, 28, 28))
    m.train()
    assert m.loss(x, step=0)["beta"].item() == 0.0
    assert m.beta_at(50) == pytest.approx(1.0)
    assert m.loss(x, step=100)["beta"].item() == pytest.approx(2.0)
    assert m.beta_at(10_000) == pytest.approx(2.0)
    assert m.beta_at(None) == pytest.approx(2.0)  # no step (evaluation): full beta
    assert m.loss(x)["beta"].item() == pytest.approx(2.0)
    # the loop passes its step through training_loss
    ctx = StepContext(step=25)
    assert m.training_loss(x, None, ctx)["beta"].item() == pytest.approx(0.5)


def test_free_bits_raises_training_loss_only():
    x = data("binary", (1, 28, 28))
    torch.manual_seed(0)
    a = make(kl_warmup_steps=0).loss(x)
    torch.manual_seed(0)
    b = make(kl_warmup_steps=0, free_bits=1.0).loss(x)
    assert torch.allclose(a["elbo"], b["elbo"])
    assert b["loss"] > a["loss"]  # an untrained posterior has KL < 1 nat per dimension


def test_same_seed_same_samples_and_shapes():
    m = make(image_size=(28, 28))
    s1 = m.sample(4, generator=torch.Generator().manual_seed(0))
    s2 = m.sample(4, generator=torch.Generator().manual_seed(0))
    s3 = m.sample(4, generator=torch.Generator().manual_seed(1))
    assert s1.shape == (4, 1, 28, 28)
    assert torch.equal(s1, s2) and not torch.equal(s1, s3)
    assert set(s1.unique().tolist()) <= {0.0, 1.0}  # binary model: binary samples
    means = m.sample(4, generator=torch.Generator().manual_seed(0), sampler=MEANS)
    assert ((means > 0) & (means < 1)).all()


def test_autoregressive_head_is_causal_and_samples():
    m = make(image_size=(8, 8), ar_layers=3, ar_channels=8).eval()
    x = data("binary", n=2)
    z = torch.randn(2, 4)
    base = m._params(m.decode(z), m._ar_context(x))
    x2 = x.clone()
    x2[:, :, 4, 3] = 1 - x2[:, :, 4, 3]  # flip one pixel: only later pixels may change
    moved = (m._params(m.decode(z), m._ar_context(x2)) - base).abs().sum((0, 1)) > 0
    flat = moved.flatten()
    assert not flat[: 4 * 8 + 3 + 1].any() and flat[4 * 8 + 4:].any()
    s1 = m.sample(3, generator=torch.Generator().manual_seed(0))
    s2 = m.sample(3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(s1, s2) and set(s1.unique().tolist()) <= {0.0, 1.0}


def test_ar_sampling_matches_log_prob():
    """Sequential sampling and the parallel likelihood use the same conditionals."""
    m = make(image_size=(8, 8), ar_layers=2, ar_channels=8).eval()
    z = torch.randn(1, 4)
    g = torch.Generator().manual_seed(0)
    x = m.generate(z, generator=g)
    params = m._params(m.decode(z), m._ar_context(x))
    # each drawn pixel had probability > 0 and the per-pixel means agree with a mean=True pass
    means = m.generate(z, generator=torch.Generator().manual_seed(0), mean=True)
    assert torch.allclose(torch.sigmoid(params), means, atol=1e-5)


def test_save_load_round_trip(tmp_path):
    m = make(image_size=(28, 28), num_classes=2, seed=3)
    m.save_pretrained(tmp_path / "vae")
    m2 = genvision.load(tmp_path / "vae")
    assert isinstance(m2, VAE) and m2.config == m.config
    y = torch.tensor([0, 1, 1])
    a = m.eval().sample(3, y, generator=torch.Generator().manual_seed(5))
    b = m2.sample(3, y, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_conditional_samples_differ_by_label():
    m = make(image_size=(8, 8), num_classes=3).eval()
    a = m.sample(4, torch.tensor(0), generator=torch.Generator().manual_seed(0),
                 sampler=MEANS)
    b = m.sample(4, torch.tensor(2), generator=torch.Generator().manual_seed(0),
                 sampler=MEANS)
    assert not torch.allclose(a, b)
    assert m.sample(5, generator=torch.Generator().manual_seed(0)).shape == (5, 1, 8, 8)


@pytest.mark.parametrize("shape,kind", [((1, 8, 8), "binary"), ((1, 25, 25), "grey8"),
                                        ((1, 28, 28), "binary"), ((3, 32, 32), "rgb8")])
def test_image_shapes(shape, kind):
    m = make(channels=shape[0], image_size=shape[1:], data_kind=kind).eval()
    x = data(kind, shape, n=3)
    assert torch.isfinite(m.loss(x)["loss"])
    assert m.log_prob(x, k=2).shape == (3,)
    s = m.sample(2, generator=torch.Generator().manual_seed(0))
    assert s.shape == (2, *shape) and s.min() >= 0 and s.max() <= 1
    if kind != "binary":  # 8-bit samples stay on the 256 levels
        assert torch.allclose(s * 255, (s * 255).round(), atol=1e-4)
    figs = m.figures(x[:3])
    assert figs["reconstructions"].shape == (6, *shape)
    assert torch.equal(figs["reconstructions"][0], x[0])
    assert figs["interpolations"].shape == (8, *shape)


def test_bad_inputs_raise_user_error():
    m = make(image_size=(28, 28))
    with pytest.raises(UserError, match=r"shape \[N, 1, 28, 28\]"):
        m.loss(torch.zeros(2, 1, 8, 8))
    with pytest.raises(UserError, match="unconditional"):
        m.loss(torch.zeros(2, 1, 28, 28), torch.tensor([0, 1]))
    with pytest.raises(UserError, match="unconditional"):
        m.sample(2, torch.tensor([0, 1]))
    with pytest.raises(UserError, match=r"\[0, 1\]"):
        m.log_prob(torch.full((2, 1, 28, 28), 255.0))
    with pytest.raises(UserError, match="does not fit 'grey8'.*logistic"):
        make(data_kind="grey8", likelihood="bernoulli")
    with pytest.raises(UserError, match="does not fit 'binary'"):
        make(data_kind="binary", likelihood="gaussian")
    with pytest.raises(UserError, match="latent_dim"):
        make(latent_dim=0)
    c = make(num_classes=2)
    with pytest.raises(UserError, match="needs labels"):
        c.loss(torch.zeros(2, 1, 28, 28))
    with pytest.raises(UserError, match="out of range"):
        c.sample(2, torch.tensor([0, 5]))


def test_registered_and_config_help():
    import dataclasses

    assert "vae" in genvision.list_models()
    for f in dataclasses.fields(VAEConfig):
        assert f.metadata.get("help") or f.metadata.get("cli") is False, f.name
    assert math.isfinite(make().num_parameters())


def test_autoregressive_head_rgb_logistic():
    m = make(channels=3, image_size=(8, 8), data_kind="rgb8", ar_layers=2, ar_channels=8).eval()
    x = data("rgb8", (3, 8, 8), n=2)
    assert torch.isfinite(m.loss(x)["loss"])
    s = m.sample(2, generator=torch.Generator().manual_seed(0))
    assert s.shape == (2, 3, 8, 8)
    assert torch.allclose(s * 255, (s * 255).round(), atol=1e-4)


def test_input_kind_follows_likelihood():
    assert VAE.input_kind({}) == "binary"
    assert VAE.input_kind({"likelihood": "bernoulli"}) == "binary"
    assert VAE.input_kind({"likelihood": "logistic"}) in ("grey8", "rgb8")
    assert VAE.input_kind({"likelihood": "gaussian"}) == "continuous"
