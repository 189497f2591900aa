"""The KL = maximum-likelihood check of genvision.theory (exact enumeration, 2x2 images)."""

import json
import math

import pytest
import torch

import genvision.theory.kl_mle as km
from genvision.cli import main
from genvision.theory import FVSBN, BernoulliMixture, all_states, exact_terms, fit
from genvision.theory.kl_mle import check_fit, entropy, target_distribution


def test_states_are_every_binary_2x2_image_once():
    s = all_states()
    assert s.shape == (16, 4)
    assert len({tuple(r.tolist()) for r in s}) == 16


@pytest.mark.parametrize("target", ["bars", "random"])
def test_target_is_a_distribution(target):
    p = target_distribution(target, seed=3)
    assert p.shape == (16,) and (p >= 0).all()
    assert math.isclose(float(p.sum()), 1.0, abs_tol=1e-12)


@pytest.mark.parametrize("model", [BernoulliMixture(3, seed=1), FVSBN(seed=1)])
def test_models_are_normalised_over_the_16_states(model):
    with torch.no_grad():
        model.weight_logits.add_(0.7) if isinstance(model, BernoulliMixture) \
            else model.bias.add_(torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64))
    assert math.isclose(exact_terms(model, target_distribution())["total_prob"], 1.0,
                        abs_tol=1e-12)


def test_kl_is_computed_directly_and_matches_a_hand_sum():
    p = target_distribution("random", seed=1)
    model = FVSBN(seed=2)
    t = exact_terms(model, p)
    q = model.log_prob(all_states()).exp().detach()
    by_hand = sum(float(pi * math.log(pi / qi)) for pi, qi in zip(p, q, strict=True) if pi > 0)
    assert math.isclose(t["kl"], by_hand, rel_tol=1e-10)
    assert t["kl"] > 0 and math.isclose(t["entropy"], entropy(p))


@pytest.mark.parametrize("family", ["mixture", "fvsbn"])
@pytest.mark.parametrize("samples", [0, 300])
def test_nll_minus_kl_is_the_data_entropy_and_kl_falls_with_nll(family, samples):
    res = fit(family, target_distribution("bars"), steps=120, lr=0.05, samples=samples)
    rows = res.rows
    assert len(rows) >= 5
    for r in rows:
        assert abs(r["nll_minus_kl"] - r["entropy"]) < 1e-6
        assert abs(r["total_prob"] - 1.0) < 1e-9
    for a, b in zip(rows, rows[1:], strict=False):
        d_kl, d_nll = b["kl"] - a["kl"], b["nll"] - a["nll"]
        assert abs(d_kl - d_nll) < 1e-6  # they move in lock-step ...
        assert (d_kl < 0) == (d_nll < 0)  # ... in the same direction
    assert rows[-1]["kl"] < 0.5 * rows[0]["kl"]  # the fit did learn


class _RandomLogQ(torch.nn.Module):
    """A "model" whose log q is 16 random numbers: no distribution at all."""

    def __init__(self, seed: int = 0):
        super().__init__()
        self.log_q = torch.randn(16, generator=torch.Generator().manual_seed(seed),
                                 dtype=torch.float64) * 3

    def log_prob(self, x):
        return self.log_q[:len(x)]


def test_the_identity_alone_cannot_fail_but_check_fit_does():
    """NLL - KL = H holds for an unnormalised random log q (what the old check tested);
    check_fit's normalisation, KL >= 0 and Pinsker checks reject it."""
    p = target_distribution("bars")
    row = {"step": 0, **exact_terms(_RandomLogQ(), p)}
    assert abs(row["nll_minus_kl"] - row["entropy"]) < 1e-12  # passes for garbage
    assert abs(row["total_prob"] - 1) > 1  # the random "probabilities" sum far from 1
    checks = check_fit([row], p)
    assert checks["nll_minus_kl_is_entropy"][0]
    assert not checks["normalised"][0]
    # a negative KL (possible only for an unnormalised q) is rejected
    row_neg = {**row, "kl": -0.1}
    assert not check_fit([row_neg], p)["kl_nonnegative"][0]


def test_check_fit_rejects_kl_zero_away_from_p_data_and_a_kl_that_does_not_fall():
    p = target_distribution("bars")
    model = FVSBN(seed=1)
    row = {"step": 0, **exact_terms(model, p)}
    good = check_fit([row], p)
    assert all(ok for ok, _ in good.values()), good
    assert row["kl"] >= 2 * row["tv"] ** 2 > 0  # Pinsker, with q != p_D
    # a (wrongly computed) KL of 0 for a model that is not p_D
    assert not check_fit([{**row, "kl": 0.0, "nll_minus_kl": row["nll"]}],
                         p)["kl_zero_only_at_p_data"][0]
    # a "fit" whose KL does not fall
    assert not check_fit([row, dict(row)], p)["kl_falls"][0]
    # p_theta = p_D exactly: KL = 0 = TV
    exact = check_fit([{"step": 0, "kl": 0.0, "tv": 0.0, "total_prob": 1.0,
                        "nll": entropy(p), "entropy": entropy(p),
                        "nll_minus_kl": entropy(p)}], p)
    assert all(ok for ok, _ in exact.values())


@pytest.mark.parametrize("family", ["mixture", "fvsbn"])
@pytest.mark.parametrize("target", ["bars", "random"])
def test_fitted_models_pass_every_check(family, target):
    p = target_distribution(target, seed=2)
    res = fit(family, p, steps=80, lr=0.05)
    checks = check_fit(res.rows, p)
    assert all(ok for ok, _ in checks.values()), checks


def test_cli_exits_1_when_a_check_fails(tmp_path, capsys, monkeypatch):
    """The CLI's status comes from check_fit: a model family whose log q is unnormalised
    makes it exit 1 although NLL - KL = H still holds."""
    class Unnormalised(FVSBN):
        def log_prob(self, x):
            return super().log_prob(x) + 0.5  # every probability times e^0.5

    monkeypatch.setattr(km, "make_model", lambda family, components=2, seed=0:
                        Unnormalised(seed=seed))
    assert main(["theory", "kl-mle", "--steps", "5", "--family", "fvsbn", "--out",
                 str(tmp_path / "kl")]) == 1
    out = capsys.readouterr().out
    assert "normalised: FAILS" in out and "nll_minus_kl_is_entropy: holds" in out


def test_fit_on_exact_expectation_reaches_the_optimum_of_a_full_family():
    # 16 components (one per state) can represent any p_D over 16 states: KL -> 0, NLL -> H
    p = target_distribution("random", seed=0)
    res = fit("mixture", p, steps=1500, lr=0.1, components=16, seed=0)
    assert res.rows[-1]["kl"] < 0.02


def test_cli_prints_table_and_writes_plot(tmp_path, capsys):
    out = tmp_path / "kl"
    assert main(["theory", "kl-mle", "--steps", "40", "--family", "fvsbn", "--out",
                 str(out)]) == 0
    text = capsys.readouterr().out
    assert "KL(p_D||p)" in text and "holds" in text
    assert (out / "kl_mle.png").stat().st_size > 1000
    data = json.loads((out / "kl_mle.json").read_text())
    assert data["max_identity_error"] < 1e-6 and data["fits"]["fvsbn"][-1]["step"] == 40
    assert all(c["passed"] for c in data["checks"]["fvsbn"].values())


@pytest.mark.parametrize("argv", [["theory", "nope"], ["theory", "kl-mle", "--steps", "-1"],
                                  ["theory", "kl-mle", "--family", "gan"]])
def test_cli_bad_input_is_one_line_exit_2(argv, capsys, tmp_path):
    assert main([*argv, "--out", str(tmp_path / "o")] if argv[1] == "kl-mle" else argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err
    assert not (tmp_path / "o").exists()
