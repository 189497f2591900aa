import math

import pytest
import torch

from genvision.metrics.likelihood import bits_per_dim, nll_summary


def test_bits_per_dim_float_and_tensor():
    assert bits_per_dim(784 * math.log(2), 784) == pytest.approx(1.0)
    t = bits_per_dim(torch.tensor([0.0, 2 * 10 * math.log(2)]), 10)
    assert torch.allclose(t, torch.tensor([0.0, 2.0]))
    with pytest.raises(ValueError):
        bits_per_dim(1.0, 0)


def test_nll_summary_mean_stderr_protocol():
    lp = torch.tensor([-80.0, -90.0, -100.0, -90.0])
    proto = {"kind": "bound", "estimator": "IWAE-1000", "k": 1000}
    s = nll_summary(lp, 784, proto)
    assert s["nll_nats"] == pytest.approx(90.0)
    assert s["n"] == 4
    assert s["nll_nats_stderr"] == pytest.approx(torch.tensor([80.0, 90, 100, 90]).std().item() / 2)
    assert s["bits_per_dim"] == pytest.approx(90.0 / (784 * math.log(2)))
    assert s["protocol"] == proto and s["protocol"] is not proto
    assert nll_summary(torch.tensor([-5.0]), 1, {})["nll_nats_stderr"] == 0.0


def test_nll_summary_rejects_bad_input():
    with pytest.raises(ValueError):
        nll_summary(torch.tensor([]), 10, {})
    with pytest.raises(ValueError):
        nll_summary(torch.tensor([-1.0, float("nan")]), 10, {})
