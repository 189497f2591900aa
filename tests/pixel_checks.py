"""Checks every fully visible (PixelAutoregressive) model must pass, shared by its tests.

The ``test_*`` files import it as ``pixel_checks`` (pytest puts tests/ on sys.path).

* :func:`total_probability` -- exp(log p) summed over *every* image of a tiny shape (exact
  normalisation of the whole autoregressive product, float64);
* :func:`dependency_map` -- which input values each output value's parameters depend on,
  from exact gradients: the causality check (nothing at or after (pixel, channel) in
  raster-then-channel order) and the blind-spot check (what earlier values are seen);
* ``TINY``, ``HEADS``, :func:`make` and :func:`images` -- tiny configs of the
  gated-pixelcnn and row-lstm families, whose common behaviour tests/test_pixel_family.py
  checks once for both.
"""

from __future__ import annotations

import torch
from torch import Tensor

from genvision.models.gated_pixelcnn import GatedPixelCNN, GatedPixelCNNConfig
from genvision.models.pixel_base import PixelAutoregressive
from genvision.models.row_lstm import RowLSTM, RowLSTMConfig

TINY = {"hidden": 6, "layers": 2, "kernel": 3, "input_kernel": 3, "out_hidden": 12}
HEADS = {  # name -> config fields and the number of levels of its data
    "bernoulli": ({}, 2),
    "categorical": ({"data_kind": "grey8", "head": "categorical", "levels": 4}, 4),
    "logistic": ({"data_kind": "grey8", "head": "logistic_mixture", "levels": 4,
                  "n_mix": 2}, 4),
    "rgb-categorical": ({"channels": 3, "data_kind": "rgb8", "head": "categorical",
                         "levels": 3}, 3),
    "rgb-logistic": ({"channels": 3, "data_kind": "rgb8", "head": "logistic_mixture",
                      "levels": 2, "n_mix": 2}, 2),
}
FAMILIES = {"gated-pixelcnn": (GatedPixelCNN, GatedPixelCNNConfig),
            "row-lstm": (RowLSTM, RowLSTMConfig)}


def make(family: str, image_size=(5, 5), **kw) -> PixelAutoregressive:
    """A tiny model of ``family`` ('gated-pixelcnn' or 'row-lstm')."""
    cls, config = FAMILIES[family]
    return cls(config(**{**TINY, "image_size": image_size, **kw}))


def images(model: PixelAutoregressive, n: int = 4, seed: int = 0) -> Tensor:
    """Random images on the model's levels: [n, C, H, W] in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    levels = getattr(model.head, "levels", 2)
    k = torch.randint(levels, (n, *model.config.shape), generator=g)
    return k.float() / (levels - 1)


def all_images(channels: int, height: int, width: int, levels: int) -> Tensor:
    """Every image with ``levels`` values per channel: [levels**(C*H*W), C, H, W] float64."""
    d = channels * height * width
    grid = torch.cartesian_prod(*[torch.arange(levels, dtype=torch.float64)] * d)
    return grid.reshape(-1, channels, height, width) / (levels - 1)


def total_probability(model: PixelAutoregressive, levels: int, y: int | None = None) -> float:
    """sum_x p(x) over all images of the model's shape (float64; should be 1)."""
    model = model.double().eval()
    x = all_images(*model.config.shape, levels)
    labels = None if y is None else torch.full((x.shape[0],), y)
    with torch.no_grad():
        return torch.logsumexp(model.log_prob(x, labels), 0).exp().item()


def raster_order(channels: int, height: int, width: int) -> Tensor:
    """Position of each value in the model's order, [C, H, W]: pixel-major, then channel."""
    pix = torch.arange(height * width).reshape(height, width)
    return pix[None] * channels + torch.arange(channels)[:, None, None]


def dependency_map(model: PixelAutoregressive, n: int = 6, y: Tensor | None = None,
                   seed: int = 0) -> Tensor:
    """deps[o, c, i, j]: the parameters of the value at order position o have a non-zero
    gradient w.r.t. input value (c, i, j) for at least one of ``n`` random images (one per
    label when labels ``y`` are given).

    Returns: bool [C*H*W, C, H, W] (float64 gradients, so "zero" means exactly zero).
    """
    n = n if y is None else len(y)
    model = model.double().eval()
    C, H, W = model.config.shape
    P = model.head.params_per_channel
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, C, H, W, generator=g, dtype=torch.float64).requires_grad_()
    params = model.params(x, y)
    order = raster_order(C, H, W)
    deps = torch.zeros(C * H * W, C, H, W, dtype=torch.bool)
    for c in range(C):
        for i in range(H):
            for j in range(W):
                out = params[:, c * P:(c + 1) * P, i, j]
                # a random projection of the P parameters: no cancellation by symmetry
                w = torch.randn(out.shape, generator=g, dtype=torch.float64)
                (grad,) = torch.autograd.grad((out * w).sum(), x, retain_graph=True)
                deps[order[c, i, j]] = (grad != 0).any(0)
    return deps


def assert_causal(deps: Tensor) -> None:
    """No output depends on its own value or any later one."""
    positions = deps.shape[0]
    order = raster_order(*deps.shape[1:])
    for o in range(positions):
        later = order >= o
        assert not deps[o][later].any(), f"position {o} sees {deps[o][later].nonzero().tolist()}"


def unseen_earlier(deps: Tensor) -> list[tuple[int, int]]:
    """(position, earlier position) pairs where an earlier value is *not* seen."""
    order = raster_order(*deps.shape[1:])
    missing = []
    for o in range(deps.shape[0]):
        for e in (~deps[o] & (order < o)).nonzero().tolist():
            missing.append((o, int(order[tuple(e)])))
    return missing
