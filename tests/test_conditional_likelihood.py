"""A conditional model's -log p(x|y) is labelled as such, never put in one column with
-log p(x), and its marginal log p(x) = log sum_y p(x|y) p(y) is reported beside it (issue 16).
"""

from __future__ import annotations

import itertools
import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from genvision.cli import main
from genvision.data import load_dataset
from genvision.errors import UserError
from genvision.evaluation.evaluate import EvalOptions, evaluate_marginal_nll
from genvision.metrics.likelihood import (
    conditioning_protocol,
    label_log_prior,
    marginal_log_prob,
)
from genvision.models.nade import NADE, NADEConfig
from genvision.report.compare import collect, render_markdown
from genvision.runs.records import comparable

TINY_NADE = ["--hidden", "8", "--batch-size", "32", "--no-progress"]


def all_binary_images(side: int) -> torch.Tensor:
    """Every binary image of side x side pixels: [2**(side*side), 1, side, side]."""
    bits = list(itertools.product([0.0, 1.0], repeat=side * side))
    return torch.tensor(bits).view(-1, 1, side, side)


@pytest.fixture(scope="module")
def tiny_nade() -> NADE:
    torch.manual_seed(0)
    model = NADE(NADEConfig(image_size=(3, 3), num_classes=3, hidden=5)).eval()
    with torch.no_grad():  # labels that matter: a zero-initialised embedding would not
        model.label.normal_(0, 2.0)
    return model


# ----- the maths --------------------------------------------------------------------------
def test_marginal_of_an_exact_model_sums_to_one_over_all_images(tiny_nade):
    x = all_binary_images(3)  # 512 images
    log_prior, _ = label_log_prior([5, 1, 2], 3, "test")
    opts = EvalOptions(batch_size=100)
    marginal = evaluate_marginal_nll(tiny_nade, x, log_prior, opts, device=torch.device("cpu"))
    assert marginal.shape == (512,) and marginal.dtype == torch.float64
    assert marginal.exp().sum().item() == pytest.approx(1.0, abs=1e-5)
    with torch.no_grad():
        per_label = torch.stack([tiny_nade.log_prob(x, torch.full((512,), k)).double()
                                 for k in range(3)], 1)  # [512, 3]
    assert torch.allclose(per_label.exp().sum(0), torch.ones(3, dtype=torch.float64), atol=1e-5)
    # log p(x) >= log p(x|y) + log p(y) for every y, with room: the labels do differ
    joint = per_label + log_prior
    assert bool((marginal >= joint.max(1).values - 1e-9).all())
    assert float((marginal - joint.max(1).values).max()) > 0.01
    # p(y) enters: a uniform prior gives another (also normalised) marginal
    uniform, _ = label_log_prior(None, 3, "test")
    other = evaluate_marginal_nll(tiny_nade, x, uniform, opts, device=torch.device("cpu"))
    assert other.exp().sum().item() == pytest.approx(1.0, abs=1e-5)
    assert not torch.allclose(other, marginal)


def test_label_prior_and_marginal_helpers():
    log_prior, proto = label_log_prior([3, 0, 1], 3, "run.json")
    assert torch.allclose(log_prior.exp(), torch.tensor([0.75, 0.0, 0.25], dtype=torch.float64))
    assert proto == {"kind": "training label frequencies", "counts": [3, 0, 1],
                     "source": "run.json"}
    assert label_log_prior(None, 4, "none recorded")[1]["kind"] == "uniform"
    lp = torch.tensor([[-1.0, -2.0, 5.0]])  # the label with p(y) = 0 must not count
    expected = math.log(0.75 * math.exp(-1.0) + 0.25 * math.exp(5.0))
    assert marginal_log_prob(lp, log_prior).item() == pytest.approx(expected)
    for bad in ([1, 2], [-1, 1, 1], [0, 0, 0]):
        with pytest.raises(ValueError):
            label_log_prior(bad, 3, "x")
    assert conditioning_protocol("label") == {"conditioning": "label",
                                              "quantity": "-log p(x|y)"}
    assert conditioning_protocol("none")["quantity"] == "-log p(x)"


# ----- evaluate writes both, labelled -----------------------------------------------------
@pytest.fixture(scope="module")
def cond_nade_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cond-nade") / "run"
    assert main(["train", "nade", "--conditional", "--data", "digits", "--steps", "3",
                 "--out", str(out), *TINY_NADE]) == 0
    return out


def _entries(run: Path) -> list[dict]:
    return json.loads((run / "metrics.json").read_text())["evaluations"]


def test_evaluate_records_conditional_and_marginal(cond_nade_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(cond_nade_run, run)
    train_y = load_dataset("digits", "train").y
    counts = torch.bincount(train_y, minlength=10).tolist()
    info = json.loads((run / "run.json").read_text())
    assert info["data"]["label_counts"] == counts  # recorded at train time
    assert main(["evaluate", str(run), "--metrics", "nll", "--n", "30"]) == 0
    cond, marg = _entries(run)
    assert cond["protocol"]["conditioning"] == "label"
    assert cond["protocol"]["quantity"] == "-log p(x|y)"
    assert marg["protocol"]["conditioning"] == "marginal over labels"
    assert marg["protocol"]["quantity"] == "-log p(x)"
    assert marg["protocol"]["label_prior"] == {
        "kind": "training label frequencies", "counts": counts,
        "source": "training labels, counted at train time"}
    assert marg["protocol"]["estimator"] == cond["protocol"]["estimator"] == "exact"
    assert comparable(cond) != comparable(marg)
    # mean over images of log p(x) >= log p(x|y_i) + log p(y_i)
    test_y = load_dataset("digits", "test").y[:30]
    log_py = torch.tensor(counts, dtype=torch.float64).div(sum(counts)).log()[test_y]
    assert -marg["nll_nats"] >= -cond["nll_nats"] + log_py.mean().item() - 1e-9
    # a run trained before the counts were recorded: counted again, and said so
    del info["data"]["label_counts"]
    (run / "run.json").write_text(json.dumps(info))
    assert main(["evaluate", str(run), "--metrics", "nll", "--n", "30", "--seed", "1"]) == 0
    prior = _entries(run)[-1]["protocol"]["label_prior"]
    assert prior["counts"] == counts and "counted at evaluation" in prior["source"]
    # ... and when they cannot be counted either (its data has no labels now): uniform
    info["data_config"]["data"] = "faces"
    (run / "run.json").write_text(json.dumps(info))
    assert main(["evaluate", str(run), "--metrics", "nll", "--n", "30", "--seed", "3",
                 "--data", "digits"]) == 0
    prior = _entries(run)[-1]["protocol"]["label_prior"]
    assert prior["kind"] == "uniform" and "could not be counted" in prior["source"]
    # --no-marginal: the conditional entry alone
    assert main(["evaluate", str(run), "--metrics", "nll", "--n", "30", "--seed", "2",
                 "--data", "digits", "--no-marginal"]) == 0
    assert [e["protocol"]["conditioning"] for e in _entries(run) if e["seed"] == 2] == ["label"]


def test_unconditional_entry_says_so(tiny_vae_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_vae_run, run)
    assert main(["evaluate", str(run), "--metrics", "nll", "--n", "10", "--k", "2"]) == 0
    (entry,) = _entries(run)
    assert entry["protocol"]["conditioning"] == "none"
    assert entry["protocol"]["quantity"] == "-log p(x)"
    assert "NLL -log p(x) " in capsys.readouterr().out


# ----- compare keeps them apart -----------------------------------------------------------
DATA = {"source": "digits", "split": "test", "n": 30, "shape": [1, 8, 8], "num_classes": 10,
        "split_seed": 0, "binarize": {"scheme": "static", "seed": 0}, "dequantize": None,
        "resize": None, "grayscale": False, "data_kind": "binary"}


def _entry(nll: float, **protocol) -> dict:
    return {"kind": "likelihood", "nll_nats": nll, "nll_nats_stderr": 0.5,
            "bits_per_dim": nll / (64 * math.log(2)), "bits_per_dim_stderr": 0.01, "n": 30,
            "protocol": {"kind": "exact", "estimator": "exact", **protocol}, "data": DATA,
            "split": "test", "seed": 0, "time_s": 1.0, "device": "cpu", "steps": 3}


def _run(root: Path, name: str, entries: list[dict], *, conditional: bool) -> Path:
    run = root / name
    run.mkdir()
    (run / "run.json").write_text(json.dumps({
        "model": "nade", "conditional": conditional, "likelihood_kind": "exact",
        "model_config": {"num_classes": 10 if conditional else 0},
        "data": {"source": "digits", "split": "train", "shape": [1, 8, 8]}}))
    (run / "metrics.json").write_text(json.dumps({"evaluations": entries}))
    return run


def _nll_column(board) -> list[str]:
    idx = [c.key for c in board.columns].index("nll")
    return [row[idx] for row in board.table()]


def test_compare_refuses_conditional_beside_unconditional(tmp_path):
    plain = _run(tmp_path, "plain", [_entry(40.0, **conditioning_protocol("none"))],
                 conditional=False)
    cond = _run(tmp_path, "cond", [_entry(30.0, **conditioning_protocol("label"))],
                conditional=True)
    with pytest.raises(UserError, match=r"quantity differs: -log p\(x\) vs -log p\(x\|y\)"):
        collect([plain, cond], strict=True)
    board = collect([plain, cond])
    assert _nll_column(board) == ["40.00 ± 0.50 (exact) [a]",
                                  "30.00 ± 0.50 (exact, -log p(x|y)) [b]"]
    assert "-log p(x|y): conditional NLL" in render_markdown(board)


def test_compare_uses_the_marginal_beside_unconditional(tmp_path):
    plain = _run(tmp_path, "plain", [_entry(40.0, **conditioning_protocol("none"))],
                 conditional=False)
    prior = {"kind": "training label frequencies", "counts": [1] * 10, "source": "t"}
    cond = _run(tmp_path, "cond", [
        _entry(30.0, **conditioning_protocol("label")),
        _entry(38.0, **conditioning_protocol("marginal over labels"), label_prior=prior)],
        conditional=True)
    board = collect([plain, cond])
    assert _nll_column(board) == ["40.00 ± 0.50 (exact)", "38.00 ± 0.50 (exact)"]
    notes = render_markdown(board)
    assert "-log sum_y p(x|y) p(y): cond (p(y): training label frequencies)" in notes


def test_compare_marks_old_entries_of_conditional_runs(tmp_path):
    # written before entries recorded their conditioning: the run says it was conditional
    plain = _run(tmp_path, "plain", [_entry(40.0)], conditional=False)
    cond = _run(tmp_path, "cond", [_entry(30.0)], conditional=True)
    with pytest.raises(UserError, match=r"quantity differs: -log p\(x\) vs -log p\(x\|y\)"):
        collect([plain, cond], strict=True)
    assert "-log p(x) vs -log p(x|y)" in collect([plain, cond]).footnotes[1]
    # two old entries of unconditional runs still share a column
    other = _run(tmp_path, "other", [_entry(41.0)], conditional=False)
    assert _nll_column(collect([plain, other])) == ["40.00 ± 0.50 (exact)",
                                                    "41.00 ± 0.50 (exact)"]
