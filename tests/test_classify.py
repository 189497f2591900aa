"""genvision classify: Bayes' rule, naive Bayes, metrics, task data and the CLI."""

import json
import math

import numpy as np
import pytest
import torch

from genvision.apps.classify.bayes import (
    BernoulliNaiveBayes,
    class_log_likelihoods,
    log_prior,
    posterior_log_proba,
)
from genvision.apps.classify.classifiers import build_classifier, parse_classifiers
from genvision.apps.classify.data import balanced_order, load_task_data, parse_task
from genvision.apps.classify.experiment import parse_sizes
from genvision.apps.classify.generative import GenBudget
from genvision.apps.classify.metrics import accuracy, expected_calibration_error, log_loss
from genvision.cli import main
from genvision.errors import DataError, UserError


# ----- task names and sizes -----------------------------------------------------------------
def test_parse_task_forms():
    assert parse_task("0-vs-1") == [0, 1]
    assert parse_task("3,5,8") == [3, 5, 8]
    assert parse_task("2-vs-7-vs-9") == [2, 7, 9]
    assert parse_task("ALL") is None
    for bad in ("zero-vs-one", "1-vs-1", "4", ""):
        with pytest.raises(UserError):
            parse_task(bad)


def test_parse_sizes_and_classifiers():
    assert parse_sizes("10, 30,all") == [10, 30, None]
    with pytest.raises(UserError):
        parse_sizes("10,-3")
    assert parse_classifiers("nb,cnn,nb") == ["naive-bayes", "cnn"]
    with pytest.raises(UserError, match="unknown classifier"):
        parse_classifiers("nb,svm")


# ----- Bayes' rule --------------------------------------------------------------------------
def test_posterior_is_normalised_and_stable_for_huge_log_likelihoods():
    # image log-likelihoods are hundreds of nats: exp() would underflow to 0/0 = NaN
    log_lik = torch.tensor([[-900.0, -902.0, -950.0], [-1e4, -1e4, -1e4]])
    prior = torch.log(torch.tensor([0.5, 0.25, 0.25]))
    post = posterior_log_proba(log_lik, prior)
    assert torch.isfinite(post).all()
    assert torch.allclose(post.logsumexp(1), torch.zeros(2, dtype=post.dtype), atol=1e-9)
    # row 0: p(y|x) proportional to p(x|y) p(y) = (1, e^-2 / 2, ~0)
    w = torch.tensor([1.0, math.exp(-2) / 2, 0.0], dtype=post.dtype)
    assert torch.allclose(post[0].exp(), w / w.sum(), atol=1e-6)
    # equal likelihoods: the posterior is the prior
    assert torch.allclose(post[1].exp(), prior.exp().to(post.dtype), atol=1e-6)


def test_log_prior_smoothed_counts():
    prior = log_prior(torch.tensor([0, 0, 0, 1]), 3).exp()
    assert torch.allclose(prior, torch.tensor([4.0, 2.0, 1.0], dtype=prior.dtype) / 7)


def test_naive_bayes_closed_form_and_all_class_shortcut():
    x = torch.tensor([[1.0, 1.0], [1.0, 0.0], [0.0, 0.0]]).view(3, 1, 1, 2)
    y = torch.tensor([0, 0, 1])
    nb = BernoulliNaiveBayes(2, alpha=1.0).fit(x, y)
    # class 0: pixel 0 on 2/2 -> (2+1)/(2+2); pixel 1 on 1/2 -> 2/4; class 1: 1/3, 1/3
    theta = torch.tensor([[0.75, 0.5], [1 / 3, 1 / 3]], dtype=torch.float64)
    assert torch.allclose(nb.log_theta.exp(), theta, atol=1e-6)
    probe = torch.tensor([[1.0, 0.0]]).view(1, 1, 1, 2)
    want = math.log(0.75 * 0.5)
    assert nb.log_prob(probe, torch.tensor([0])).item() == pytest.approx(want, abs=1e-5)
    gen = torch.Generator().manual_seed(0)
    grid = torch.bernoulli(torch.full((5, 1, 1, 2), 0.5), generator=gen)
    looped = class_log_likelihoods(nb.log_prob, grid, 2, batch=2)
    assert torch.allclose(nb.all_class_log_prob(grid), looped, atol=1e-5)


# ----- metrics ------------------------------------------------------------------------------
def test_accuracy_and_log_loss():
    p = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    y = torch.tensor([0, 1, 1])
    assert accuracy(p.log(), y) == pytest.approx(2 / 3)
    assert log_loss(p.log(), y) == pytest.approx(-(math.log(0.9) + math.log(0.8)
                                                   + math.log(0.4)) / 3)
    # a confidently wrong prediction keeps its true (large) loss: no clipping
    wrong = torch.tensor([[0.0, -500.0]])
    assert log_loss(wrong, torch.tensor([1])) == pytest.approx(500.0)


def test_ece_calibrated_and_overconfident():
    # 10 predictions at confidence 0.8, 8 right: perfectly calibrated -> 0
    p = torch.tensor([[0.8, 0.2]] * 10).log()
    y = torch.tensor([0] * 8 + [1] * 2)
    assert expected_calibration_error(p, y) == pytest.approx(0.0, abs=1e-6)
    # confidence ~1 but half wrong -> ECE ~0.5
    p = torch.tensor([[1 - 1e-9, 1e-9]] * 10).log()
    y = torch.tensor([0, 1] * 5)
    assert expected_calibration_error(p, y) == pytest.approx(0.5, abs=1e-6)


# ----- data ---------------------------------------------------------------------------------
def test_balanced_order_is_balanced_nested_and_seeded():
    y = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    order = balanced_order(y, seed=3)
    assert sorted(order.tolist()) == list(range(100))
    counts = np.bincount(y[order[:30]].numpy(), minlength=3)
    assert counts.tolist() == [10, 10, 10]
    assert np.array_equal(order, balanced_order(y, seed=3))
    assert not np.array_equal(order, balanced_order(y, seed=4))


def test_task_data_digits_binary_and_remapped():
    data = load_task_data("3,8", data="digits", n_test=20)
    assert data.classes == [3, 8] and data.class_names == ["3", "8"]
    assert set(data.y_train.unique().tolist()) == {0, 1}
    assert set(data.x_train.unique().tolist()) <= {0.0, 1.0}
    assert len(data.x_test) == 20
    p = data.protocol
    assert p["train"]["split"] == "train" and p["test"]["source"] == "digits"
    assert p["binarize"] == {"scheme": "static", "seed": 0,
                             "how": "whole split in file order, before selecting classes"}


def test_task_data_refuses_missing_class_and_unlabelled(tmp_path):
    with pytest.raises(UserError, match=r"class\(es\) \[12\]"):
        load_task_data("3,12", data="digits")
    np.savez(tmp_path / "u.npz", x=np.zeros((20, 8, 8), np.uint8))
    with pytest.raises(DataError, match="no labels"):
        load_task_data("0-vs-1", data=f"npz:{tmp_path / 'u.npz'}")


# ----- classifiers --------------------------------------------------------------------------
def test_naive_bayes_and_logreg_separate_zeros_from_ones():
    data = load_task_data("0-vs-1", data="digits")
    for name in ("naive-bayes", "logreg"):
        clf = build_classifier(name, 2, data.shape, budget=GenBudget())
        clf.fit(data.x_train, data.y_train, seed=0)
        lp = clf.predict_log_proba(data.x_test)
        assert lp.shape == (len(data.x_test), 2)
        assert torch.allclose(lp.logsumexp(1).double(), torch.zeros(len(lp), dtype=torch.float64),
                              atol=1e-4)
        assert accuracy(lp, data.y_test) > 0.9, name


def test_deep_generative_classifier_uses_every_class_likelihood():
    data = load_task_data("0-vs-1", data="digits", n_test=12)
    clf = build_classifier("gated-pixelcnn", 2, data.shape,
                           budget=GenBudget(steps=3, batch_size=16,
                                            options={"hidden": 4, "layers": 2}))
    clf.fit(data.x_train, data.y_train, seed=0)
    ll = clf.class_log_likelihoods(data.x_test)
    with torch.no_grad():
        direct = clf.model.log_prob(data.x_test, torch.ones(12, dtype=torch.int64))
    assert torch.allclose(ll[:, 1], direct.double(), atol=1e-4)
    lp = clf.predict_log_proba(data.x_test)
    assert torch.allclose(lp, posterior_log_proba(ll, clf.prior), atol=1e-5)
    assert clf.protocol()["likelihood"]["kind"] == "exact"


# ----- CLI ----------------------------------------------------------------------------------
def _run(args, capsys):
    code = main(["classify", *args])
    return code, capsys.readouterr()


def test_cli_curve_writes_table_json_and_figures(tmp_path, capsys):
    out = tmp_path / "c"
    code, cap = _run(["--task", "0-vs-1", "--data", "digits", "--classifiers", "nb,vae,logreg",
                      "--curve", "10,all", "--gen-steps", "4", "--gen-batch", "8", "--k", "2",
                      "--n-test", "30", "--out", str(out)], capsys)
    assert code == 0, cap.err
    assert "| naive-bayes | generative | exact |" in cap.out
    assert "IWAE-2" in cap.out and "static binarisation seed 0" in cap.out
    res = json.loads((out / "results.json").read_text())
    assert {(r["classifier"], r["n_train"]) for r in res["rows"]} >= {("vae", 10),
                                                                       ("logreg", 10)}
    assert res["protocol"]["test"]["n"] == 30 and len(res["crossover"]) == 2
    for name in ("curve.png", "posteriors.png", "reliability.png", "table.md"):
        assert (out / name).stat().st_size > 0
    # a second run refuses the non-empty directory and leaves it alone
    before = (out / "results.json").read_bytes()
    code, cap = _run(["--task", "0-vs-1", "--data", "digits", "--classifiers", "nb",
                      "--out", str(out)], capsys)
    assert code == 2 and "not empty" in cap.err and len(cap.err.strip().splitlines()) == 1
    assert (out / "results.json").read_bytes() == before


@pytest.mark.parametrize("args, message", [
    (["--task", "0-vs-12"], "lack"),
    (["--task", "zero"], "cannot read task"),
    (["--curve", "1,all"], "at least the 2 classes"),
    (["--classifiers", "svm"], "unknown classifier"),
    (["--gen-option", "vae:nonsense=3"], "unknown vae option"),
])
def test_cli_bad_input_one_line_exit_2(tmp_path, capsys, args, message):
    out = tmp_path / "bad"
    code, cap = _run(["--data", "digits", "--out", str(out), *args], capsys)
    assert code == 2
    assert message in cap.err and len(cap.err.strip().splitlines()) == 1
    assert not out.exists() or not any(out.iterdir())


def test_cli_unlabelled_data_exit_2(tmp_path, capsys):
    np.savez(tmp_path / "u.npz", x=np.zeros((20, 8, 8), np.uint8))
    code, cap = _run(["--data", f"npz:{tmp_path / 'u.npz'}", "--out", str(tmp_path / "o")],
                     capsys)
    assert code == 2 and "has no labels" in cap.err
    assert len(cap.err.strip().splitlines()) == 1
