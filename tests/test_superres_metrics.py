"""PSNR/SSIM (scikit-image) against torchmetrics, the BT.601 Y channel, colourfulness."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.color import rgb2ycbcr
from torchmetrics.functional.image import (
    peak_signal_noise_ratio,
    structural_similarity_index_measure,
)

from genvision.apps.common.metrics import (
    colourfulness,
    fidelity,
    psnr,
    rgb_to_y,
    shave,
    ssim,
)


@pytest.fixture(scope="module")
def pair():
    """A fixed photo crop and a noisy, blurred version of it (uint8 RGB)."""
    from skimage.data import astronaut

    target = astronaut()[100:196, 150:262]
    rng = np.random.default_rng(0)
    noisy = target.astype(np.float64) + rng.normal(0, 12, target.shape)
    return np.clip(noisy, 0, 255).round().astype(np.uint8), target


def _tm(a: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))
    return t[None, None] if t.dim() == 2 else t.permute(2, 0, 1)[None]


def test_psnr_matches_torchmetrics(pair):
    pred, target = pair
    for a, b, rng in ((rgb_to_y(pred), rgb_to_y(target), 255.0),
                      (pred / 255.0, target / 255.0, 1.0)):
        ours = psnr(a, b, rng)
        ref = float(peak_signal_noise_ratio(_tm(a), _tm(b), data_range=rng))
        assert ours == pytest.approx(ref, abs=1e-4)


def _ssim_reference(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    """Wang et al. 2004 written out: 11x11 Gaussian (sigma 1.5), valid windows only."""
    from scipy.signal import convolve2d

    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5 ** 2))
    w = np.outer(g, g) / g.sum() ** 2

    def f(x):
        return convolve2d(x, w, mode="valid")

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    ma, mb = f(a), f(b)
    vaa, vbb, vab = f(a * a) - ma ** 2, f(b * b) - mb ** 2, f(a * b) - ma * mb
    s = (2 * ma * mb + c1) * (2 * vab + c2) / ((ma ** 2 + mb ** 2 + c1) * (vaa + vbb + c2))
    return float(s.mean())


def test_ssim_matches_the_definition_and_torchmetrics(pair):
    pred, target = pair
    for a, b, rng in ((rgb_to_y(pred), rgb_to_y(target), 255.0),
                      (pred / 255.0, target / 255.0, 1.0)):
        ours = ssim(a, b, rng)
        channels = [(a, b)] if a.ndim == 2 else [(a[..., c], b[..., c]) for c in range(3)]
        exact = np.mean([_ssim_reference(x, y, rng) for x, y in channels])
        assert ours == pytest.approx(exact, abs=1e-9)
        # torchmetrics pads by reflection before its windows, so it differs slightly
        ref = float(structural_similarity_index_measure(
            _tm(a), _tm(b), data_range=rng, gaussian_kernel=True, sigma=1.5, kernel_size=11))
        assert ours == pytest.approx(ref, abs=1e-2)
    assert ssim(rgb_to_y(target), rgb_to_y(target), 255.0) == pytest.approx(1.0)


def test_y_channel_is_bt601():
    rgb = np.random.default_rng(1).integers(0, 256, (7, 5, 3)).astype(np.uint8)
    r, g, b = (rgb[..., i] / 255.0 for i in range(3))
    formula = 16 + 65.481 * r + 128.553 * g + 24.966 * b
    np.testing.assert_allclose(rgb_to_y(rgb), formula, atol=1e-12)
    np.testing.assert_allclose(rgb_to_y(rgb), rgb2ycbcr(rgb)[..., 0], atol=1e-9)
    assert rgb_to_y(np.zeros((1, 1, 3), np.uint8))[0, 0] == pytest.approx(16.0)
    assert rgb_to_y(np.full((1, 1, 3), 255, np.uint8))[0, 0] == pytest.approx(235.0)


def test_fidelity_crops_the_border_and_labels_both_spaces(pair):
    pred, target = pair
    spoiled = pred.copy()
    spoiled[:4] = 0  # damage only inside the cropped border
    with_border = fidelity(spoiled, target, border=4)
    assert with_border == pytest.approx(fidelity(shave(pred, 4), shave(target, 4)))
    assert set(with_border) == {"psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb"}
    assert math.isinf(fidelity(target, target)["psnr_y"])


def test_colourfulness():
    grey = np.full((8, 8, 3), 120, np.uint8)
    assert colourfulness(grey) == 0.0
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 255  # rg = 255, yb = 127.5, no spread
    assert colourfulness(red) == pytest.approx(0.3 * math.hypot(255, 127.5))
    rng = np.random.default_rng(0)
    vivid = rng.integers(0, 256, (16, 16, 3)).astype(np.uint8)
    assert colourfulness(vivid) > colourfulness((vivid // 4 + 96).astype(np.uint8))
