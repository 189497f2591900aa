"""The KL = maximum-likelihood check of genvision.theory (exact enumeration, 2x2 images)."""

import json
import math

import pytest
import torch

from genvision.cli import main
from genvision.theory import FVSBN, BernoulliMixture, all_states, exact_terms, fit
from genvision.theory.kl_mle import entropy, target_distribution


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


@pytest.mark.parametrize("argv", [["theory", "nope"], ["theory", "kl-mle", "--steps", "-1"],
                                  ["theory", "kl-mle", "--family", "gan"]])
def test_cli_bad_input_is_one_line_exit_2(argv, capsys, tmp_path):
    assert main([*argv, "--out", str(tmp_path / "o")] if argv[1] == "kl-mle" else argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err
    assert not (tmp_path / "o").exists()
