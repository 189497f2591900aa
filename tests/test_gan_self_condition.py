"""Self-conditioned GAN: pixel-space k-means clusters used as labels (tiny CPU cases)."""

from __future__ import annotations

import pytest
import torch

from genvision.errors import UserError
from genvision.models.gan import SNGAN
from genvision.nn.pixel_clusters import assign_clusters, fit_pixel_clusters
from genvision.train import TrainConfig
from genvision.train.phases import Stepper

TINY = {"image_size": (8, 8), "data_kind": "grey8", "latent_dim": 4, "g_width": 4,
        "d_width": 4, "label_dim": 3}
SIZES = (16, 10, 6)  # three groups of images, far apart in pixel space


def groups() -> tuple[torch.Tensor, torch.Tensor]:
    """[32, 1, 8, 8] images of three brightness levels (plus noise) and their group [32]."""
    g = torch.Generator().manual_seed(0)
    group = torch.cat([torch.full((n,), j) for j, n in enumerate(SIZES)])
    level = torch.tensor([0.1, 0.5, 0.9])[group].view(-1, 1, 1, 1)
    x = (level + 0.05 * torch.randn(len(group), 1, 8, 8, generator=g)).clamp(0, 1)
    return (x * 255).round() / 255, group


def make(**kw) -> SNGAN:
    return SNGAN(SNGAN.config_class(**{**TINY, "self_condition": 3, **kw}))


def test_clusters_find_separated_groups_and_their_frequencies():
    x, group = groups()
    centroids, freq = fit_pixel_clusters(x, 3)
    assert centroids.shape == (3, 64) and freq.sum() == pytest.approx(1.0)
    found = assign_clusters(x, centroids)
    for j in range(3):  # each group is exactly one cluster, a different one per group
        assert found[group == j].unique().numel() == 1
    assert found.unique().numel() == 3
    assert sorted(freq.tolist(), reverse=True) == pytest.approx([n / 32 for n in SIZES])
    other = torch.rand(20, 1, 8, 8)
    assert torch.equal(assign_clusters(other, centroids),
                       torch.cdist(other.flatten(1), centroids).argmin(1))
    with pytest.raises(ValueError, match="cannot make 3 clusters"):
        fit_pixel_clusters(x[:2], 3)


def test_g_and_d_see_each_real_image_s_cluster_and_samples_follow_the_frequencies():
    x, _ = groups()
    m = make()
    with pytest.raises(UserError, match="no clusters yet.*init_from_data"):
        m.loss(x)
    with pytest.raises(UserError, match="no clusters yet"):
        m.sample(2)
    m.init_from_data(x)
    assert torch.equal(m._labels(x, None), assign_clusters(x, m.cluster_centroids))
    assert m.D.embed is not None and m.D.embed.num_embeddings == 3  # projection D
    g_before, d_before = m.G.fc.weight.detach().clone(), m.D.embed.weight.detach().clone()
    Stepper(m, TrainConfig(), torch.device("cpu")).step(x, None, 0)
    assert not torch.equal(g_before, m.G.fc.weight) and not torch.equal(d_before,
                                                                        m.D.embed.weight)
    drawn = m._g_input(20_000, None, torch.Generator().manual_seed(0))
    seen = torch.bincount(drawn, minlength=3).float() / 20_000
    assert torch.allclose(seen, m.cluster_freq, atol=0.015)
    z = torch.randn(4, 4)
    assert not torch.equal(m.G(z, torch.zeros(4, dtype=torch.long)),
                           m.G(z, torch.ones(4, dtype=torch.long)))  # the cluster matters
    a = m.sample(8, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, m.sample(8, generator=torch.Generator().manual_seed(1)))
    figs = m.figures(x, generator=torch.Generator().manual_seed(0))
    assert figs["clusters"].shape == (3 * 8, 1, 8, 8)  # one row of 8 latents per cluster
    with pytest.raises(UserError, match="unconditional"):
        m.sample(2, y=1)  # clusters are G's own, drawn at their frequencies


def test_self_condition_refuses_labels_codes_and_too_little_data():
    with pytest.raises(UserError, match="self-condition is for unconditional"):
        make(num_classes=3)
    with pytest.raises(UserError, match="pick one"):
        make(info_codes=4)
    with pytest.raises(UserError, match="at least 3 training images.*fewer clusters"):
        make().init_from_data(groups()[0][:2])
    m = SNGAN(SNGAN.config_class(**TINY))
    m.init_from_data(groups()[0])  # a no-op without self_condition
    assert not hasattr(m, "cluster_centroids")
