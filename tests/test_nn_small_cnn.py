"""The shared small CNN body and fit loop (genvision.nn.small_cnn).

The fingerprints below were recorded with the two separate training loops that existed
before (metrics/features.py and tasks/common/small_cnn.py, commit 7879fe0): the shared
loop must reproduce them, so cached feature networks, FID values and classifier
baselines stay what they were.
"""

from __future__ import annotations

import torch

from genvision.apps.common.small_cnn import SmallCNN
from genvision.metrics.feature_net import FeatureNetConfig, extract_features, train_feature_net
from genvision.nn.small_cnn import conv_body, shuffled_batches


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (70, 1, 8, 8), generator=g, dtype=torch.uint8)
    return x, torch.randint(0, 3, (70,), generator=g)


def test_feature_net_training_reproduces_the_old_loop():
    x, y = _data()
    cfg = FeatureNetConfig(channels=1, image_size=8, num_classes=3, width=4, feature_dim=8,
                           epochs=2, batch_size=32)
    net = train_feature_net(x, y, cfg, progress=False)
    keys = list(net.state_dict())
    assert keys[:4] == ["body.0.weight", "body.1.weight", "body.1.bias", "body.1.running_mean"]
    assert len(keys) == 22 and "embed.1.weight" in keys and "classifier.weight" in keys
    old = [0.09398967027664185, 0.11150189489126205, 0.0, 0.0, 0.11830565333366394,
           0.026322122663259506]
    torch.testing.assert_close(extract_features(net, x[:3]).flatten()[:6], torch.tensor(old),
                               rtol=1e-6, atol=1e-7)


def test_small_cnn_training_reproduces_the_old_loop():
    x, y = _data()
    xf = x.float() / 255
    torch.manual_seed(123)
    clf = SmallCNN.build(3, (1, 8, 8), batch_size=16).fit(
        xf, y, seed=1, steps=9,
        augment=lambda b, gen: b + 0.01 * torch.rand(b.shape, generator=gen))
    old = [-1.1566622257232666, -1.13596510887146, -1.0096303224563599, -1.1474933624267578,
           -1.1582343578338623, -0.998237669467926]
    torch.testing.assert_close(clf.predict_log_proba(xf[:2]).flatten(), torch.tensor(old),
                               rtol=1e-6, atol=1e-7)
    assert [k for k in clf.net.state_dict()][:2] == ["features.0.weight", "features.0.bias"]


def test_conv_body_shapes_and_pooling_rule():
    body, out = conv_body(1, [4, 8, 16], (8, 8), batch_norm=True, pool_min_side=4, out_pool=2)
    assert out == (16, 2, 2)
    assert body(torch.rand(2, 1, 8, 8)).shape == (2, 16, 2, 2)
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in body) == 2   # 8 -> 4 -> 2, stop
    body, out = conv_body(3, [4, 8], (8, 12), batch_norm=False)
    assert out == (8, 2, 3) and body(torch.rand(1, 3, 8, 12)).shape == (1, 8, 2, 3)
    assert all(m.bias is not None for m in body if isinstance(m, torch.nn.Conv2d))


def test_shuffled_batches_cover_each_pass():
    g = torch.Generator().manual_seed(0)
    keep = list(shuffled_batches(10, 4, 6, g, drop_last=False))
    assert [len(b) for b in keep] == [4, 4, 2, 4, 4, 2]
    assert sorted(torch.cat(keep[:3]).tolist()) == list(range(10))
    drop = list(shuffled_batches(10, 4, 4, torch.Generator().manual_seed(0), drop_last=True))
    assert [len(b) for b in drop] == [4, 4, 4, 4]
