"""RealNVP and Glow (genvision.models.flow): exact invertibility and log-determinants of
the whole multi-scale flow, a density that integrates to 1, a dequantised bound that is a
bound on the discrete likelihood, actnorm's data init, and sampling temperature."""

from __future__ import annotations

import math

import pytest
import torch
from torch.autograd.functional import jacobian

from genvision.apps.classify import GenBudget, build_classifier, log_prior
from genvision.apps.outliers.likelihood import log_probs as outlier_log_probs
from genvision.errors import UserError
from genvision.models.flow import Glow, RealNVP
from genvision.models.flow_config import FlowSampler, GlowConfig, RealNVPConfig
from genvision.models.sampling import SampleRNG, make_sampler
from genvision.nn.flow_layers import ActNorm

MODELS = {"realnvp": (RealNVP, RealNVPConfig), "glow": (Glow, GlowConfig)}


def build(name: str, shape=(1, 8, 8), kind="binary", scale=0.1, **fields):
    """A small flow with weights moved off the identity initialisation (far enough that
    latents reach |z| ~ 10, as in a trained flow)."""
    cls, config = MODELS[name]
    c, h, w = shape
    model = cls(config(channels=c, image_size=(h, w), data_kind=kind,
                       **{"width": 6, "depth": 2, "net_blocks": 0, "levels": 1,
                          "dequantization": "uniform", **fields}))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale)
    return model.eval()


def binary_images(shape, n=6, seed=0):
    return (torch.rand(n, *shape, generator=torch.Generator().manual_seed(seed)) > 0.5).float()


# ----- the bijection ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-4), (torch.float64, 1e-10)])
def test_x_to_z_to_x_inverts_within_tolerance(name, dtype, tol):
    model = build(name, levels=2).to(dtype)
    v = torch.rand(4, 1, 8, 8, dtype=dtype, generator=torch.Generator().manual_seed(2))
    z, ld = model.flow(v)
    assert z.shape == (4, 64)
    back, ld_inv = model.flow.inverse(z)
    assert (back - v).abs().max() < tol
    assert (ld + ld_inv).abs().max() < 100 * tol  # log-dets of ~100 nats


@pytest.mark.parametrize("name", MODELS)
def test_the_flow_stays_exact_under_bfloat16_autocast(name):
    """``--amp`` autocasts the coupling networks to 16 bits on CUDA (CPU autocast here):
    s and t are computed in bfloat16, but the values the flow carries stay float32, so
    it still inverts and its log-det matches the float32 one closely."""
    model = build(name, levels=2)
    v = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z, ld = model.flow(v)
        back, _ = model.flow.inverse(z)
    assert z.dtype == torch.float32 and (back - v).abs().max() < 1e-4
    assert (ld - model.flow(v)[1]).abs().max() < 0.05 * ld.abs().max()


@pytest.mark.parametrize("name", MODELS)
def test_whole_flow_log_det_equals_autograd_jacobian(name):
    model = build(name, shape=(1, 4, 4)).double()
    v = torch.rand(1, 1, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    _, ld = model.flow(v)
    j = jacobian(lambda t: model.flow(t.reshape(1, 1, 4, 4))[0][0], v.reshape(-1))
    assert torch.allclose(ld[0], torch.linalg.slogdet(j)[1], atol=1e-9)


@pytest.mark.parametrize("name,shape,classes", [("realnvp", (1, 1, 2), 0),
                                                 ("glow", (2, 1, 1), 0),
                                                 ("realnvp", (1, 1, 2), 2)])
def test_the_density_of_a_2d_toy_integrates_to_one(name, shape, classes):
    """Midpoint quadrature of p(v) over the whole support of v (the logit transform's
    inverse lands slightly outside the unit square); the part inside the square, what
    the discrete bins share, is below 1. A conditional model: p(v | y) for one class."""
    model = build(name, shape=shape, levels=0, depth=3, num_classes=classes).double()
    alpha, m = model.config.logit_alpha, 400
    lo, hi = -alpha / (1 - 2 * alpha), (1 - alpha) / (1 - 2 * alpha)
    t = lo + (torch.arange(m, dtype=torch.float64) + 0.5) * (hi - lo) / m
    grid = torch.cartesian_prod(t, t)
    with torch.no_grad():
        y = torch.ones(len(grid), dtype=torch.long) if classes else None
        p = model.log_density(grid.reshape(-1, *shape), y).exp()
    total = float(p.sum()) * ((hi - lo) / m) ** 2
    inside = ((grid >= 0) & (grid <= 1)).all(1)
    assert abs(total - 1) < 2e-3
    assert float(p[inside].sum()) * ((hi - lo) / m) ** 2 < 1


# ----- the dequantised bound -------------------------------------------------------------------
def cell_quadrature(model, m: int = 16):
    """log P(x) and the uniform-dequantisation bound B(x) of every binary 2x2 image by
    midpoint quadrature of log p(v) over each image's cell of the unit cube: [16] each,
    images in ``cartesian_prod`` order."""
    t = (torch.arange(m, dtype=torch.float64) + 0.5) / m
    v = torch.cartesian_prod(*[t] * 4)
    with torch.no_grad():
        logp = model.log_density(v.reshape(-1, 1, 2, 2))
    cell = (v >= 0.5).long() @ torch.tensor([8, 4, 2, 1])  # image index of each point
    logp_x = torch.stack([torch.logsumexp(logp[cell == i], 0) - math.log((cell == i).sum())
                          for i in range(16)]) - 4 * math.log(2)
    bound = torch.stack([logp[cell == i].mean() for i in range(16)]) - 4 * math.log(2)
    return logp_x, bound


def all_binary_2x2() -> torch.Tensor:
    grid = torch.cartesian_prod(*[torch.tensor([0.0, 1.0], dtype=torch.float64)] * 4)
    return grid.reshape(16, 1, 2, 2)


@pytest.mark.parametrize("name", MODELS)
def test_uniform_dequantised_bound_is_a_bound_on_the_discrete_likelihood(name):
    model = build(name, shape=(1, 2, 2), levels=0, depth=3, scale=0.2).double()
    logp_x, bound = cell_quadrature(model)
    assert float(logp_x.exp().sum()) <= 1 + 1e-3  # the bins hold at most all the mass
    assert float(bound.exp().sum()) <= float(logp_x.exp().sum())  # Jensen
    assert (bound <= logp_x + 1e-9).all()
    # the estimator: one noise draw per image averages to the bound ...
    x, reps = all_binary_2x2(), 400
    xr = x.repeat(reps, 1, 1, 1)
    one = model.log_prob(xr, k=1, generator=SampleRNG(range(len(xr)))).view(reps, 16)
    stderr = one.std(0) / math.sqrt(reps)
    assert ((one.mean(0) - bound).abs() < 4 * stderr + 0.01).all()
    # ... and k draws give the importance-weighted bound: higher, still below log P(x)
    many = model.log_prob(xr[:16 * 20], k=64, generator=SampleRNG(range(16 * 20)))
    many = many.view(20, 16)
    se = many.std(0) / math.sqrt(20)
    assert (many.mean(0) > one.mean(0)).all()
    assert (many.mean(0) < logp_x + 4 * se + 0.02).all()


@pytest.mark.parametrize("name", MODELS)
def test_variational_dequantised_bound_sums_to_at_most_one(name):
    model = build(name, shape=(1, 2, 2), levels=0, depth=3, scale=0.2,
                  dequantization="variational").double()
    logp_x, _ = cell_quadrature(model)
    x, reps = all_binary_2x2(), 200
    xr = x.repeat(reps, 1, 1, 1)
    w = model.log_prob(xr, k=1, generator=SampleRNG(range(len(xr)))).view(reps, 16)
    bound = w.mean(0)  # E_q[log p(v) - D log L - log q(u|x)]
    assert float(bound.exp().sum()) <= 1
    assert (bound < logp_x + 0.02).all()
    # the learned q is not uniform, so log q(u|x) is a real term of the bound
    eps = torch.randn(16, 1, 2, 2, dtype=torch.float64)
    assert model.dequantizer(eps, x)[1].abs().mean() > 0.5


@pytest.mark.parametrize("shape", [(1, 2, 2), (2, 1, 1)])
def test_dequantizer_log_q_is_its_change_of_variables_density(shape):
    model = build("realnvp", shape=(1, 4, 4), dequantization="variational").double()
    deq = type(model.dequantizer)(shape, 5, 3).double()  # a fresh one of this shape
    with torch.no_grad():
        for p in deq.parameters():
            p.add_(torch.randn(p.shape, dtype=torch.float64) * 0.3)
    eps = torch.randn(1, *shape, dtype=torch.float64)
    x = torch.ones(1, *shape, dtype=torch.float64)
    u, log_q = deq(eps, x)
    assert ((u > 0) & (u < 1)).all()
    j = jacobian(lambda e: deq(e.reshape(1, *shape), x)[0].reshape(-1), eps.reshape(-1))
    normal = -0.5 * (eps.pow(2).sum() + eps.numel() * math.log(2 * math.pi))
    assert torch.allclose(log_q[0], normal - torch.linalg.slogdet(j)[1], atol=1e-9)


def test_decode_returns_the_bin_each_value_falls_in():
    for kind, bins in (("binary", 2), ("grey8", 256)):
        model = build("glow", shape=(1, 4, 4), kind=kind)
        k = torch.randint(0, bins, (3, 1, 4, 4), generator=torch.Generator().manual_seed(0))
        v = (k + torch.rand(k.shape, generator=torch.Generator().manual_seed(1))) / bins
        x = model.decode(model.flow(v)[0])
        assert torch.allclose(x * (bins - 1), k.float(), atol=1e-3), kind


def test_log_prob_is_the_log_mean_exp_of_the_importance_weights():
    model = build("realnvp", shape=(1, 4, 4))
    x = binary_images((1, 4, 4), 3)
    w = model.bound_samples(x, None, 5, SampleRNG([7, 8, 9]))
    lp = model.log_prob(x, k=5, generator=SampleRNG([7, 8, 9]))
    assert torch.allclose(lp, torch.logsumexp(w, 1) - math.log(5))
    proto = model.likelihood_protocol(k=5)
    assert proto["kind"] == "bound" and proto["k"] == 5 and proto["bins"] == 2
    assert "importance-weighted" in proto["estimator"]
    assert "one noise sample" in model.likelihood_protocol()["estimator"]


def test_eight_bit_data_use_256_bins():
    model = build("glow", shape=(3, 4, 4), kind="rgb8")
    x = torch.randint(0, 256, (2, 3, 4, 4), generator=torch.Generator().manual_seed(0)) / 255
    lp = model.log_prob(x, generator=torch.Generator().manual_seed(0))
    assert model.bins == 256 and torch.isfinite(lp).all() and (lp < 0).all()
    s = model.sample(3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(s, (s * 255).round() / 255)
    assert model.likelihood_protocol()["bins"] == 256


# ----- actnorm's data init ---------------------------------------------------------------------
def test_glow_init_from_data_normalises_every_actnorm_on_the_init_batch():
    model = build("glow", levels=2, scale=0.0)
    outputs = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: outputs.append(out[0]))
             for m in model.modules() if isinstance(m, ActNorm)]
    model.init_from_data(binary_images((1, 8, 8), 64, seed=1))
    for h in hooks:
        h.remove()
    assert len(outputs) == 4  # 2 scales x 2 steps
    for out in outputs:
        assert torch.allclose(out.mean((0, 2, 3)), torch.zeros(out.shape[1]), atol=1e-4)
        assert torch.allclose(out.var((0, 2, 3), unbiased=False),
                              torch.ones(out.shape[1]), atol=1e-3)
    assert Glow.supports("init_from_data")


def test_init_from_data_is_seeded_and_leaves_the_global_rng_alone():
    x = binary_images((1, 8, 8), 40)
    a, b = build("glow", scale=0.0), build("glow", scale=0.0)
    torch.manual_seed(0)
    a.init_from_data(x)
    state = torch.get_rng_state()
    b.init_from_data(x)
    assert torch.equal(state, torch.get_rng_state())
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


# ----- sampling temperature --------------------------------------------------------------------
def test_temperature_scales_the_latents_and_zero_gives_the_mode():
    model = build("glow")
    z1 = model.sample_latents(4, generator=SampleRNG([1, 2, 3, 4]), temperature=1.0)
    zh = model.sample_latents(4, generator=SampleRNG([1, 2, 3, 4]), temperature=0.5)
    assert torch.allclose(zh, 0.5 * z1)
    cold = model.sample(3, generator=torch.Generator().manual_seed(0), sampler=FlowSampler(0.0))
    assert torch.equal(cold, model.sample(3, generator=torch.Generator().manual_seed(5),
                                          sampler=FlowSampler(0.0)))
    assert torch.equal(cold, model.decode(torch.zeros(3, 64)))
    assert make_sampler(model, None, ["temperature=0.7"]) == FlowSampler(0.7)
    with pytest.raises(UserError, match="temperature"):
        make_sampler(model, None, ["temperature=-1"])


def test_a_conditional_flow_samples_its_class_mean_at_temperature_zero():
    model = build("realnvp", num_classes=3)
    y = torch.tensor([0, 1, 2])
    cold = model.sample(3, y, sampler=FlowSampler(0.0))
    assert torch.equal(cold, model.decode(model.prior_mean[y]))
    x = binary_images((1, 8, 8), 3)
    by_class = [model.log_prob(x, torch.full((3,), k), generator=SampleRNG([1, 2, 3]))
                for k in range(3)]  # the same noise: only the class prior differs
    assert not torch.allclose(by_class[0], by_class[1])
    assert torch.isfinite(torch.stack(by_class)).all()


# ----- bad input -------------------------------------------------------------------------------
def test_bad_input_gets_a_one_line_user_error():
    with pytest.raises(UserError, match="divisible by 4.*--levels 1"):
        RealNVPConfig(image_size=(6, 6), levels=2)
    with pytest.raises(UserError, match="dequantize"):
        RealNVP(RealNVPConfig(data_kind="continuous", image_size=(4, 4), levels=1))
    model = build("realnvp")
    with pytest.raises(UserError, match="binary"):
        model.log_prob(torch.full((1, 1, 8, 8), 0.3))
    with pytest.raises(UserError, match="uniform"):
        Glow(GlowConfig(channels=1, image_size=(1, 1), levels=0,
                        dequantization="variational"))


# ----- applications ----------------------------------------------------------------------------
def test_a_flow_is_a_generative_classifier_with_shared_noise_across_classes():
    for name in ("realnvp", "glow"):  # their small classify configs build
        build_classifier(name, 2, (1, 8, 8), budget=GenBudget())
    clf = build_classifier("glow", 2, (1, 8, 8), k=2, budget=GenBudget())
    clf.model = build("glow", num_classes=2)  # trained by fit() in real use
    clf.prior, clf.seed = log_prior(torch.tensor([0, 1, 1]), 2), 0
    x = binary_images((1, 8, 8), 8)
    ll = clf.class_log_likelihoods(x)
    direct = clf.model.log_prob(x, torch.ones(8, dtype=torch.int64), k=2,
                                generator=torch.Generator().manual_seed(0))
    assert torch.allclose(ll[:, 1], direct.double(), atol=1e-4)
    proto = clf.protocol()["likelihood"]
    assert proto["kind"] == "bound" and proto["k"] == 2


def test_outlier_scores_accept_a_flow():
    model = build("realnvp")
    x = binary_images((1, 8, 8), 5)
    lp = outlier_log_probs(model, x, k=3, seed=4)
    want = model.log_prob(x, k=3, generator=torch.Generator().manual_seed(4))
    assert torch.allclose(lp, want.double())
