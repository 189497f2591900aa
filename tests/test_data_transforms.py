"""Pixel transforms: binarisation (static = benchmark call), quantisation, resize, grey."""

import numpy as np
import pytest
import torch

from genvision.data.transforms import (
    binarize_dynamic,
    binarize_static,
    dequantize,
    quantize,
    resize_pad,
    resize_pad_array,
    to_float,
    to_grayscale,
)


def _pixels(shape=(20, 1, 8, 8), seed=0):
    return torch.randint(0, 256, shape, generator=torch.Generator().manual_seed(seed),
                         dtype=torch.uint8)


def test_static_binarisation_is_the_benchmark_call():
    x = to_float(_pixels())
    want = torch.bernoulli(x, generator=torch.Generator().manual_seed(0))
    assert torch.equal(binarize_static(x, 0), want)
    assert not torch.equal(binarize_static(x, 1), want)
    assert set(binarize_static(x, 0).unique().tolist()) == {0.0, 1.0}


def test_dynamic_binarisation_reproducible_and_fresh():
    x = torch.full((4, 1, 16, 16), 0.5)
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    a1, a2 = binarize_dynamic(x, g1), binarize_dynamic(x, g1)
    assert torch.equal(a1, binarize_dynamic(x, g2)) and torch.equal(a2, binarize_dynamic(x, g2))
    assert not torch.equal(a1, a2)  # a new draw per batch
    assert set(a1.unique().tolist()) == {0.0, 1.0}
    assert binarize_dynamic(torch.ones(3, 1, 2, 2), g1).eq(1).all()
    assert binarize_dynamic(torch.zeros(3, 1, 2, 2), g1).eq(0).all()


def test_dequantisation_in_unit_interval_and_invertible():
    px = torch.arange(256, dtype=torch.uint8).repeat(40).view(-1, 1, 16, 16)
    x = to_float(px)
    out = dequantize(x, torch.Generator().manual_seed(0))
    assert out.min() >= 0 and out.max() < 1
    assert torch.equal(torch.floor(out * 256).to(torch.uint8), px)
    assert not torch.equal(out, dequantize(x, torch.Generator().manual_seed(1)))


def test_dequantisation_survives_u_next_to_one(monkeypatch):
    # With u = 1 - 2**-24 the plain (x*255 + u)/256 rounds up to the next level in float32.
    x = to_float(torch.arange(256, dtype=torch.uint8))
    naive = (x * 255 + (1 - 2**-24)) / 256
    assert (torch.floor(naive * 256) != torch.arange(256)).any()
    monkeypatch.setattr(torch, "rand", lambda shape, **kw: torch.full(shape, 1 - 2**-24))
    out = dequantize(x, torch.Generator())
    assert out.max() < 1 and torch.equal(torch.floor(out * 256), torch.arange(256.0))


def test_quantize_keeps_top_bits():
    px = torch.tensor([0, 7, 8, 255], dtype=torch.uint8)
    assert quantize(px, 5).tolist() == [0, 0, 1, 31]
    assert quantize(px, 8).tolist() == px.tolist()
    with pytest.raises(ValueError):
        quantize(px, 0)


def test_grayscale_bt601():
    x = torch.tensor([[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 10, 10]], dtype=torch.uint8)
    x = x.view(4, 3, 1, 1)
    assert to_grayscale(x).flatten().tolist() == [76, 150, 29, 10]
    grey = _pixels((2, 1, 3, 3))
    assert torch.equal(to_grayscale(grey), grey)


def test_resize_pad_shape_aspect_and_padding():
    img = np.full((10, 20, 3), 200, dtype=np.uint8)  # wide: 2:1
    out = resize_pad_array(img, 8)
    assert out.shape == (8, 8, 3)
    assert (out[:2] == 0).all() and (out[6:] == 0).all()  # 4 rows of content, centred
    assert (out[2:6] == 200).all()
    batch = resize_pad(_pixels((3, 1, 28, 28)), 14)
    assert batch.shape == (3, 1, 14, 14) and batch.dtype == torch.uint8
    same = _pixels((2, 3, 5, 5))
    assert resize_pad(same, 5) is same
    assert resize_pad(_pixels((2, 3, 5, 7)), 32).shape == (2, 3, 32, 32)
