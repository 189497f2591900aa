"""The invertible layers of the flows (genvision.nn.flow_layers): each one inverts
exactly, and its log-determinant is log |det J| of its Jacobian computed by autograd."""

from __future__ import annotations

import pytest
import torch
from torch.autograd.functional import jacobian

from genvision.nn.flow_layers import (
    ActNorm,
    AffineCoupling,
    FlowSequence,
    InvConv1x1,
    LogitTransform,
    SigmoidTransform,
    Squeeze,
    checkerboard,
    data_init,
)


def perturbed(layer: torch.nn.Module, seed: int = 0, scale: float = 0.3) -> torch.nn.Module:
    """The layer with every parameter moved off its (often identity) initialisation."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale)
    return layer


def layers(c: int) -> dict[str, torch.nn.Module]:
    """One of every layer kind for c-channel inputs (c even), perturbed."""
    torch.manual_seed(0)
    out = {
        "coupling-checkerboard-0": AffineCoupling(c, "checkerboard", 0, 6, 1),
        "coupling-checkerboard-1": AffineCoupling(c, "checkerboard", 1, 6, 0),
        "coupling-channel-0": AffineCoupling(c, "channel", 0, 6, 1),
        "coupling-channel-1": AffineCoupling(c, "channel", 1, 6, 0),
        "squeeze": Squeeze(),
        "actnorm": ActNorm(c),
        "invconv": InvConv1x1(c),
        "logit": LogitTransform(0.05),
        "sigmoid": SigmoidTransform(),
    }
    return {k: perturbed(v, i) for i, (k, v) in enumerate(out.items())}


def inputs(name: str, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(shape, generator=g, dtype=dtype)
    return torch.rand(shape, generator=g, dtype=dtype) if name == "logit" else x


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-4), (torch.float64, 1e-10)])
def test_every_layer_inverts_within_tolerance(dtype, tol):
    for name, layer in layers(4).items():
        layer = layer.to(dtype)
        x = inputs(name, (3, 4, 6, 4), dtype)
        y, ld = layer(x)
        back, ld_inv = layer.inverse(y)
        assert (back - x).abs().max() < tol, name
        assert (ld + ld_inv).abs().max() < tol * 10, name  # inverse log-det = minus forward


def jacobian_logdet(f, x: torch.Tensor) -> torch.Tensor:
    """log |det df/dx| of one input x [C, H, W] by autograd (float64)."""
    def flat(v: torch.Tensor) -> torch.Tensor:
        return f(v.reshape(1, *x.shape))[0].reshape(-1)

    j = jacobian(flat, x.reshape(-1))
    return torch.linalg.slogdet(j)[1]


@pytest.mark.parametrize("name", list(layers(4)))
def test_each_layer_log_det_equals_autograd_jacobian(name):
    layer = layers(4)[name].double()
    x = inputs(name, (1, 4, 2, 4), torch.float64)
    _, ld = layer(x)
    assert torch.allclose(ld[0], jacobian_logdet(lambda v: layer(v)[0], x[0]), atol=1e-9)
    y = layer(x)[0]
    _, ld_inv = layer.inverse(y)
    assert torch.allclose(ld_inv[0], jacobian_logdet(lambda v: layer.inverse(v)[0], y[0]),
                          atol=1e-9)


def test_a_sequence_adds_log_dets_and_inverts_in_reverse_order():
    torch.manual_seed(0)
    seq = perturbed(FlowSequence([ActNorm(1), AffineCoupling(1, "checkerboard", 0, 4),
                                  Squeeze(), InvConv1x1(4),
                                  AffineCoupling(4, "channel", 1, 4)])).double()
    x = torch.randn(1, 1, 4, 4, dtype=torch.float64)
    y, ld = seq(x)
    assert torch.allclose(ld[0], jacobian_logdet(lambda v: seq(v)[0], x[0]), atol=1e-9)
    assert (seq.inverse(y)[0] - x).abs().max() < 1e-10


def test_couplings_leave_the_conditioning_half_unchanged_and_start_as_identity():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 4, 4)
    fresh = AffineCoupling(4, "channel", 0, 6)
    y, ld = fresh(x)
    assert torch.equal(y, x) and torch.equal(ld, torch.zeros(2))  # zero-initialised output
    layer = perturbed(AffineCoupling(4, "checkerboard", 1, 6))
    b = checkerboard(4, 4, 1)
    y, _ = layer(x)
    assert torch.equal(y * b, x * b) and not torch.allclose(y * (1 - b), x * (1 - b))
    layer = perturbed(AffineCoupling(4, "channel", 1, 6))
    y, _ = layer(x)
    assert torch.equal(y[:, 2:], x[:, 2:]) and not torch.allclose(y[:, :2], x[:, :2])


def test_a_coupling_uses_its_condition():
    torch.manual_seed(0)
    layer = perturbed(AffineCoupling(1, "checkerboard", 0, 6, 0, cond_channels=3))
    x, cond = torch.randn(2, 1, 4, 4), torch.randn(2, 3, 4, 4)
    y, ld = layer(x, cond)
    assert not torch.allclose(y, layer(x, cond + 1)[0])
    assert torch.allclose(layer.inverse(y, cond)[0], x, atol=1e-5)


def test_lu_conv_log_det_is_log_abs_det_of_its_weight():
    torch.manual_seed(3)
    conv = perturbed(InvConv1x1(5)).double()
    w = conv.weight()
    assert torch.allclose(conv.log_s.sum(), torch.linalg.slogdet(w)[1], atol=1e-12)
    x = torch.randn(2, 5, 3, 2, dtype=torch.float64)
    assert torch.allclose(conv(x)[1], 6 * torch.linalg.slogdet(w)[1].expand(2), atol=1e-10)
    fresh = InvConv1x1(5).double()  # initialised as a rotation: |det W| = 1
    assert abs(float(torch.linalg.slogdet(fresh.weight().detach())[1])) < 1e-6
    assert torch.allclose(fresh.weight() @ fresh.weight().T, torch.eye(5, dtype=torch.float64),
                          atol=1e-6)


def test_actnorm_data_init_gives_zero_mean_and_unit_variance_per_channel():
    torch.manual_seed(0)
    x = torch.randn(32, 3, 5, 5) * torch.tensor([0.1, 2.0, 7.0])[:, None, None] + 4.0
    seq = FlowSequence([ActNorm(3), InvConv1x1(3), ActNorm(3)])
    outputs = []
    handles = [m.register_forward_hook(lambda _m, _i, out: outputs.append(out[0]))
               for m in seq if isinstance(m, ActNorm)]
    data_init(seq, lambda: seq(x))
    for h in handles:
        h.remove()
    for out in outputs:  # both: the second sees the first one's normalised output
        assert torch.allclose(out.mean((0, 2, 3)), torch.zeros(3), atol=1e-5)
        assert torch.allclose(out.var((0, 2, 3), unbiased=False), torch.ones(3), atol=1e-4)
    before = [p.clone() for p in seq.parameters()]
    seq(x + 1)  # initialisation happens once: a later pass changes nothing
    assert all(torch.equal(a, b) for a, b in zip(before, seq.parameters(), strict=True))


def test_squeeze_moves_each_2x2_block_into_channels():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    y, _ = Squeeze()(x)
    assert y.shape == (1, 4, 2, 2)
    assert y[0, :, 0, 0].tolist() == [0.0, 1.0, 4.0, 5.0]  # the top-left block


def test_logit_transform_maps_the_unit_interval_inside_alpha():
    layer = LogitTransform(0.05)
    y, _ = layer(torch.tensor([[0.0, 1.0]]))
    assert torch.allclose(torch.sigmoid(y), torch.tensor([[0.05, 0.95]]))
    with pytest.raises(ValueError):
        LogitTransform(0.5)
