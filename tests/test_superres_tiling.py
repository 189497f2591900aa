"""Tiled inference equals untiled inference; tiles stay bounded."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genvision.apps.superres.tiling import (
    _spans,
    image_tensor,
    iter_tiles,
    to_uint8,
    upscale_array,
    upscale_tensor,
)
from genvision.models.superres import SRResNet, SRResNetConfig


@pytest.fixture(scope="module", params=[(2, "espcn"), (3, "srresnet"), (4, "espcn"),
                                        (4, "srresnet")])
def model(request):
    torch.manual_seed(0)
    scale, upsampler = request.param
    m = SRResNet(SRResNetConfig(scale=scale, width=8, blocks=2, upsampler=upsampler))
    tail = m.generator.tail
    last = tail[0] if isinstance(tail, torch.nn.Sequential) else tail
    torch.nn.init.normal_(last.weight, std=0.1)  # not the zero (bicubic) start
    return m.eval()


def test_tiled_equals_untiled(model):
    lr = torch.rand(1, 3, 37, 29, generator=torch.Generator().manual_seed(1))
    full = upscale_tensor(model, lr, tile=None)
    tiled = upscale_tensor(model, lr, tile=10)  # overlap: the receptive radius
    assert tiled.shape == full.shape == (1, 3, 37 * model.scale, 29 * model.scale)
    assert (tiled - full).abs().max() < 1e-4


def test_too_little_overlap_would_show_seams(model):
    lr = torch.rand(1, 3, 30, 30, generator=torch.Generator().manual_seed(2))
    full = upscale_tensor(model, lr, tile=None)
    assert (upscale_tensor(model, lr, tile=10, overlap=0) - full).abs().max() > 1e-3


def test_tiles_are_bounded_and_cover_the_image_once():
    spans = _spans(1000, 128, 20)
    assert spans[0] == (0, 128, 0, 148) and spans[-1][1] == 1000
    assert all(pe - ps <= 128 + 40 for _, _, ps, pe in spans)
    covered = np.zeros(1000, int)
    for s, e, _, _ in spans:
        covered[s:e] += 1
    assert (covered == 1).all()


def test_uint8_path_matches_the_float_path(model):
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (21, 26, 3)).astype(np.uint8)
    out = upscale_array(model, img, tile=8)
    ref = to_uint8(upscale_tensor(model, image_tensor(img), tile=None))
    assert out.shape == (21 * model.scale, 26 * model.scale, 3)
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1


def test_iter_tiles_calls_the_network_on_bounded_tiles(model):
    sizes = []

    def fn(x):
        sizes.append(tuple(x.shape[-2:]))
        return model.upscale(x)

    lr = torch.rand(1, 3, 40, 40)
    list(iter_tiles(fn, lr, model.scale, tile=16, overlap=4))
    assert len(sizes) == 9 and max(max(s) for s in sizes) <= 16 + 8
