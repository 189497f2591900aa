"""EMA of weights: warm-up so short runs are not averaged with their random init."""

import torch
from torch import nn

from genvision.train.ema import EMA


def test_ema_warm_up_then_full_decay():
    model = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.zero_()
    ema = EMA(model, 0.999)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model, 1)  # d_1 = 2 / 11: the average mostly follows the trained weights
    assert torch.allclose(ema.shadow["weight"], torch.full((1, 2), 9 / 11))
    assert ema.decay_at(10**6) == 0.999
    assert ema.decay_at(100) < 0.999


def test_swapped_restores_raw_weights_exactly():
    model = nn.Linear(3, 2)
    ema = EMA(model, 0.9)
    raw = model.weight.detach().clone()
    ema.shadow["weight"].add_(1.0)
    with ema.swapped(model):
        assert torch.equal(model.weight, raw + 1.0)
    assert torch.equal(model.weight, raw)
