"""Colorization in tiles: equal to the untiled result, with bounded memory (issue 16:
``colorize apply`` on a 4000x4000 image needed 5.8 GB with a tiny model)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch

from genvision.apps.colorize.compare import colorize_image
from genvision.apps.colorize.tiled import colorize_tiled, receptive_radius, tile_overlap
from genvision.apps.common.tiling import windows
from genvision.models.colorize import ColorizeConfig, ColorizeRegression
from genvision.nn.unet import UNet


@pytest.fixture(scope="module", params=[2, 3])
def model(request):
    torch.manual_seed(0)
    m = ColorizeRegression(ColorizeConfig(width=4, depth=request.param))
    torch.nn.init.normal_(m.generator.out.weight, std=0.3)  # not the grey (zero) start
    return m.eval()


def image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth colour image with texture (so every tile has colour to predict)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([np.sin(xx / 7), np.cos(yy / 5), np.sin((xx + yy) / 11)], -1)
    return ((base * 0.4 + 0.5 + rng.normal(0, 0.05, (h, w, 3))).clip(0, 1) * 255).astype(
        np.uint8)


def test_receptive_radius_is_exact():
    """A pixel at the measured radius changes the output; one just beyond never does."""
    torch.manual_seed(1)
    net = UNet(4, 2).double().eval()
    torch.nn.init.normal_(net.out.weight, std=0.3)
    r = receptive_radius(net)
    assert r == 21
    x = torch.rand(1, 1, 8, 128, dtype=torch.float64)
    with torch.no_grad():
        base = net(x)
        for col in range(64, 72):  # every position on the 4-pixel grid
            far = x.clone()
            far[..., col + r + 1:] = torch.rand_like(far[..., col + r + 1:])
            assert torch.equal(net(far)[..., col], base[..., col])
    changed = [col for col in range(64, 72)
               if not torch.equal(net(_lit(x, col + r))[..., col], base[..., col])]
    assert changed  # the radius is reached from some grid position


def _lit(x: torch.Tensor, col: int) -> torch.Tensor:
    y = x.clone()
    y[..., col] += 1.0
    return y


@pytest.mark.parametrize("size", [(37, 53), (70, 41)])
def test_tiled_equals_untiled(model, size):
    rgb = image(*size)
    full = colorize_image(model, rgb)
    tiled = colorize_tiled(model, rgb, tile=8)  # many tiles, overlap: the radius
    assert tiled.shape == full.shape == (*size, 3)
    assert np.abs(tiled.astype(int) - full.astype(int)).max() <= 1  # 8-bit rounding only
    assert (tiled != full).mean() < 0.01


def test_too_little_overlap_shows_seams(model):
    rgb = image(64, 64, seed=2)
    full = colorize_image(model, rgb)
    seamed = colorize_tiled(model, rgb, tile=8, overlap=0)
    assert np.abs(seamed.astype(int) - full.astype(int)).max() > 3


def test_tiles_are_bounded(model, monkeypatch):
    sizes = []
    predict = model.predict_ab

    def recording(L):
        sizes.append(tuple(L.shape[-2:]))
        return predict(L)

    monkeypatch.setattr(model, "predict_ab", recording)
    colorize_tiled(model, image(300, 200), tile=64)
    tile, overlap = tile_overlap(model, 64)
    assert len(sizes) == len(windows(300, 200, tile, overlap, model.generator.multiple)) > 4
    assert max(max(s) for s in sizes) <= tile + 2 * overlap


def test_memory_stays_bounded_on_a_large_image(model):
    """numpy's allocations (the Lab conversions: float64, several copies per pixel) are
    traced: tiled, the peak is the input and output images plus one tile's worth; the
    untiled path holds whole-image float64 copies (>= 24 bytes a pixel)."""
    rgb = image(1000, 1000, seed=3)
    tracemalloc.start()
    try:
        out = colorize_tiled(model, rgb, tile=128)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.shape == rgb.shape
    assert peak < 3 * rgb.nbytes + 16e6  # output (3 MB) + per-tile work; untiled: > 50 MB
