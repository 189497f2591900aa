"""The rbm model: Gibbs conditionals, the sampler, the contrastive-divergence gradient,
persistent chains, label units, bad input and the CLI (models/rbm.py).

The partition function and AIS are in ``test_rbm_ais.py``; the shared protocol checks
(save/load, exact resume, seeded samples, ...) in ``test_conformance.py``.
"""

from __future__ import annotations

import json

import pytest
import torch

from genvision.apps.classify.classifiers import build_classifier
from genvision.apps.classify.data import load_task_data
from genvision.apps.classify.generative import GenBudget
from genvision.apps.classify.metrics import accuracy
from genvision.apps.latent_features.extract import check_supported, feature_fn
from genvision.cli import main
from genvision.errors import UserError
from genvision.models import rbm_ais as ais
from genvision.models.base import load
from genvision.models.rbm import RBM, GibbsSampler, RBMConfig
from genvision.models.sampling import SampleRNG, make_sampler, sampler_protocol
from genvision.train import TrainConfig
from genvision.train.phases import Stepper


def tiny(side: int = 3, hidden: int = 4, num_classes: int = 0, seed: int = 0,
         **kw) -> RBM:
    """A side x side RBM in float64 with random weights (std 1) and biases (std 0.5)."""
    model = RBM(RBMConfig(image_size=(side, side), hidden=hidden, num_classes=num_classes,
                          chains=50, burn_in=20, **kw)).double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64)
                    * (1.0 if name in ("W", "U") else 0.5))
    return model


def grid(side: int) -> torch.Tensor:
    return ais.binary_grid(side * side, torch.float64).view(-1, 1, side, side)


def exact_probs(model: RBM, side: int, y: int | None = None) -> torch.Tensor:
    """p(v) (or p(v | y)) of every image, by enumeration."""
    x = grid(side)
    labels = None if y is None else torch.full((len(x),), y)
    with torch.no_grad():
        return torch.softmax(-model.free_energy(x, labels), 0)


# ----- conditionals --------------------------------------------------------------------------
def test_gibbs_conditionals_equal_the_joint_distribution_enumerated():
    model = tiny(num_classes=3)
    hs = ais.binary_grid(4, torch.float64)
    x = grid(3)[[5, 200, 444]]
    v = x.flatten(1)
    with torch.no_grad():
        for y in range(3):
            labels = torch.full((3,), y)
            # p(h | v, y) from exp(-E) over all 16 hidden states, marginal of each unit
            e = -(v @ model.b)[:, None] - hs @ model.c - (v @ model.W) @ hs.T \
                - model.d[y] - hs @ model.U[y]
            post = torch.softmax(-e, 1)  # [3, 16]
            assert torch.allclose(model.hidden_probs(x, labels), post @ hs, atol=1e-12)
        # p(v | h): from exp(-E) over all 512 visible states
        vs = grid(3).flatten(1)
        for h in hs[[0, 6, 15]]:
            p = torch.softmax(vs @ model.b + vs @ model.W @ h, 0)
            assert torch.allclose(model.visible_probs(h[None]).flatten(), p @ vs, atol=1e-12)
        # p(y | v) = sum_h p(v, h, y) / sum_(h, y'): the classification RBM's posterior
        joint = torch.stack([-model.free_energy(x, torch.full((3,), y)) for y in range(3)], 1)
        brute = torch.softmax(joint, 1)
        got = model.label_log_probs(x).exp()
        assert torch.allclose(got, brute, atol=1e-12)
        assert torch.allclose(got.sum(1), torch.ones(3, dtype=torch.float64))
        # and p(y | h) ~ exp(d_y + h.U_y)
        h = hs[[3, 9]]
        assert torch.allclose(torch.softmax(model.label_logits(h), 1),
                              torch.softmax(model.d + h @ model.U.T, 1))


def test_label_log_probs_need_label_units():
    with pytest.raises(UserError, match="unconditional"):
        tiny().label_log_probs(grid(3)[:2])


@pytest.mark.parametrize("y", [None, 1])
def test_gibbs_samples_follow_the_model_distribution(y):
    # a 2x2 RBM: 16 images, so 4,000 independent chains estimate p(v) to ~0.01
    model = tiny(side=2, hidden=3, num_classes=2 if y is not None else 0, seed=5).eval()
    n = 4000
    x = model.sample(n, None if y is None else torch.tensor(y), SampleRNG(range(n)))
    idx = (x.flatten(1) * torch.tensor([8.0, 4.0, 2.0, 1.0], dtype=x.dtype)).sum(1).long()
    freq = torch.bincount(idx, minlength=16).double() / n
    want = exact_probs(model, 2, y)
    tv = 0.5 * float((freq - want).abs().sum())
    assert tv < 0.04, (tv, freq, want)


@pytest.mark.parametrize("num_classes", [0, 2])
def test_the_training_chains_follow_the_joint_distribution(num_classes):
    # the negative phase's chains (global RNG, labels resampled from p(y | h)) reach
    # p(v, y): 4,000 chains of a 2x2 RBM after 30 sweeps, against enumeration
    model = tiny(side=2, hidden=3, num_classes=num_classes, seed=7, gibbs_steps=30)
    torch.manual_seed(0)
    n = 4000
    v0 = torch.zeros(n, 4, dtype=torch.float64)
    y0 = torch.zeros(n, dtype=torch.long) if num_classes else None
    v, y = model._negatives(v0, y0)
    idx = (v * torch.tensor([8.0, 4.0, 2.0, 1.0], dtype=v.dtype)).sum(1).long()
    labels = range(num_classes) if num_classes else [None]
    with torch.no_grad():
        neg_f = torch.cat([-model.free_energy(grid(2), None if k is None else
                                              torch.full((16,), k)) for k in labels])
    want = torch.softmax(neg_f, 0)
    if num_classes:
        idx = idx + 16 * y
    freq = torch.bincount(idx, minlength=len(want)).double() / n
    assert 0.5 * float((freq - want).abs().sum()) < 0.05


def test_a_chain_moves_away_from_its_start_only_after_sweeps():
    model = tiny().eval()
    rng = SampleRNG(range(6))
    start = model.sample(6, generator=rng, sampler=GibbsSampler(burn_in=0))
    again = model.sample(6, generator=SampleRNG(range(6)), sampler=GibbsSampler(burn_in=0))
    later = model.sample(6, generator=SampleRNG(range(6)), sampler=GibbsSampler(burn_in=5))
    assert torch.equal(start, again) and not torch.equal(start, later)
    mean = model.sample(6, generator=SampleRNG(range(6)),
                        sampler=GibbsSampler(burn_in=5, output="mean"))
    assert not torch.equal(mean, later) and ((mean > 0) & (mean < 1)).all()


def test_per_chain_images_are_thinned_states_of_one_chain():
    model = tiny().eval()
    seeds = [10, 11, 12, 13, 14, 15]
    out = model.sample(6, generator=SampleRNG(seeds),
                       sampler=GibbsSampler(burn_in=4, thin=3, per_chain=3))
    # chain 1 (images 0-2) is seeded by image 0's seed: states at sweeps 4, 7, 10
    for j, sweeps in enumerate((4, 7, 10)):
        one = model.sample(1, generator=SampleRNG([10]), sampler=GibbsSampler(burn_in=sweeps))
        assert torch.equal(out[j], one[0]), j
        two = model.sample(1, generator=SampleRNG([13]), sampler=GibbsSampler(burn_in=sweeps))
        assert torch.equal(out[3 + j], two[0]), j
    cond = tiny(num_classes=2).eval()
    with pytest.raises(UserError, match="share a label"):
        cond.sample(4, torch.tensor([0, 1, 0, 1]), sampler=GibbsSampler(per_chain=2))
    assert cond.sample(4, torch.tensor(1), sampler=GibbsSampler(per_chain=2)).shape[0] == 4


def test_sampler_options_from_the_cli_and_in_the_protocol():
    opts = make_sampler(RBM, "gibbs", ["burn_in=7", "thin=2", "per_chain=4", "output=mean"])
    assert opts == GibbsSampler(burn_in=7, thin=2, per_chain=4, output="mean")
    assert sampler_protocol(opts) == {"name": "gibbs", "burn_in": 7, "thin": 2,
                                      "per_chain": 4, "output": "mean"}
    assert GibbsSampler().resolve(tiny()).burn_in == 20  # the model's burn_in
    for bad in (["thin=0"], ["burn_in=-1"], ["per_chain=0"], ["output=max"], ["steps=3"]):
        with pytest.raises(UserError):
            make_sampler(RBM, "gibbs", bad)


def test_complete_keeps_the_given_pixels_and_samples_the_rest():
    model = tiny(side=4, hidden=6).eval()
    x = (torch.rand(5, 1, 4, 4, generator=torch.Generator().manual_seed(0)) > 0.5).double()
    keep = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    keep[..., :2, :] = True
    out = model.complete(x, keep, generator=SampleRNG(range(5)))
    assert torch.equal(out[..., :2, :], x[..., :2, :])
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(out, model.complete(x, keep, generator=SampleRNG(range(5, 10))))


def test_clamped_gibbs_samples_the_conditional_of_the_unknown_pixels():
    model = tiny(side=2, hidden=3, seed=6).eval()
    x = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64).view(1, 1, 2, 2).expand(3000,
                                                                                        -1, -1, -1)
    keep = torch.tensor([True, True, False, False]).view(1, 1, 2, 2)
    out = model.complete(x, keep, generator=SampleRNG(range(3000)))
    idx = (out.flatten(1)[:, 2:] * torch.tensor([2.0, 1.0], dtype=out.dtype)).sum(1).long()
    freq = torch.bincount(idx, minlength=4).double() / 3000
    p = exact_probs(model, 2)[8:12]  # images 10xx: pixels 0, 1 fixed to (1, 0)
    assert 0.5 * float((freq - p / p.sum()).abs().sum()) < 0.04


# ----- the CD gradient --------------------------------------------------------------------------
@pytest.mark.parametrize("num_classes", [0, 3])
def test_the_contrastive_gradient_with_exact_negatives_is_the_nll_gradient(num_classes):
    model = tiny(num_classes=num_classes)
    x = grid(3)[[3, 100, 101, 400, 511]]
    v = x.flatten(1)
    y = torch.tensor([0, 2, 1, 1, 0]) if num_classes else None
    # negatives: every (v, y) state, weighted by its exact joint probability
    vs = grid(3).flatten(1)
    if num_classes:
        v_neg = vs.repeat(num_classes, 1)
        y_neg = torch.arange(num_classes).repeat_interleave(len(vs))
    else:
        v_neg, y_neg = vs, None
    with torch.no_grad():
        weights = torch.softmax(-model._free_energy(v_neg, y_neg), 0)
    model.zero_grad()
    model.contrastive_loss(v, y, v_neg, y_neg, weights).backward()
    cd = {n: p.grad.clone() for n, p in model.named_parameters()}
    # autograd of the exact NLL of the joint: mean F(v, y) + log sum_y Z_y
    model.zero_grad()
    log_z = (torch.logsumexp(torch.stack([model.log_z_exact(k) for k in range(num_classes)]), 0)
             if num_classes else model.log_z_exact())
    (model._free_energy(v, y).mean() + log_z).backward()
    for name, p in model.named_parameters():
        assert torch.allclose(cd[name], p.grad, atol=1e-10), name
        assert p.grad.abs().max() > 1e-3, name  # every parameter is really tested


PATTERNS = torch.tensor([[1, 1, 1, 0, 0, 0, 1, 1, 1], [0, 1, 0, 0, 1, 0, 0, 1, 0],
                         [1, 0, 1, 0, 1, 0, 1, 0, 1]], dtype=torch.float64)


def noisy_patterns(n: int, g: torch.Generator) -> torch.Tensor:
    """3 patterns of 3x3 pixels, each pixel flipped with probability 0.1 (noise keeps the
    modes shallow enough for short chains to move between them, as in real data)."""
    x = PATTERNS[torch.arange(n) % 3]
    flip = torch.rand(x.shape, generator=g, dtype=torch.float64) < 0.1
    return torch.where(flip, 1 - x, x).view(-1, 1, 3, 3)


@pytest.mark.parametrize("training", ["pcd", "cd"])
def test_training_lowers_the_exact_nll(training):
    # end to end through loss(): a sign error anywhere would raise the NLL instead
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    test = noisy_patterns(300, torch.Generator().manual_seed(99))
    model = RBM(RBMConfig(image_size=(3, 3), hidden=8, chains=64, training=training)).double()
    model.init_from_data(noisy_patterns(300, g))

    def nll() -> float:
        with torch.no_grad():
            return float((model.free_energy(test) + model.log_z_exact()).mean())

    before = nll()
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(300):
        opt.zero_grad()
        model.loss(noisy_patterns(32, g))["loss"].backward()
        opt.step()
    assert nll() < before - 0.5, (before, nll())


def test_only_training_mode_pcd_advances_the_persistent_chains():
    model = tiny(num_classes=2)
    x = grid(3)[:8]
    y = torch.arange(8) % 2
    chains = model.chains_v.clone(), model.chains_y.clone()
    model.eval().loss(x, y)  # validation: CD-k from the data, chains untouched
    assert torch.equal(model.chains_v, chains[0]) and torch.equal(model.chains_y, chains[1])
    model.train().loss(x, y)
    assert not torch.equal(model.chains_v, chains[0])
    assert not torch.equal(model.chains_y, chains[1])  # the label units mix too
    cd = tiny(training="cd").train()
    before = cd.chains_v.clone()
    cd.loss(x)
    assert torch.equal(cd.chains_v, before)


def test_init_from_data_sets_the_base_rate_biases_and_chains():
    model = tiny(ais_betas=10)
    x = torch.zeros(10, 1, 3, 3, dtype=torch.float64)
    x[:7, 0, 0, 0] = 1  # pixel 0 on in 70% of the images, the rest never
    torch.manual_seed(0)
    model.init_from_data(x)
    p = torch.sigmoid(model.base_logits)
    assert abs(float(p[0]) - 0.7) < 1e-6 and float(p[1:].max()) < 2e-3
    assert torch.equal(model.b.detach(), model.base_logits)
    assert 0.5 < float(model.chains_v[:, 0].mean()) < 0.9
    assert model.likelihood_protocol()["ais_base"].startswith("base-rate")


def test_loss_terms_and_the_phase_is_not_range_watched():
    model = tiny()
    terms = model.loss(grid(3)[:6])
    assert set(terms) == {"loss", "free_energy", "recon_error"}
    (phase,) = model.phases(TrainConfig())
    assert phase.watched is False
    stepper = Stepper(model, TrainConfig(), torch.device("cpu"))
    stepper.step(grid(3)[:6], None, 0)
    assert stepper.runner.last_losses == {}  # NaN checks only, no range verdicts


def test_figures_show_a_gibbs_chain_filters_and_the_fantasy_particles():
    model = RBM(RBMConfig(image_size=(4, 4), hidden=40, chains=20, burn_in=30)).eval()
    figs = model.figures(torch.zeros(2, 1, 4, 4), generator=torch.Generator().manual_seed(0))
    assert figs["gibbs_chain"].shape == (32, 1, 4, 4)
    assert figs["filters"].shape == (32, 1, 4, 4) and figs["fantasy"].shape == (16, 1, 4, 4)
    for images in figs.values():
        assert images.min() >= 0 and images.max() <= 1
    strip = figs["gibbs_chain"].view(4, 8, 16)
    assert set(strip[:, 0].unique().tolist()) <= {0.0, 1.0}  # the binary start state
    assert "fantasy" not in RBM(RBMConfig(image_size=(4, 4), hidden=4,
                                          training="cd")).figures(torch.zeros(1, 1, 4, 4))


# ----- bad input and the CLI --------------------------------------------------------------------
def test_non_binary_data_is_refused_naming_binarize():
    with pytest.raises(UserError, match="--binarize"):
        RBM(RBMConfig(data_kind="grey8"))
    model = tiny()
    with pytest.raises(UserError, match="binar"):
        model.log_prob(torch.full((2, 1, 3, 3), 0.5, dtype=torch.float64))
    with pytest.raises(UserError, match=r"\[0, 1\]"):
        model.loss(torch.full((2, 1, 3, 3), 2.0, dtype=torch.float64))
    with pytest.raises(UserError, match="at least 2 runs"):
        model.log_prob(grid(3)[:2], k=1)


def test_cli_refuses_grey_levels_in_one_line(tmp_path, capsys):
    code = main(["train", "rbm", "--data", "digits", "--binarize", "none", "--steps", "1",
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--binarize" in err


def test_cli_trains_samples_and_evaluates_a_tiny_rbm(rbm_run, tmp_path, capsys):
    assert (rbm_run / "gibbs_chain.png").is_file() and (rbm_run / "filters.png").is_file()
    assert main(["sample", str(rbm_run), "-n", "4", "--sampler-opt", "burn_in=3",
                 "-o", str(tmp_path / "s.png")]) == 0
    assert main(["evaluate", str(rbm_run), "--metrics", "nll", "--n", "20", "--k", "5",
                 "--split", "test"]) == 0
    entry = json.loads((rbm_run / "metrics.json").read_text())["evaluations"][-1]
    assert entry["protocol"]["kind"] == "estimate" and entry["protocol"]["ais_runs"] == 5
    assert entry["protocol"]["estimator"].startswith("AIS 5 runs x 100 distributions")
    assert main(["evaluate", str(rbm_run), "--metrics", "nll", "--n", "20", "--k", "5",
                 "--ais-betas", "40", "--split", "test"]) == 0
    entry = json.loads((rbm_run / "metrics.json").read_text())["evaluations"][-1]
    assert entry["protocol"]["ais_betas"] == 40 and "x 40 distributions" in capsys.readouterr().out


def test_ais_betas_is_refused_for_a_likelihood_that_is_not_an_ais_estimate():
    from genvision.metrics.likelihood import estimator_kwargs
    from genvision.models.vae import VAE, VAEConfig

    assert estimator_kwargs(tiny(), 3, 40) == {"k": 3, "betas": 40}
    with pytest.raises(UserError, match="drop --ais-betas"):
        estimator_kwargs(VAE(VAEConfig()), None, 40)


# ----- applications -----------------------------------------------------------------------------
def test_a_conditional_rbm_is_a_generative_classifier():
    data = load_task_data("0-vs-1", data="digits", n_test=40)
    clf = build_classifier("rbm", 2, data.shape, budget=GenBudget(
        steps=150, batch_size=32, options={"hidden": 16, "ais_betas": 200, "ais_runs": 10}))
    clf.fit(data.x_train, data.y_train, seed=0)
    ll = clf.class_log_likelihoods(data.x_test)  # log p(x|y) = -F(x, y) - log Z_y (AIS)
    direct = clf.model.log_prob(data.x_test, torch.ones(len(data.x_test), dtype=torch.int64))
    assert torch.allclose(ll[:, 1], direct.double(), atol=1e-4)
    assert clf.protocol()["likelihood"]["kind"] == "estimate"
    assert len(clf.protocol()["likelihood"]["log_z"]) == 2
    assert accuracy(clf.predict_log_proba(data.x_test), data.y_test) > 0.9


@pytest.fixture(scope="module")
def rbm_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("rbm") / "rbm"
    assert main(["train", "rbm", "--data", "digits", "--steps", "60", "--hidden", "16",
                 "--lr", "0.01", "--chains", "20", "--burn-in", "50", "--ais-betas", "100",
                 "--ais-runs", "10", "--no-progress", "--out", str(run)]) == 0
    return run


def test_outliers_scores_an_rbm_run(rbm_run, tmp_path):
    out = tmp_path / "o"
    assert main(["outliers", str(rbm_run), "--ood", "noise", "--n", "40", "--background",
                 "none", "--out", str(out)]) == 0
    result = json.loads((out / "outliers.json").read_text())
    assert result["likelihood"]["kind"] == "estimate"
    # Bernoulli(0.5) noise is far less likely than digits
    assert result["ood"]["noise"]["metrics"]["nll"]["auroc"] > 0.9


def test_features_probe_reads_the_hidden_units(rbm_run, capsys):
    assert main(["features", "probe", str(rbm_run), "--labels", "20", "--seeds", "1",
                 "--map-n", "60", "--kmeans-init", "1", "--no-progress"]) == 0
    assert "rbm: RBM hidden-unit probabilities" in capsys.readouterr().out
    res = json.loads((rbm_run / "probe" / "results.json").read_text())
    assert res["representations"]["latent"]["dim"] == 16
    model = load(rbm_run)
    x = torch.rand(3, 1, 8, 8).round()
    assert torch.equal(feature_fn(model, "rbm")(x), model.hidden_probs(x))
    with pytest.raises(UserError, match="conditional RBM"):
        check_supported("rbm", conditional=True)


def test_a_conditional_rbm_is_evaluated_given_the_label_and_marginally(tmp_path):
    run = tmp_path / "cond"
    assert main(["train", "rbm", "--data", "digits", "--conditional", "--steps", "5",
                 "--hidden", "8", "--chains", "10", "--burn-in", "5", "--ais-betas", "50",
                 "--ais-runs", "5", "--no-progress", "--out", str(run)]) == 0
    assert main(["evaluate", str(run), "--metrics", "nll", "--n", "10",
                 "--split", "test"]) == 0
    given, marginal = json.loads((run / "metrics.json").read_text())["evaluations"][-2:]
    assert given["protocol"]["quantity"] == "-log p(x|y)" and len(given["protocol"]["log_z"]) == 10
    assert marginal["protocol"]["kind"] == "estimate" and "not a bound" in \
        marginal["protocol"]["estimate"]
    assert marginal["protocol"]["quantity"] == "-log p(x)"
