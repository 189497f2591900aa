"""Tests of the per-dataset feature network: shapes, determinism, cache, errors, accuracy.

Tiny configs on the 8x8 ``digits`` dataset keep the whole file to a few seconds.
"""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
import torch

from genvision.data import load_dataset
from genvision.errors import CheckpointError, UserError
from genvision.metrics import feature_net as fmod
from genvision.metrics.feature_net import (
    FeatureNet,
    FeatureNetConfig,
    cache_key,
    default_config,
    evaluate_accuracy,
    extract_features,
    load_feature_net,
    load_or_train_feature_net,
    train_feature_net,
)
from genvision.nn.small_cnn import random_shift

TINY = {"width": 8, "feature_dim": 16, "epochs": 1, "batch_size": 64, "max_shift": 1}


def tiny_cfg(**kw) -> FeatureNetConfig:
    return default_config((1, 8, 8), 10, **{**TINY, **kw})


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", "train")


@pytest.mark.parametrize("c,s", [(1, 8), (1, 25), (1, 28), (3, 32), (3, 8)])
def test_shapes(c, s):
    net = FeatureNet(FeatureNetConfig(channels=c, image_size=s, num_classes=7, width=4,
                                      feature_dim=12)).eval()
    x = torch.rand(5, c, s, s)
    assert net(x).shape == (5, 7)
    assert net.features(x).shape == (5, 12)
    assert extract_features(net, x, batch_size=2).shape == (5, 12)
    with pytest.raises(UserError, match="expects images"):
        net.features(torch.rand(2, c, s + 1, s + 1))


def test_shift_augmentation_moves_whole_images():
    x = torch.zeros(64, 1, 6, 6)
    x[:, :, 2:4, 2:4] = 1.0
    out = random_shift(x, 2, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    assert torch.equal(out.sum((1, 2, 3)), x.sum((1, 2, 3)))  # 2 px pad: nothing falls off
    assert len({tuple(o.nonzero()[0].tolist()) for o in out}) > 5  # shifts differ per image


def test_replicate_shift_repeats_the_edge_instead_of_a_black_frame():
    x = torch.rand(32, 3, 6, 6) * 0.5 + 0.5  # a photo with no dark pixel
    gen = torch.Generator().manual_seed(0)
    out = random_shift(x, 2, gen, pad_mode="replicate")
    assert out.min() >= 0.5  # no zero border
    # every output pixel is a pixel of its own image, and the images moved
    assert all(set(o.flatten().tolist()) <= set(i.flatten().tolist())
               for o, i in zip(out, x, strict=True))
    assert not torch.equal(out, x)


def test_training_batch_mixes_grey_and_binary():
    cfg = tiny_cfg(augment=False, binarize_prob=0.5)
    x = torch.full((200, 1, 8, 8), 0.5)
    out = fmod._training_batch(x, cfg, torch.Generator().manual_seed(0))
    binary = ((out == 0) | (out == 1)).flatten(1).all(1)
    assert 50 < int(binary.sum()) < 150  # about half the images binarised, the rest grey
    assert torch.equal(out[~binary], x[~binary])


def test_deterministic_given_seed(digits):
    x, y = digits.x[:256], digits.y[:256]
    a = train_feature_net(x, y, tiny_cfg(), progress=False)
    b = train_feature_net(x, y, tiny_cfg(), progress=False)
    c = train_feature_net(x, y, tiny_cfg(seed=1), progress=False)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_training_leaves_global_rng_alone(digits):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train_feature_net(digits.x[:64], digits.y[:64], tiny_cfg(), progress=False)
    assert torch.equal(torch.rand(3), expected)


def test_tiny_net_learns_digits(digits):
    net = train_feature_net(digits.x, digits.y, tiny_cfg(epochs=4, lr=1e-2), progress=False)
    test = load_dataset("digits", "test")
    assert evaluate_accuracy(net, test.to_float(), test.y) > 0.5


def test_train_rejects_shape_mismatch(digits):
    with pytest.raises(UserError, match="do not match"):
        train_feature_net(digits.x, digits.y, tiny_cfg(image_size=28), progress=False)


def test_cache_key_changes_with_seed_and_data():
    data = {"spec": "digits", "split": "train", "split_seed": 0, "image_size": None,
            "grayscale": False}
    k = cache_key(data, tiny_cfg())
    assert k == cache_key(dict(data), tiny_cfg()) and len(k) == 16
    assert cache_key(data, tiny_cfg(seed=1)) != k
    assert cache_key({**data, "spec": "mnist5k"}, tiny_cfg()) != k
    assert cache_key({**data, "split": "all"}, tiny_cfg()) != k
    assert cache_key({**data, "split_seed": 1}, tiny_cfg()) != k


def test_cache_round_trip(tmp_path, monkeypatch):
    net, info = load_or_train_feature_net("digits", cache_dir=tmp_path, cfg=tiny_cfg(),
                                          progress=False)
    entry = tmp_path / "features" / info["key"]
    assert sorted(p.name for p in entry.iterdir()) == ["config.json", "info.json",
                                                       "model.safetensors"]
    assert info["data"]["shape"] == [1, 8, 8]
    assert info["data"]["n"] == len(load_dataset("digits", "train"))
    assert 0.0 <= info["test_accuracy"]["grey"] <= 1.0
    assert 0.0 <= info["test_accuracy"]["binarized"] <= 1.0
    assert not list((tmp_path / "features").glob(".*"))  # no temp dir left behind

    def boom(*a, **k):
        raise AssertionError("retrained instead of loading the cache")

    monkeypatch.setattr(fmod, "train_feature_net", boom)
    net2, info2 = load_or_train_feature_net("digits", cache_dir=tmp_path, cfg=tiny_cfg(),
                                            progress=False)
    assert info2["created"] == info["created"]
    x = load_dataset("digits", "test").to_float()
    assert torch.equal(extract_features(net, x), extract_features(net2, x))


def test_default_cache_dir_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("GENVISION_CACHE", str(tmp_path))
    _, info = load_or_train_feature_net("digits", cfg=tiny_cfg(), progress=False)
    assert (tmp_path / "features" / info["key"] / "model.safetensors").is_file()


def test_mismatched_dataset_refused(tmp_path):
    _, info = load_or_train_feature_net("digits", cache_dir=tmp_path, cfg=tiny_cfg(),
                                        progress=False)
    entry = tmp_path / "features" / info["key"]
    with pytest.raises(UserError, match=r"trained on digits 8x8, not mnist5k 28x28 \(fix:"):
        load_feature_net(entry, expect_data="mnist5k", expect_shape=(1, 28, 28))
    # A cache entry whose recorded data differs from the key's (e.g. copied by hand) is
    # refused too, never silently used.
    cfg28 = default_config((1, 28, 28), 10, **TINY)
    data28 = {"spec": "mnist5k", "split": "train", "split_seed": 0, "image_size": None,
              "grayscale": False}
    shutil.copytree(entry, tmp_path / "features" / cache_key(data28, cfg28))
    with pytest.raises(UserError, match="trained on digits 8x8, not mnist5k 28x28"):
        load_or_train_feature_net("mnist5k", cache_dir=tmp_path, cfg=cfg28, progress=False)


def test_config_must_fit_data(tmp_path):
    with pytest.raises(UserError, match="config is for 1x28x28"):
        load_or_train_feature_net("digits", cache_dir=tmp_path,
                                  cfg=default_config((1, 28, 28), 10), progress=False)


def test_unlabelled_data_refused(tmp_path):
    with pytest.raises(UserError, match="no labels"):
        load_or_train_feature_net("faces", cache_dir=tmp_path, progress=False)


def test_corrupt_cache(tmp_path):
    """load_feature_net raises CheckpointError; load_or_train warns and retrains."""
    _, info = load_or_train_feature_net("digits", cache_dir=tmp_path, cfg=tiny_cfg(),
                                        progress=False)
    entry = tmp_path / "features" / info["key"]
    weights = entry / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_feature_net(entry)
    with pytest.warns(UserWarning, match="retraining"):
        net, info2 = load_or_train_feature_net("digits", cache_dir=tmp_path, cfg=tiny_cfg(),
                                               progress=False)
    assert info2["created"] != info["created"]
    load_feature_net(entry, expect_data="digits", expect_shape=(1, 8, 8))  # healed


def test_config_json_round_trip(tmp_path):
    _, info = load_or_train_feature_net("digits", cache_dir=tmp_path, cfg=tiny_cfg(),
                                        progress=False)
    entry = tmp_path / "features" / info["key"]
    saved = json.loads((entry / "config.json").read_text())
    assert FeatureNetConfig.from_dict(saved) == tiny_cfg()
    saved["bogus"] = 1
    (entry / "config.json").write_text(json.dumps(saved))
    with pytest.raises(CheckpointError, match="unknown fields"):
        load_feature_net(entry)


def test_rgb_default_config_does_not_binarise():
    assert default_config((3, 32, 32), 10).binarize_prob == 0.0
    assert default_config((1, 28, 28), 10).binarize_prob == 0.5
    assert dataclasses.asdict(default_config((1, 28, 28), 10, seed=3))["seed"] == 3
