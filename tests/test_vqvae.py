"""VQ-VAE (models/vqvae.py, nn/vector_quantizer.py): the codebook's maths, the
straight-through estimator, the prior's normalisation, the bound, sampling and the two
training stages of one run."""

from __future__ import annotations

import json
import math

import pytest
import torch

from genvision.errors import UserError
from genvision.evaluation.evaluate import EvalOptions, describe, evaluate_terms
from genvision.models.protocol import OptimizerSpec, Phase
from genvision.models.sampling import SampleRNG
from genvision.models.vqvae import VQVAE, VQVAEConfig
from genvision.nn.vector_quantizer import VectorQuantizer, codebook_usage, ema_codebook
from genvision.train import TrainConfig, TrainData, load_training_state, train
from genvision.train.metrics_log import MetricsLog
from genvision.train.phases import PhaseRunner

#: a tiny model: 8x8 images, two stride-2 stages -> a 2x2 code map of K = 2 codes
TINY = {"hidden": (4, 6), "res_blocks": 1, "codebook_size": 2, "embedding_dim": 3,
        "prior_hidden": 4, "prior_layers": 2, "prior_out_hidden": 6, "prior_embedding": 3,
        "prior_input_kernel": 3}


def tiny(**overrides) -> VQVAE:
    fields = {"image_size": (8, 8), **TINY, **overrides}
    return VQVAE(VQVAEConfig(**fields))


def perturbed(model: VQVAE, scale: float = 0.5) -> VQVAE:
    """Weights far from the initialisation so every input moves the outputs."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale)
        model.quantizer.codebook.normal_(generator=g)
    return model


def binary(n: int, seed: int = 0, side: int = 8) -> torch.Tensor:
    return (torch.rand(n, 1, side, side, generator=torch.Generator().manual_seed(seed))
            > 0.5).float()


# ----- the codebook ---------------------------------------------------------------------------
def test_perplexity_and_usage_of_known_assignments():
    perp, used = codebook_usage(torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]), 8)
    assert perp == pytest.approx(4.0) and used == 4  # uniform over 4 codes
    perp, used = codebook_usage(torch.tensor([[5, 5], [5, 5]]), 8)
    assert perp == pytest.approx(1.0) and used == 1
    # p = (1/2, 1/4, 1/4): H = 1.5 ln 2, perplexity 2**1.5
    perp, used = codebook_usage(torch.tensor([0, 0, 1, 2]), 3)
    assert perp == pytest.approx(2 ** 1.5) and used == 3


def test_nearest_code_assignment_is_the_euclidean_argmin():
    g = torch.Generator().manual_seed(0)
    vq = VectorQuantizer(7, 5)
    vq.codebook.copy_(torch.randn(7, 5, generator=g))
    z = torch.randn(2, 5, 3, 4, generator=g) * 2
    q = vq(z)
    flat = z.permute(0, 2, 3, 1).reshape(-1, 5)
    want = torch.cdist(flat, vq.codebook).argmin(1).view(2, 3, 4)
    assert torch.equal(q.codes, want)
    assert torch.allclose(q.z_q, vq.codebook[want].permute(0, 3, 1, 2))
    # commitment: ||z_e - e||^2 summed over the code map, per image
    dist2 = (flat - vq.codebook[want.reshape(-1)]).pow(2).sum(1).view(2, -1).sum(1)
    assert torch.allclose(q.commitment, dist2)


def test_ema_update_follows_the_formula_on_a_tiny_case():
    vq = VectorQuantizer(2, 2, decay=0.9, eps=0.1, restart_threshold=0.0)
    vq.codebook.copy_(torch.tensor([[0.0, 0.0], [10.0, 10.0]]))
    vq.count.copy_(torch.tensor([2.0, 4.0]))
    vq.total.copy_(torch.tensor([[0.0, 0.0], [40.0, 40.0]]))
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [9.0, 9.0]]).t().reshape(1, 2, 1, 3)
    q = vq(z)
    assert q.codes.tolist() == [[[0, 0, 1]]]
    assert vq.update(q) == 0
    # N = 0.9 N + 0.1 n; m = 0.9 m + 0.1 sum; Nbar = (N + eps) / (sum N + K eps) * sum N
    n0, n1 = 0.9 * 2 + 0.1 * 2, 0.9 * 4 + 0.1 * 1
    m0, m1 = 0.1 * 1.0, 0.9 * 40 + 0.1 * 9
    tot = n0 + n1
    nbar0, nbar1 = (n0 + 0.1) / (tot + 0.2) * tot, (n1 + 0.1) / (tot + 0.2) * tot
    assert torch.allclose(vq.count, torch.tensor([n0, n1]))
    assert torch.allclose(vq.total, torch.tensor([[m0, m0], [m1, m1]]))
    assert torch.allclose(vq.codebook, torch.tensor([[m0 / nbar0] * 2, [m1 / nbar1] * 2]))
    # the function the module uses, on the same numbers
    _, _, book = ema_codebook(torch.tensor([2.0, 4.0]), torch.tensor([[0.0, 0], [40, 40]]),
                              torch.tensor([2.0, 1.0]), torch.tensor([[1.0, 1], [9, 9]]),
                              0.9, 0.1)
    assert torch.allclose(book, vq.codebook)


def test_forward_never_changes_the_codebook():
    vq = VectorQuantizer(4, 2)
    before = {k: v.clone() for k, v in vq.state_dict().items()}
    vq.train()
    vq(torch.randn(3, 2, 2, 2))
    assert all(torch.equal(before[k], v) for k, v in vq.state_dict().items())


def test_dead_codes_are_reseeded_from_the_batch():
    vq = VectorQuantizer(3, 2, decay=0.9, eps=1e-5, restart_threshold=1.0)
    vq.codebook.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0], [100.0, 100.0]]))
    vq.count.copy_(torch.tensor([5.0, 5.0, 1.05]))
    vq.total.copy_(vq.codebook * vq.count[:, None])
    z = torch.tensor([[0.1, 0.0], [0.9, 1.0], [0.0, 0.2], [1.1, 0.9]]).t().reshape(1, 2, 2, 2)
    torch.manual_seed(0)
    assert vq.update(vq(z)) == 1  # code 2: count 0.9 * 1.05 < 1 after an unused step
    rows = z.permute(0, 2, 3, 1).reshape(-1, 2)
    assert any(torch.equal(vq.codebook[2], r) for r in rows)
    assert vq.count[2] == 1.0 and torch.equal(vq.total[2], vq.codebook[2])
    assert vq.count[0] > 1 and vq.count[1] > 1  # used codes are kept
    assert vq.codebook[0].abs().max() < 0.5 and (vq.codebook[1] - 1).abs().max() < 0.5


def test_the_first_update_seeds_every_code_with_distinct_batch_vectors():
    vq = VectorQuantizer(4, 3)  # counts start at 0: every code is dead
    z = torch.randn(2, 3, 3, 3, generator=torch.Generator().manual_seed(2))
    assert vq.update(vq(z)) == 4
    rows = z.permute(0, 2, 3, 1).reshape(-1, 3)
    picked = [int((rows == c).all(1).nonzero()[0, 0]) for c in vq.codebook]
    assert len(set(picked)) == 4


# ----- gradients --------------------------------------------------------------------------------
def test_the_straight_through_gradient_reaches_every_encoder_parameter():
    model = tiny()
    x = binary(4)
    q = model.encode_codes(x)
    distortion = -model._log_px(model.decode(q.z_q), x).mean()
    distortion.backward()  # the reconstruction loss alone
    for name, p in model.encoder.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_the_stage1_loss_is_distortion_plus_beta_commitment():
    model = tiny(commitment=0.7)
    x = binary(4)
    out = model.autoencoder_loss(x)
    assert out["loss"].item() == pytest.approx(
        (out["distortion"] + 0.7 * out["commitment"]).item(), rel=1e-6)
    z_e = model.encoder(2 * x - 1)
    codes = model.quantizer(z_e).codes
    e = model.quantizer.codebook[codes].permute(0, 3, 1, 2)
    assert out["commitment"].item() == pytest.approx(
        (z_e - e).pow(2).sum((1, 2, 3)).mean().item(), rel=1e-5)


# ----- the prior and the bound ---------------------------------------------------------------
def all_code_maps(k: int, h: int, w: int) -> torch.Tensor:
    grid = torch.cartesian_prod(*[torch.arange(k)] * (h * w))
    return grid.reshape(-1, h, w)


@pytest.mark.parametrize("classes", [0, 3])
def test_the_prior_normalises_over_every_code_map(classes):
    model = perturbed(tiny(num_classes=classes)).double().eval()
    codes = all_code_maps(2, 2, 2)  # K = 2 codes on a 2x2 map: 16 maps
    values = model.prior.to_values(codes).double()
    for label in range(max(classes, 1)):
        y = torch.full((16,), label) if classes else None
        with torch.no_grad():
            total = model.prior.log_prob(values, y).exp().sum()
        assert abs(float(total) - 1.0) < 1e-9


def test_a_conditional_prior_depends_on_the_label():
    model = perturbed(tiny(num_classes=3)).eval()
    x = binary(4)
    rates = [model.rate_distortion(x, torch.full((4,), k))[1] for k in range(3)]
    assert not torch.allclose(rates[0], rates[1]) and not torch.allclose(rates[1], rates[2])
    assert torch.allclose(model.loss(x, torch.full((4,), 2))["rate"], rates[2].mean())


def exact_log_px(model: VQVAE, x: torch.Tensor) -> torch.Tensor:
    """log p(x) = log sum_z p(z) p(x|z) by enumerating every code map: [N]."""
    h, w = model.config.code_shape
    codes = all_code_maps(model.config.codebook_size, h, w)
    with torch.no_grad():
        log_pz = model.prior.log_prob(model.prior.to_values(codes).to(x.dtype))
        params = model.decode(model.quantizer.lookup(codes))
        joint = torch.stack([log_pz + model._log_px(params, xi.expand(len(codes), -1, -1, -1))
                             for xi in x])
    return torch.logsumexp(joint, 1)


def test_the_bound_is_above_the_exact_nll_by_minus_log_posterior_of_the_code():
    model = perturbed(tiny()).double().eval()
    x = binary(6).double()
    exact = exact_log_px(model, x)
    distortion, rate = model.rate_distortion(x)
    assert (distortion >= 0).all() and (rate >= 0).all()
    bound = -model.log_prob(x)
    assert torch.allclose(bound, distortion + rate)
    assert (bound >= -exact - 1e-9).all()
    # the gap is -log p(z*|x), the posterior of the encoder's code under the model
    codes = all_code_maps(2, 2, 2)
    z_star = model.encode_codes(x).codes
    idx = [int((codes == z).flatten(1).all(1).nonzero()[0, 0]) for z in z_star]
    with torch.no_grad():
        log_pz = model.prior.log_prob(model.prior.to_values(codes).double())
        params = model.decode(model.quantizer.lookup(codes))
        for i, xi in enumerate(x):
            joint = log_pz + model._log_px(params, xi.expand(16, -1, -1, -1))
            posterior = joint[idx[i]] - torch.logsumexp(joint, 0)
            assert float(bound[i] + exact[i]) == pytest.approx(-float(posterior), abs=1e-9)


def test_loss_reports_the_bound_as_rate_plus_distortion():
    model = perturbed(tiny()).eval()
    x = binary(5)
    out = model.loss(x)
    distortion, rate = model.rate_distortion(x)
    assert out["loss"].item() == pytest.approx((distortion + rate).mean().item(), rel=1e-5)
    assert out["rate"].item() == pytest.approx(rate.mean().item(), rel=1e-5)
    proto = model.likelihood_protocol()
    assert proto["kind"] == "bound" and proto["code_map"] == [2, 2]


def test_evaluate_reports_distortion_and_rate_beside_the_bound():
    model = perturbed(tiny()).eval()
    x = binary(7)
    assert model.supports("likelihood_terms")
    terms = evaluate_terms(model, x, None, EvalOptions(batch_size=3), device=torch.device("cpu"))
    distortion, rate = model.rate_distortion(x)
    assert terms["distortion"] == pytest.approx(distortion.mean().item(), rel=1e-6)
    assert terms["rate"] == pytest.approx(rate.mean().item(), rel=1e-6)
    assert sum(terms.values()) == pytest.approx(-model.log_prob(x).mean().item(), rel=1e-6)
    entry = {"kind": "likelihood", "protocol": model.likelihood_protocol(), "data": {},
             "split": "test", "n": 7, "nll_nats": 50.0, "nll_nats_stderr": 1.0,
             "bits_per_dim": 1.0, "seed": 0, "time_s": 0.0, "terms_nats": terms}
    assert f"(distortion {terms['distortion']:.2f} + rate {terms['rate']:.2f})" in describe(entry)


# ----- sampling ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "channels"), [("binary", 1), ("grey8", 1), ("rgb8", 3)])
def test_samples_have_the_data_shape_and_values(kind, channels):
    model = perturbed(tiny(data_kind=kind, channels=channels, image_size=(12, 8))).eval()
    x = model.sample(5, generator=SampleRNG(range(5)))
    assert x.shape == (5, channels, 12, 8) and x.min() >= 0 and x.max() <= 1
    assert torch.equal(x[2:], model.sample(3, generator=SampleRNG(range(2, 5))))
    lp = model.log_prob(x)
    assert lp.shape == (5,) and (lp <= 0).all()
    if kind == "binary":
        assert set(x.unique().tolist()) <= {0.0, 1.0}
    else:
        assert torch.equal(x, (x * 255).round() / 255)


def test_the_code_prior_cached_sampler_equals_the_naive_one():
    model = perturbed(tiny(codebook_size=5, image_size=(16, 12), num_classes=2)).eval()
    prior, y = model.prior, torch.tensor([0, 1, 1, 0])
    a = prior.sample_cached(4, y, SampleRNG(range(4)))
    b = prior.sample_naive(4, y, SampleRNG(range(4)))
    assert torch.equal(a, b) and len(prior.to_codes(a).unique()) > 1


# ----- training ----------------------------------------------------------------------------------
def test_a_phase_runs_only_in_its_steps():
    p = torch.nn.Parameter(torch.zeros(()))
    ran = []

    def loss(x, y, ctx):
        ran.append(ctx.step)
        return (p - 1) ** 2, {"loss": (p - 1) ** 2}

    phase = Phase("late", [p], OptimizerSpec(lr=0.1), loss, steps=(2, 4))
    runner = PhaseRunner([phase], torch.device("cpu"), False, 0.0, 1)
    for step in range(6):
        runner.step(torch.zeros(1), None, step, lambda what: None)
    assert ran == [2, 3]
    with pytest.raises(ValueError):
        Phase("bad", [p], OptimizerSpec(), loss, steps=(3, 3))


def test_a_logging_window_across_the_stage_switch_averages_each_term_over_its_steps(tmp_path):
    log = MetricsLog(tmp_path, main=False)
    for step in range(4):  # two stage-1 steps, then two stage-2 steps
        log.add({"loss": 10.0, "distortion": 8.0} if step < 2 else {"loss": 4.0, "rate": 4.0},
                64, 0.1)
    assert log.means() == {"loss": 7.0, "distortion": 8.0, "rate": 4.0}


def _run(out, steps, resume=False):
    model = tiny(ae_steps=3)
    x = binary(24)
    cfg = TrainConfig(steps=steps, batch_size=6, checkpoint_every=1, log_every=1,
                      progress=False, ema_decay=0.0)
    train(model, TrainData(x=x), cfg, out, resume=resume)
    return model


def test_stage1_trains_the_autoencoder_then_stage2_only_the_prior(tmp_path):
    m3 = _run(tmp_path / "a", 3)
    init = tiny(ae_steps=3)
    same = lambda a, b: all(torch.equal(u, v) for u, v in zip(a, b, strict=True))  # noqa: E731
    assert same(m3.prior.state_dict().values(), init.prior.state_dict().values())
    assert not same(m3.encoder.parameters(), init.encoder.parameters())
    assert not torch.equal(m3.quantizer.codebook, init.quantizer.codebook)
    m5 = _run(tmp_path / "b", 5)
    for part in ("encoder", "decoder", "quantizer"):
        assert same(getattr(m3, part).state_dict().values(),
                    getattr(m5, part).state_dict().values()), part
    assert not same(m3.prior.parameters(), m5.prior.parameters())
    lines = [json.loads(s) for s in (tmp_path / "b" / "metrics.jsonl").read_text().split("\n")
             if s]
    train_lines = [r for r in lines if r.get("split") == "train"]
    assert {"distortion", "perplexity", "codes_used"} <= set(train_lines[0])
    assert "rate" in train_lines[-1] and "distortion" not in train_lines[-1]


def test_a_run_resumed_across_the_stage_boundary_equals_an_uninterrupted_one(tmp_path):
    _run(tmp_path / "a", 5)
    _run(tmp_path / "b", 2)
    _run(tmp_path / "b", 3, resume=True)
    sa, sb = load_training_state(tmp_path / "a"), load_training_state(tmp_path / "b")
    assert sorted(sa.tensors) == sorted(sb.tensors)
    for key in sa.tensors:
        assert torch.equal(sa.tensors[key], sb.tensors[key]), key


# ----- bad input ---------------------------------------------------------------------------------
def test_too_small_images_and_wrong_data_kinds_are_refused_in_one_line():
    with pytest.raises(UserError, match="at least 8 pixels"):
        VQVAEConfig(image_size=(4, 4), hidden=(4, 4, 4))
    with pytest.raises(UserError, match="continuous"):
        tiny(data_kind="continuous")
    with pytest.raises(UserError, match="does not fit"):
        tiny(data_kind="grey8", likelihood="bernoulli")
    with pytest.raises(UserError, match=r"codebook_size"):
        VQVAEConfig(codebook_size=1000)
    model = tiny()
    with pytest.raises(UserError, match=r"\[0, 1\]"):
        model.log_prob(binary(2) * 2)
    assert math.isfinite(float(model.log_prob(binary(2)).sum()))
