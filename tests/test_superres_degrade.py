"""Degradation and the bicubic baseline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from genvision.data.degrade import (
    Bicubic,
    check_scale,
    downscale,
    mod_crop,
    upscale_bicubic,
)
from genvision.errors import UserError


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_of_a_constant_image_is_constant(scale):
    x = torch.full((1, 3, 12 * scale, 8 * scale), 0.3)
    lr = downscale(x, scale, quantize=False)
    assert lr.shape == (1, 3, 12, 8)
    torch.testing.assert_close(lr, torch.full_like(lr, 0.3))
    up = upscale_bicubic(lr, scale)
    assert up.shape == x.shape
    torch.testing.assert_close(up, x)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_downscale_matches_pillow_bicubic(scale):
    from skimage.data import astronaut

    img = astronaut()[:120, :96]
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    lr = (downscale(x, scale)[0].permute(1, 2, 0) * 255).round().numpy()
    pil = np.asarray(Image.fromarray(img).resize((96 // scale, 120 // scale), Image.BICUBIC))
    diff = np.abs(lr - pil)  # same kernel; Pillow rounds in fixed point
    assert diff.max() <= 2.0 and diff.mean() < 0.2


def test_downscale_rounds_to_8_bits_and_needs_a_multiple():
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    lr = downscale(x, 4)
    torch.testing.assert_close(lr * 255, (lr * 255).round())
    with pytest.raises(ValueError):
        downscale(x[..., :15, :], 4)
    assert mod_crop(x[..., :15, :14], 4).shape[-2:] == (12, 12)


def test_bicubic_method_and_scale_check():
    assert Bicubic(3).upscale(torch.rand(1, 3, 5, 6)).shape == (1, 3, 15, 18)
    with pytest.raises(UserError, match="x5"):
        check_scale(5)
