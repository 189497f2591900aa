"""Self-conditioned diffusion (``--self-condition K``): k-means clusters of the training
images stand in for labels in training, sampling and the bound; no labels are used."""

from __future__ import annotations

import math

import pytest
import torch

import genvision
from genvision.cli import main
from genvision.errors import UserError
from genvision.models.diffusion import DDPM
from genvision.models.diffusion_config import DDIMSampler, DiffusionConfig

TINY = {"image_size": (4, 4), "width": 8, "depth": 1, "emb_dim": 8, "sample_steps": 3,
        "eval_timesteps": 3, "complete_resample": 1}


def three_blobs(n: int = 30) -> torch.Tensor:
    """Binary 4x4 images of three kinds: top rows on, bottom rows on, left column on."""
    x = torch.zeros(n, 1, 4, 4)
    x[0::3, :, :2] = 1
    x[1::3, :, 2:] = 1
    x[2::3, :, :, 0] = 1
    return x


def fitted(**kw) -> DDPM:
    model = DDPM(DiffusionConfig(**{**TINY, "self_condition": 3, **kw}))
    model.init_from_data(three_blobs())
    return model.eval()


class LabelSpy:
    """Records the labels the denoiser's embedding receives."""

    def __init__(self, model: DDPM):
        self.seen: list[torch.Tensor | None] = []
        forward = model.embed.forward

        def spy(lam, labels=None):
            self.seen.append(None if labels is None else labels.clone())
            return forward(lam, labels)
        model.embed.forward = spy


def test_clusters_are_fitted_to_the_data_and_label_the_images():
    model = fitted()
    x = three_blobs()
    c = model.clusters(x)
    assert len(set(c[0::3].tolist())) == len(set(c[1::3].tolist())) == 1  # one per kind
    assert len(set(c.tolist())) == 3
    assert torch.allclose(model.cluster_freq, torch.full((3,), 1 / 3))


def test_an_unfitted_model_says_so_and_a_labelled_one_is_refused():
    with pytest.raises(UserError, match="no clusters yet"):
        DDPM(DiffusionConfig(**TINY, self_condition=3)).sample(2)
    with pytest.raises(ValueError, match="unconditional"):
        DiffusionConfig(**TINY, self_condition=3, num_classes=10)
    with pytest.raises(UserError, match="at least 40"):
        DDPM(DiffusionConfig(**TINY, self_condition=40)).init_from_data(three_blobs())


def test_training_conditions_on_each_images_cluster():
    model = fitted(label_dropout=0.0)
    spy = LabelSpy(model)
    x = three_blobs(6)
    model.train()
    model.loss(x)
    assert torch.equal(spy.seen[-1], model.clusters(x))
    model.config.label_dropout = 1.0  # all dropped: the null label (index K)
    model.loss(x)
    assert torch.equal(spy.seen[-1], torch.full((6,), 3))


def test_samples_draw_clusters_at_their_frequencies_from_each_samples_own_seed():
    model = fitted()
    spy = LabelSpy(model)
    model.cluster_freq.copy_(torch.tensor([0.0, 1.0, 0.0]))
    model.sample(4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(spy.seen[-1], torch.ones(4, dtype=torch.long))
    model.cluster_freq.copy_(torch.tensor([0.5, 0.3, 0.2]))
    a = model.sample(5, generator=torch.Generator().manual_seed(3))
    b = model.sample(2, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a[:2], b)  # sample k depends on seed k only
    chosen = model.sample(3, y=torch.tensor(2), sampler=DDIMSampler(steps=2))
    assert chosen.shape == (3, 1, 4, 4) and torch.equal(spy.seen[-1], torch.full((3,), 2))
    with pytest.raises(UserError, match="cluster index"):
        model.sample(2, y=torch.tensor(3))


def test_the_bound_adds_minus_log_pi_of_the_images_cluster_and_conditions_on_it():
    model = fitted()
    model.cluster_freq.copy_(torch.tensor([0.5, 0.3, 0.2]))
    spy = LabelSpy(model)
    x = three_blobs(6)
    terms = model.bound_terms(x, k=2, generator=torch.Generator().manual_seed(1))
    c = model.clusters(x)
    assert torch.allclose(terms["cluster"], -model.cluster_freq.log()[c])
    assert all(s is not None and torch.equal(s, c) for s in spy.seen)
    logp = model.log_prob(x, k=2, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(logp, -sum(terms.values()))
    assert "cluster" in model.likelihood_protocol()["terms"]
    # the cluster term is the price of naming the cluster: with one cluster it is zero
    one = DDPM(DiffusionConfig(**TINY, self_condition=1))
    one.init_from_data(three_blobs())
    assert one.bound_terms(x, k=2)["cluster"].abs().max() < 1e-6
    assert math.isclose(float(model.cluster_freq.sum()), 1.0, rel_tol=1e-6)


def test_cli_trains_a_self_conditioned_run_that_loads_with_its_clusters(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "ddpm", "--data", "digits", "--steps", "2", "--out", str(out),
            "--self-condition", "4", "--width", "8", "--depth", "1", "--emb-dim", "8",
            "--sample-steps", "2", "--batch-size", "16", "--no-progress"]
    assert main(argv) == 0
    model = genvision.load(out)
    assert model.config.self_condition == 4
    assert math.isclose(float(model.cluster_freq.sum()), 1.0, rel_tol=1e-6)
    assert model.sample(3, generator=torch.Generator().manual_seed(0)).shape == (3, 1, 8, 8)
    capsys.readouterr()
    assert main(["train", "ddpm", "--data", "digits", "--conditional", "--self-condition",
                 "4", "--steps", "1", "--out", str(tmp_path / "bad"), "--no-progress"]) == 2
    assert "unconditional" in capsys.readouterr().err
