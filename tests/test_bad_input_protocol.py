"""Bad-input corpus, metric protocols: numbers that must not share a column (refused under
``compare --strict``; without it they are shown marked), and a feature network that is not
the one trained (issue 16). Each case asserts the whole refusal contract
of :mod:`bad_input` (exit 2, one line, no traceback, nothing changed, nothing written)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bad_input import Case, check_refusal
from genvision.metrics.feature_net import default_config, load_or_train_feature_net

TINY_NET = {"width": 8, "feature_dim": 16, "epochs": 1, "batch_size": 64, "max_shift": 1}


def _run(folder: Path, name: str, *, conditional: bool, entry: dict) -> Path:
    run = folder / name
    run.mkdir()
    (run / "run.json").write_text(json.dumps({
        "model": "nade", "conditional": conditional, "likelihood_kind": "exact",
        "data": {"source": "digits", "split": "train", "shape": [1, 8, 8]}}))
    (run / "metrics.json").write_text(json.dumps({"evaluations": [entry]}))
    return run


def _nll(quantity: str | None) -> dict:
    protocol = {"kind": "exact", "estimator": "exact"}
    if quantity is not None:
        protocol |= {"quantity": quantity,
                     "conditioning": "label" if quantity == "-log p(x|y)" else "none"}
    return {"kind": "likelihood", "nll_nats": 30.0, "bits_per_dim": 0.7, "n": 30,
            "protocol": protocol, "data": {"source": "digits", "split": "test", "n": 30},
            "split": "test", "seed": 0, "steps": 3}


def _fid(digest: str) -> dict:
    feats = {"name": "genvision-classifier", "key": "ab12cd34ab12cd34", "dim": 16,
             "weights_sha256": digest}
    return {"kind": "samples", "fid": 3.0, "protocol": {"features": feats, "n_fake": 40},
            "data": {"source": "digits", "split": "test", "n": 40}, "split": "test",
            "seed": 0, "steps": 2}


def conditional_beside_unconditional(folder: Path) -> list[object]:
    return ["compare", "--strict",
            _run(folder, "plain", conditional=False, entry=_nll("-log p(x)")),
            _run(folder, "cond", conditional=True, entry=_nll("-log p(x|y)"))]


def old_conditional_entry(folder: Path) -> list[object]:
    # written before entries said what they are: the run's record says it was conditional
    return ["compare", "--strict", _run(folder, "plain", conditional=False, entry=_nll(None)),
            _run(folder, "cond", conditional=True, entry=_nll(None))]


def fids_of_two_networks(folder: Path) -> list[object]:
    return ["compare", "--strict", _run(folder, "a", conditional=False, entry=_fid("1" * 64)),
            _run(folder, "b", conditional=False, entry=_fid("2" * 64))]


CASES = [
    Case("compare -log p(x|y) beside -log p(x)", conditional_beside_unconditional,
         ("quantity differs", "-log p(x|y)", "--metrics nll", "leave out --strict")),
    Case("compare an old conditional entry beside -log p(x)", old_conditional_entry,
         ("quantity differs", "-log p(x|y)")),
    Case("compare FIDs of different feature networks", fids_of_two_networks,
         ("different feature networks", "1" * 16, "2" * 16)),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_protocol_mismatch_is_refused_in_one_line(case, tmp_path, capsys):
    check_refusal(case, tmp_path, capsys)


def test_a_feature_network_with_other_weights_is_refused(tmp_path, capsys, tiny_vae_run):
    def build(folder: Path) -> list[object]:
        cfg = default_config((1, 8, 8), 10, **TINY_NET)
        load_or_train_feature_net("digits", cfg=cfg, out=folder / "net", progress=False)
        load_or_train_feature_net("digits", cfg=default_config((1, 8, 8), 10, **TINY_NET,
                                                               seed=1),
                                  out=folder / "other", progress=False)
        shutil.copy(folder / "other" / "model.safetensors", folder / "net" / "model.safetensors")
        run = folder / "run"
        shutil.copytree(tiny_vae_run, run, symlinks=True)
        return ["evaluate", run, "--metrics", "fid", "--n", "20", "--features", folder / "net"]

    check_refusal(Case("evaluate --features DIR whose weights were replaced", build,
                       ("not the network trained there", "model.safetensors")),
                  tmp_path, capsys)
