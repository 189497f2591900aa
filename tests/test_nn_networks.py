"""The networks moved from tasks/ into nn/ keep state-dict keys, initialisation and outputs.

Old and new are built from the same seed: equal keys and tensors mean an old checkpoint
loads; equal outputs mean the moved code computes the same function.
"""

from __future__ import annotations

import pytest
import torch

import legacy_nets as old
from genvision.nn.masked import CausalConv2d
from genvision.nn.patchgan import PatchDiscriminator
from genvision.nn.srresnet import SRNet
from genvision.nn.unet import UNet


def _pair(make_old, make_new):
    torch.manual_seed(0)
    a = make_old()
    torch.manual_seed(0)
    b = make_new()
    return a, b


def _same(a: torch.nn.Module, b: torch.nn.Module, *inputs: torch.Tensor) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    # perturb so zero-initialised output layers do not hide a difference, then load the
    # old network's state dict into the new class (what loading a checkpoint does)
    with torch.no_grad():
        for p in a.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    b.load_state_dict(a.state_dict(), strict=True)
    torch.testing.assert_close(b(*inputs), a(*inputs), rtol=0, atol=0)


@pytest.mark.parametrize("upsampler,scale", [("espcn", 4), ("srresnet", 4), ("srresnet", 3)])
def test_srnet_unchanged(upsampler, scale):
    a, b = _pair(lambda: old.SRNet(scale, 8, 2, True, upsampler),
                 lambda: SRNet(scale, 8, 2, True, upsampler))
    assert a.receptive_radius == b.receptive_radius
    _same(a, b, torch.rand(2, 3, 6, 5))


def test_unet_unchanged():
    a, b = _pair(lambda: old.UNet(8, 2), lambda: UNet(8, 2))
    assert a.multiple == b.multiple
    _same(a, b, torch.rand(2, 1, 12, 8))


def test_patch_discriminator_unchanged():
    a, b = _pair(lambda: old.PatchDiscriminator(3, 8, 2), lambda: PatchDiscriminator(3, 8, 2))
    _same(a, b, torch.rand(2, 3, 24, 24))


def test_unet_conditioning_is_optional_and_used():
    net = UNet(4, 2, in_channels=3, out_channels=3, output="linear", cond_dim=5)
    assert set(UNet(4, 2).state_dict()) < set(net.state_dict())    # only cond_proj.* added
    with torch.no_grad():
        net.out.weight.normal_()
    x, c = torch.rand(2, 3, 8, 8), torch.randn(2, 5)
    y = net(x, c)
    assert y.shape == (2, 3, 8, 8)
    assert not torch.allclose(y, net(x, c + 1))                     # the condition matters
    with pytest.raises(ValueError, match="cond"):
        net(x)
    with pytest.raises(ValueError, match="cond"):
        UNet(4, 2)(torch.rand(1, 1, 8, 8), c[:1])


@pytest.mark.parametrize("mask_type", ["A", "B"])
@pytest.mark.parametrize("c_in,c_out,k", [(1, 4, 5), (3, 6, 3), (2, 2, 7)])
def test_causal_conv_replaces_the_vae_masked_conv(mask_type, c_in, c_out, k):
    """The VAE's old spatial-only MaskedConv2d is CausalConv2d with data_channels=1: same
    mask, same parameters (old checkpoints load), same outputs."""
    a, b = _pair(lambda: old.MaskedConv2d(c_in, c_out, k, mask_type),
                 lambda: CausalConv2d(c_in, c_out, k, data_channels=1, mask_type=mask_type))
    assert torch.equal(a.mask.expand_as(b.mask), b.mask)
    b.load_state_dict(a.state_dict(), strict=True)
    x = torch.rand(2, c_in, 6, 7)
    torch.testing.assert_close(b(x), a(x), rtol=0, atol=1e-6)


def test_causal_conv_is_causal():
    """Output (i, j) changes only with inputs at pixels before (i, j) in raster order (A)."""
    torch.manual_seed(0)
    conv = CausalConv2d(1, 3, 5, data_channels=1, mask_type="A")
    x = torch.rand(1, 1, 6, 6, requires_grad=True)
    i, j = 3, 2
    conv(x)[0, :, i, j].sum().backward()
    seen = x.grad[0, 0] != 0
    before = torch.zeros(6, 6, dtype=torch.bool)
    before.view(-1)[: i * 6 + j] = True
    assert not (seen & ~before).any() and seen.any()
