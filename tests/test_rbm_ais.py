"""The RBM's partition function: exact enumeration, the free energy, AIS and its error
bar, and the log Z cache (models/rbm_ais.py, RBM.log_z / log_prob).

Tiny RBMs (9 visible units, 4 hidden) with weights of a realistic scale (a hidden unit's
input spans several nats, as in a trained MNIST RBM) so every quantity can be enumerated.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from genvision.models import rbm_ais as ais
from genvision.models.rbm import RBM, RBMConfig

GRID = ais.binary_grid(9, torch.float64).view(-1, 1, 3, 3)  # all 512 images


def tiny(hidden: int = 4, num_classes: int = 0, seed: int = 0, **kw) -> RBM:
    """A 3x3 RBM in float64 with random weights (std 1) and biases (std 0.5)."""
    model = RBM(RBMConfig(image_size=(3, 3), hidden=hidden, num_classes=num_classes,
                          **({"ais_betas": 1000, "ais_runs": 100} | kw))).double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64)
                    * (1.0 if name in ("W", "U") else 0.5))
        model.base_logits.copy_(torch.randn(9, generator=g, dtype=torch.float64) * 0.5)
    return model.eval()


def energy(model: RBM, v: torch.Tensor, h: torch.Tensor, y: int | None = None) -> torch.Tensor:
    """E(v, h, y) written out term by term (v [D], h [H])."""
    e = -(v @ model.b) - (h @ model.c) - v @ model.W @ h
    if y is not None:
        e = e - model.d[y] - h @ model.U[y]
    return e


def test_the_free_energy_is_minus_log_the_sum_over_hidden_states():
    plain, cond = tiny(), tiny(num_classes=3)
    hs = ais.binary_grid(4, torch.float64)
    for i in (0, 77, 300, 511):
        v = GRID[i].flatten()
        for model, y in ((plain, None), (cond, 0), (cond, 2)):
            brute = -torch.logsumexp(torch.stack([-energy(model, v, h, y) for h in hs]), 0)
            yy = None if y is None else torch.tensor([y])
            got = model.free_energy(GRID[i:i + 1], yy)
            assert torch.allclose(got, brute.reshape(1), atol=1e-10), (i, y)


@pytest.mark.parametrize("hidden", [4, 12])
def test_exact_log_z_by_either_layer_equals_the_sum_over_every_joint_state(hidden):
    model = tiny(hidden)  # 4 hidden: enumerates h; 12 hidden: enumerates v
    with torch.no_grad():
        got = float(model.log_z_exact())
        by_v = float(torch.logsumexp(-model.free_energy(GRID), 0))
    assert abs(got - by_v) < 1e-10
    if hidden == 4:  # and against the double sum over (v, h) itself
        hs = ais.binary_grid(4, torch.float64)
        joint = torch.stack([-energy(model, v, h) for v in GRID.flatten(1) for h in hs])
        assert abs(got - float(torch.logsumexp(joint, 0).detach())) < 1e-10


def test_probabilities_with_the_exact_z_sum_to_one_over_all_512_images():
    model = tiny()
    with torch.no_grad():
        log_p = -model.free_energy(GRID) - model.log_z_exact()
    assert abs(float(log_p.exp().sum()) - 1.0) < 1e-12


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ais_agrees_with_the_exact_log_z_within_0_05_nats(seed):
    model = tiny(seed=seed)
    exact = float(model.log_z_exact().detach())
    est = model.log_z()
    assert abs(est.log_z - exact) < 0.05, (est, exact)
    assert 0 < est.stderr < 0.05 and est.runs == 100 and est.betas == 1000
    assert est.interval[1] > est.log_z > est.interval[0]
    # log_prob = -F - log Z-hat: every image off by the same (small) log Z error
    lp = model.log_prob(GRID)
    assert abs(float(lp.exp().sum()) - 1.0) < 0.06


def test_ais_of_a_conditional_rbm_estimates_each_clamped_label_partition_function():
    model = tiny(num_classes=3)
    for y in range(3):
        exact = float(model.log_z_exact(y).detach())
        # p(x | y) sums to 1 over all images with the exact Z_y
        labels = torch.full((512,), y)
        with torch.no_grad():
            total = (-model.free_energy(GRID, labels) - exact).exp().sum()
        assert abs(float(total) - 1.0) < 1e-12
        assert abs(model.log_z(y).log_z - exact) < 0.05
        assert abs(float(model.log_prob(GRID, labels).exp().sum()) - 1.0) < 0.06


def test_ais_is_exact_when_the_model_is_its_base_rate_model():
    # no weights, no hidden biases, visible biases = the base rate: every importance
    # weight is 1, so log Z = log Z_A = H log 2 + sum softplus(b_A) with no error
    model = tiny()
    with torch.no_grad():
        model.W.zero_()
        model.c.zero_()
        model.b.copy_(model.base_logits)
    est = model.log_z()
    want = 4 * math.log(2) + float(torch.nn.functional.softplus(model.base_logits).sum())
    assert abs(est.log_z - want) < 1e-12
    assert abs(float(model.log_z_exact().detach()) - want) < 1e-12
    assert est.stderr < 1e-12 and abs(est.ess - 100) < 1e-9


def test_the_ais_estimate_of_z_is_unbiased():
    # with few distributions log Z-hat scatters widely, but the mean of Z-hat / Z over
    # independent seeds is 1 (unbiased); its log is low on average (Jensen)
    model = tiny(seed=3)
    exact = float(model.log_z_exact().detach())
    W, b, c, base = model.W.detach(), model.b.detach(), model.c.detach(), model.base_logits
    logs = torch.tensor([ais.ais_log_z(W, b, c, base, 50, 20, seed).log_z - exact
                         for seed in range(100)], dtype=torch.float64)
    assert float(logs.std()) > 0.1  # few betas: a noisy estimator, so the test has teeth
    ratio = float(logs.exp().mean())  # its standard error here is about 0.03
    assert abs(ratio - 1.0) < 0.08, ratio
    assert float(logs.mean()) < 0


def test_fewer_distributions_give_a_wider_error_bar():
    model = tiny(seed=4)
    W, b, c, base = model.W.detach(), model.b.detach(), model.c.detach(), model.base_logits
    coarse = ais.ais_log_z(W, b, c, base, 100, 3, 0)
    fine = ais.ais_log_z(W, b, c, base, 100, 1000, 0)
    assert coarse.stderr > 3 * fine.stderr and coarse.ess < fine.ess


@pytest.mark.parametrize("k", [1, 2, 3, 7, 100, 14500])
def test_beta_schedule_runs_from_0_to_1_strictly_increasing(k):
    beta = ais.beta_schedule(k)
    assert beta.shape == (k + 1,) and beta[0] == 0 and beta[-1] == 1
    assert bool((beta.diff() > 0).all())
    if k == 14500:  # Salakhutdinov & Murray's 500 / 4,000 / 10,000 split
        assert beta[500] == 0.5 and abs(float(beta[4500]) - 0.9) < 1e-12


def test_binary_grid_lists_every_vector_once():
    grid = ais.binary_grid(4)
    assert grid.shape == (16, 4)
    assert {tuple(r) for r in grid.int().tolist()} == set(itertools.product((0, 1), repeat=4))


def test_log_z_is_cached_for_the_weights_and_recomputed_when_they_change(monkeypatch):
    model = tiny()
    calls = []
    real = ais.ais_log_z

    def counting(*args, **kw):
        calls.append(args[4:])
        return real(*args, **kw)

    monkeypatch.setattr(ais, "ais_log_z", counting)
    first = model.log_prob(GRID[:5])
    model.log_prob(GRID[5:9])
    assert len(calls) == 1  # one AIS for every batch of one evaluation
    model.likelihood_protocol()
    # the protocol reuses it and adds the quarter schedule of its convergence check
    assert calls[1:] == [(100, 250, 0)]
    model.log_prob(GRID[:5], k=20)
    assert len(calls) == 3 and calls[-1][0] == 20  # other settings: recomputed
    model.log_prob(GRID[:5], betas=50)
    assert len(calls) == 4 and calls[-1][:2] == (100, 50)
    with torch.no_grad():
        model.W[0, 0] += 0.5  # new weights: recomputed, and the result changes
    assert not torch.allclose(model.log_prob(GRID[:5]), first)
    assert len(calls) == 5
    with torch.no_grad():
        model.W[0, 0] -= 0.5  # the old weights again: from the cache
    assert torch.equal(model.log_prob(GRID[:5]), first) and len(calls) == 5


def test_the_protocol_records_the_estimate_its_error_bar_and_settings():
    model = tiny()
    proto = model.likelihood_protocol(k=50)
    assert proto["kind"] == "estimate" == model.likelihood_kind
    assert proto["ais_runs"] == 50 and proto["ais_betas"] == 1000
    assert proto["log_z"] == model.log_z(None, 50).log_z
    assert proto["log_z_stderr"] > 0 and len(proto["log_z_interval_3se"]) == 2
    assert "AIS 50 runs x 1000 distributions" in proto["estimator"]
    assert "not a bound" in proto["note"] and "base-rate" in proto["ais_base"]
    cond = tiny(num_classes=3).likelihood_protocol()
    assert len(cond["log_z"]) == 3 and len(cond["log_z_stderr"]) == 3


def test_a_converged_ais_carries_no_warning_and_its_rise_is_within_noise():
    model = tiny()  # 1,000 distributions on a 9 x 4 RBM: converged (see above)
    proto = model.likelihood_protocol()
    assert "warning" not in proto
    assert proto["ais_log_z_quarter_schedule"] == model.log_z(None, None, 250).log_z
    assert abs(proto["ais_rise_nats"]) < 0.5
    assert proto["ais_rise_nats"] == pytest.approx(
        proto["log_z"] - proto["ais_log_z_quarter_schedule"])


def test_an_unconverged_ais_is_flagged_with_a_fix_that_converges_it():
    """A sharp RBM (large weights) with a 2-distribution schedule: AIS falls far short of
    the exact log Z, the runs agree (small s.e.), and only the rise from the quarter
    schedule reveals it."""
    model = tiny(hidden=12, ais_betas=8, ais_runs=20)
    with torch.no_grad():
        model.W.copy_(torch.randn(model.W.shape, generator=torch.Generator().manual_seed(3))
                      * 4.0)
    exact = float(model.log_z_exact().detach())
    proto = model.likelihood_protocol()
    assert proto["log_z"] < exact - 5.0  # optimistic NLL: log Z far too low ...
    assert proto["log_z_stderr"] < 1.0  # ... and the runs' error bar does not show it
    assert "not converged" in proto["warning"] and "--ais-betas 32" in proto["warning"]
    fixed = model.likelihood_protocol(betas=4000)
    assert "warning" not in fixed and abs(fixed["log_z"] - exact) < 0.5
