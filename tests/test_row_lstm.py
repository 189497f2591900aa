"""PixelRNN Row LSTM on tiny CPU configs: causality and its triangular receptive field
(the blind spot), the row pass == the full network. What it shares with Gated PixelCNN
(normalisation, sampler, completion, save/load, CLI) is in test_pixel_family.py."""

from __future__ import annotations

import pytest
import torch

import pixel_checks as pc
from genvision.models.row_lstm import RowLSTM


def make(image_size=(5, 5), **kw) -> RowLSTM:
    return pc.make("row-lstm", image_size, **kw)


images = pc.images
HEADS = pc.HEADS


@pytest.mark.parametrize("head", list(HEADS))
def test_causal(head):
    """Parameters of (pixel i, channel c) depend on no value at or after (i, c)."""
    fields, _ = HEADS[head]
    size = (3, 4) if fields.get("channels") == 3 else (4, 5)
    deps = pc.dependency_map(make(size, **fields))
    pc.assert_causal(deps)
    if fields.get("channels") == 3:  # within a pixel: G sees R, B sees R and G
        order = pc.raster_order(3, *size)
        o = int(order[2, 1, 1])
        assert deps[o, 0, 1, 1] and deps[o, 1, 1, 1] and not deps[o, 2, 1, 1]


def test_conditional_is_causal_and_labels_matter():
    m = make((4, 4), num_classes=3).double()
    y = torch.tensor([0, 1, 2])
    pc.assert_causal(pc.dependency_map(m, y=y))
    x = images(m, 3).double()
    assert not torch.allclose(m.log_prob(x, y), m.log_prob(x, y.roll(1)))


@pytest.mark.parametrize("layers", [1, 2])
def test_triangular_receptive_field(layers):
    """The documented blind spot: pixel (i, j) sees row i - d only up to column j + d
    (first kernel 3, state-to-state width 3) and k0//2 + L*(k//2) pixels to its left."""
    deps = pc.dependency_map(make((5, 7), layers=layers))
    pc.assert_causal(deps)
    seen = deps[4 * 7 + 1, 0]  # pixel (4, 1)
    rows, cols = torch.meshgrid(torch.arange(5), torch.arange(7), indexing="ij")
    expected = (rows < 4) & (cols <= 1 + (4 - rows))
    expected[4, 0] = True  # the current row, to the left
    assert torch.equal(seen, expected)
    assert pc.unseen_earlier(deps)  # unlike Gated PixelCNN, some earlier pixels are unseen
    left = deps[4 * 7 + 6, 0, 4]  # pixel (4, 6): how far left in its own row
    assert left.tolist() == [False] * (5 - layers) + [True] * (1 + layers) + [False]


@pytest.mark.parametrize("case", ["bernoulli", "rgb-logistic", "conditional"])
def test_row_pass_reproduces_the_full_network(case):
    """The cached row-at-a-time computation gives the parameters of a full pass."""
    fields = {"num_classes": 3} if case == "conditional" else HEADS[case][0]
    m = make((5, 6), **{**fields, "input_kernel": 5}).eval()
    x = images(m, 3, seed=1)
    y = torch.tensor([2, 0, 1]) if case == "conditional" else None
    with torch.no_grad():
        full = m.params(x, y)
        xin = torch.nn.functional.pad(m.head.network_input(x), (2, 2, 2, 0))
        above = [layer.zero_state(x[:, :1, :1]) for layer in m.layers]
        for i in range(5):
            row, above = m._row(xin, i, above, y)
            assert torch.allclose(row, full[:, :, i], atol=1e-5), i


def test_rgb_widths_round_up_to_channel_groups():
    m = make((3, 3), channels=3, data_kind="rgb8", hidden=8, out_hidden=8)
    assert m.hidden == 9 and m.out1.out_channels == 9
    assert torch.isfinite(m.loss(images(m, 2))["loss"])
