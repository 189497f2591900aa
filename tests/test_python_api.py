"""The Python API the README documents: ``Model.from_pretrained``, ``model(x)`` and the
metrics importable from ``genvision.metrics``."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

import genvision
import genvision.metrics as gm
from genvision.errors import UserError
from genvision.models.base import GenerativeModel
from genvision.models.pixelcnn import PixelCNN
from genvision.models.vae import VAE


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_from_pretrained_is_load_with_a_type_check(tiny_vae_run):
    model = VAE.from_pretrained(tiny_vae_run)
    assert type(model) is VAE and not model.training
    assert _same_weights(model, genvision.load(tiny_vae_run))
    assert isinstance(GenerativeModel.from_pretrained(tiny_vae_run), VAE)  # the base takes any


def test_from_pretrained_refuses_a_run_of_another_model(tiny_vae_run):
    with pytest.raises(UserError, match="holds a vae model, not a PixelCNN"):
        PixelCNN.from_pretrained(tiny_vae_run)


def test_from_pretrained_reads_a_save_pretrained_directory(tiny_vae_run, tmp_path):
    genvision.load(tiny_vae_run).save_pretrained(tmp_path / "m")
    assert _same_weights(VAE.from_pretrained(tmp_path / "m"), genvision.load(tiny_vae_run))


def test_calling_a_model_returns_its_loss_dict(tiny_vae_run):
    model = genvision.load(tiny_vae_run)
    x = torch.rand(4, *model.config.shape).round()
    torch.manual_seed(0)
    out = model(x)
    torch.manual_seed(0)
    ref = model.loss(x)
    assert set(out) == set(ref) and "loss" in out
    assert all(torch.equal(out[k], ref[k]) for k in ref)


def test_metrics_are_importable_from_one_place():
    for name in gm.__all__:
        assert callable(getattr(gm, name)), name
    with pytest.raises(AttributeError):
        gm.no_such_metric  # noqa: B018


def test_metric_names_that_are_also_module_names_stay_functions():
    # importing the submodule (as genvision evaluate does) must not shadow the function
    importlib.import_module("genvision.metrics.fid")
    importlib.import_module("genvision.metrics.memorisation")
    from genvision.metrics import fid, memorisation, sample_quality
    assert callable(fid) and callable(memorisation) and callable(sample_quality)


def test_the_exported_metrics_compute():
    from genvision.metrics import fid, manifold_metrics, psnr, ssim
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(300, 8, generator=g), torch.randn(300, 8, generator=g)
    assert fid(a, a) == pytest.approx(0.0, abs=1e-6)
    assert fid(a, b + 3.0) > fid(a, b) > 0.0
    pr = manifold_metrics(a, a)
    assert pr["precision"] == pytest.approx(1.0) and pr["recall"] == pytest.approx(1.0)
    img = np.linspace(0, 1, 32 * 32).reshape(32, 32)
    noisy = np.clip(img + 0.01 * np.random.default_rng(0).standard_normal(img.shape), 0, 1)
    assert psnr(noisy, img, 1.0) == pytest.approx(40.0, abs=1.0)  # noise sd 0.01 -> ~40 dB
    assert 0.9 < ssim(noisy, img, 1.0) < 1.0
