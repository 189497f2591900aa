"""The FID feature network is one network wherever it is trained: single-threaded training
(weights independent of the caller's thread count), a cache key holding the torch build,
and the weights' SHA-256 recorded with every sample metric and checked by compare (issue 16).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from genvision.cli import main
from genvision.data import load_dataset
from genvision.errors import CheckpointError, UserError
from genvision.metrics.feature_net import (
    cache_key,
    default_config,
    load_feature_net,
    load_or_train_feature_net,
    train_feature_net,
    training_environment,
    weights_sha256,
)
from genvision.metrics.feature_space import FeatureSpace
from genvision.metrics.reference import reference_key
from genvision.report.compare import collect
from genvision.storage import save_tensors

TINY = {"width": 8, "feature_dim": 16, "epochs": 1, "batch_size": 64, "max_shift": 1}
DATA = {"spec": "digits", "split": "train", "split_seed": 0, "image_size": None,
        "grayscale": False}


def tiny_cfg(**kw):
    return default_config((1, 8, 8), 10, **{**TINY, **kw})


def _train_with_threads(threads: int, x, y):
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        net = train_feature_net(x, y, tiny_cfg(width=16, feature_dim=32, epochs=2),
                                progress=False)
        assert torch.get_num_threads() == threads  # the caller's setting comes back
    finally:
        torch.set_num_threads(old)
    return net.state_dict()


def test_weights_do_not_depend_on_the_thread_count():
    # multi-threaded convolution gradients sum in a thread-count-dependent order: before
    # training was single-threaded these weights differed (by up to ~1e-2 here)
    ds = load_dataset("digits", "train")
    one = _train_with_threads(1, ds.x, ds.y)
    for threads in (2, 3):
        other = _train_with_threads(threads, ds.x, ds.y)
        assert all(torch.equal(one[k], other[k]) for k in one), threads


def test_cache_key_holds_the_training_environment():
    env = training_environment()
    assert env["torch"] == torch.__version__
    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    key = cache_key(DATA, tiny_cfg())
    assert key == cache_key(DATA, tiny_cfg(), env)
    for change in ({"torch": "0.0.1"}, {"cpu_capability": "NO AVX"}, {"mkldnn": not env["mkldnn"]}):
        assert cache_key(DATA, tiny_cfg(), {**env, **change}) != key, change


def content_hash(path: Path) -> str:
    """SHA-256 over a safetensors file's tensors in name order: name, dtype, shape, bytes
    (written out again here, independently of the library's)."""
    tensors, digest = load_file(str(path)), hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        digest.update(json.dumps([name, str(t.dtype), list(t.shape)]).encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def test_weights_hash_is_of_the_tensors_not_the_file_bytes(tmp_path):
    # safetensors writes its metadata map in a per-process order, so one network's file
    # bytes vary between runs; the hash must not
    tensors = {"b": torch.arange(6.0).view(2, 3), "a": torch.tensor(7)}
    save_tensors(tmp_path / "one.safetensors", tensors)
    save_tensors(tmp_path / "two.safetensors", tensors, metadata={"format": "x", "version": "2"})
    one, two = (load_file(str(tmp_path / f"{n}.safetensors")) for n in ("one", "two"))
    files = [(tmp_path / f"{n}.safetensors").read_bytes() for n in ("one", "two")]
    assert files[0] != files[1]
    assert weights_sha256(one) == weights_sha256(two) == weights_sha256(tensors)
    assert weights_sha256(one) == content_hash(tmp_path / "one.safetensors")
    for changed in ({**tensors, "a": torch.tensor(8)}, {**tensors, "c": torch.tensor(7)},
                    {"b": tensors["b"].view(3, 2), "a": tensors["a"]},
                    {"b": tensors["b"].double(), "a": tensors["a"]}):
        assert weights_sha256(changed) != weights_sha256(tensors)


def test_weights_hash_recorded_and_checked(tmp_path):
    net, info = load_or_train_feature_net("digits", cache_dir=tmp_path, cfg=tiny_cfg(),
                                          progress=False)
    entry = tmp_path / "features" / info["key"]
    weights = entry / "model.safetensors"
    digest = content_hash(weights)
    assert info["weights_sha256"] == digest
    assert json.loads((entry / "info.json").read_text())["weights_sha256"] == digest
    assert info["environment"] == training_environment()
    assert load_feature_net(entry)[1]["weights_sha256"] == digest
    # a valid network's weights put in its place are refused: not the one trained there
    _, other = load_or_train_feature_net("digits", cache_dir=tmp_path, cfg=tiny_cfg(seed=1),
                                         progress=False)
    shutil.copy(tmp_path / "features" / other["key"] / "model.safetensors", weights)
    with pytest.raises(CheckpointError, match=f"info.json records {digest[:12]}"):
        load_feature_net(entry)
    with pytest.warns(UserWarning, match="retraining"):
        _, healed = load_or_train_feature_net("digits", cache_dir=tmp_path, cfg=tiny_cfg(),
                                              progress=False)
    assert healed["weights_sha256"] == digest  # deterministic: the same network again


def test_reference_features_follow_the_weights():
    space = FeatureSpace("genvision-classifier", torch.nn.Identity(),
                         {"key": "k", "dim": 4, "weights_sha256": "a" * 64}, lambda x: x)
    images = torch.zeros(2, 1, 8, 8)
    key = reference_key(space, images, {"source": "digits"})
    space.identity["weights_sha256"] = "b" * 64  # retrained under the same key elsewhere
    assert reference_key(space, images, {"source": "digits"}) != key


def test_every_sample_record_names_the_network(tiny_vae_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_vae_run, run)
    assert main(["evaluate", str(run), "--metrics", "fid,kid,pr", "--n", "40"]) == 0
    (entry,) = json.loads((run / "metrics.json").read_text())["evaluations"]
    feats = entry["protocol"]["features"]
    # the session's private cache (conftest) holds the network evaluate used
    cached = Path(os.environ["GENVISION_CACHE"]) / "features" / feats["key"]
    assert feats["weights_sha256"] == content_hash(cached / "model.safetensors")


# ----- compare --------------------------------------------------------------------------------
def _samples_run(root: Path, name: str, digest: str | None) -> Path:
    run = root / name
    run.mkdir()
    feats = {"name": "genvision-classifier", "key": "ab12cd34ab12cd34", "dim": 128}
    if digest is not None:
        feats["weights_sha256"] = digest
    entry = {"kind": "samples", "fid": 3.0, "protocol": {"features": feats, "n_fake": 40,
                                                         "n_real": 40, "pr_k": 3},
             "data": {"source": "digits", "split": "test", "n": 40}, "split": "test",
             "seed": 0, "steps": 2}
    (run / "run.json").write_text(json.dumps({
        "model": "vae", "data": {"source": "digits", "split": "train", "shape": [1, 8, 8]}}))
    (run / "metrics.json").write_text(json.dumps({"evaluations": [entry]}))
    return run


def test_compare_refuses_fids_of_different_networks(tmp_path):
    a = _samples_run(tmp_path, "a", "1" * 64)
    b = _samples_run(tmp_path, "b", "2" * 64)
    with pytest.raises(UserError, match="different feature networks \\(weights SHA-256 "
                                        f"{'1' * 16} vs {'2' * 16}\\)") as err:
        collect([a, b], strict=True)
    assert "\n" not in str(err.value)
    old = _samples_run(tmp_path, "old", None)
    with pytest.raises(UserError, match=f"SHA-256 {'1' * 16} vs not recorded"):
        collect([a, old], strict=True)
    marked = collect([a, b])  # without --strict: side by side, each marked
    assert [row.text("fid") for row in marked.rows] == ["3.00 [a]", "3.00 [b]"]
    assert "a different feature network" in marked.footnotes[1]
    same = _samples_run(tmp_path, "same", "1" * 64)
    board = collect([a, same])
    assert [row.cells["fid"] for row in board.rows] == ["3.00", "3.00"]
