"""pix2pix and CycleGAN: their losses on tiny nets, the image pool, the learning-rate
schedule, and bad input to translate."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from genvision.errors import UserError
from genvision.models.translation import (
    CycleGAN,
    CycleGANConfig,
    Pix2Pix,
    TranslationConfig,
    cycle_loss,
)
from genvision.nn.adversarial import d_objective, g_objective
from genvision.nn.image_pool import ImagePool
from genvision.train.config import TrainConfig
from genvision.train.helpers import schedule_factor
from genvision.train.phases import Stepper

NETS = {"width": 4, "depth": 1, "disc_width": 4, "disc_layers": 1, "image_size": (8, 8)}


def stacked(n: int = 4, a: int = 1, b: int = 3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, a + b, 8, 8, generator=g) * 255).round() / 255


def test_least_squares_objectives_are_zero_at_their_targets_and_quadratic_around():
    ones, zeros = torch.ones(3), torch.zeros(3)
    assert d_objective("ls", ones, zeros) == 0 and g_objective("ls", ones) == 0
    assert torch.isclose(d_objective("ls", zeros, ones), torch.tensor(2.0))
    assert torch.isclose(g_objective("ls", torch.full((2,), 3.0)), torch.tensor(4.0))


def test_cycle_loss_is_zero_for_inverse_generators_and_not_otherwise():
    a, b = torch.rand(2, 1, 4, 4), torch.rand(2, 1, 4, 4)
    assert cycle_loss(a, b, lambda t: t, lambda t: t) == (0, 0)
    assert cycle_loss(a, b, lambda t: 2 * t, lambda t: t / 2) == (0, 0)
    la, lb = cycle_loss(a, b, lambda t: t + 0.1, lambda t: t)
    assert torch.isclose(la, torch.tensor(0.1)) and torch.isclose(lb, torch.tensor(0.1))


def test_the_pool_fills_first_then_swaps_a_stored_image_half_of_the_time():
    pool = ImagePool(4, (1, 1, 1))
    first = torch.arange(4.0).reshape(4, 1, 1, 1)
    assert torch.equal(pool.query(first), first) and int(pool.count) == 4
    torch.manual_seed(0)
    swapped, n = 0, 2000
    for i in range(n):
        new = torch.full((1, 1, 1, 1), 100.0 + i)
        held = set(pool.images.flatten().tolist())
        out = pool.query(new)
        if float(out) != 100.0 + i:
            swapped += 1
            assert float(out) in held  # a stored image, now replaced by the new one
            assert 100.0 + i in pool.images.flatten().tolist()
    assert abs(swapped / n - 0.5) < 0.04
    assert torch.equal(ImagePool(0, (1, 1, 1)).query(first), first)


def test_cyclegan_terms_are_the_documented_losses():
    torch.manual_seed(0)
    model = CycleGAN(CycleGANConfig(**NETS, channels=2, a_channels=1, cycle_weight=10,
                                    cycle_weight_b=3))
    x = stacked(3, 1, 1)
    a, b = model.split(x)
    loss, terms, fake_b, fake_a = model.generator_terms(a, b)
    ab = lambda t: model.generate(model.g_ab, t)  # noqa: E731
    ba = lambda t: model.generate(model.g_ba, t)  # noqa: E731
    cyc_a, cyc_b = cycle_loss(a, b, ab, ba)
    assert torch.allclose(terms["cycle_a"], cyc_a) and torch.allclose(terms["cycle_b"], cyc_b)
    assert torch.allclose(fake_b, ab(a)) and torch.allclose(fake_a, ba(b))
    assert torch.allclose(terms["adv_ab"], g_objective("ls", model.d_b(ab(a))))
    assert torch.allclose(terms["identity_a"], (ba(a) - a).abs().mean())
    c = model.config
    # lambda_A weighs the A cycle and G_ba(a) ~ a, lambda_B the B cycle and G_ab(b) ~ b
    want = (terms["adv_ab"] + terms["adv_ba"] + 10 * cyc_a + 3 * cyc_b
            + c.identity_weight * (10 * terms["identity_a"] + 3 * terms["identity_b"]))
    assert torch.allclose(loss, want)


def test_identity_loss_only_between_domains_of_the_same_channels():
    grey_to_rgb = CycleGAN(CycleGANConfig(**NETS, channels=4, a_channels=1))
    assert not grey_to_rgb.uses_identity and "identity_a" not in grey_to_rgb.loss(stacked())
    assert CycleGAN(CycleGANConfig(**NETS, channels=6, a_channels=3)).uses_identity


def test_pix2pix_d_sees_pairs_and_l1_is_to_the_true_pair():
    torch.manual_seed(0)
    model = Pix2Pix(TranslationConfig(**NETS, channels=4, a_channels=1))
    x = stacked()
    a, b = model.split(x)
    assert torch.allclose(model.loss(x)["l1"], (model.generate(model.g_ab, a) - b).abs().mean())
    assert model.d.blocks[0][0].in_channels == 4  # conditional: D sees (a, b)


def test_a_few_pix2pix_steps_bring_the_translation_towards_the_pair():
    torch.manual_seed(0)
    model = Pix2Pix(TranslationConfig(**{**NETS, "width": 8}, channels=2, a_channels=1))
    a = (torch.rand(16, 1, 8, 8) > 0.5).float()
    x = torch.cat([a, 1 - a], 1)  # B is the negative of A
    err = lambda: float((model.translate(a) - (1 - a)).abs().mean())  # noqa: E731
    before = err()
    stepper = Stepper(model, TrainConfig(lr=3e-3), torch.device("cpu"))
    for step in range(60):
        stepper.step(x, None, step)
    assert err() < 0.6 * before


def test_a_few_cyclegan_steps_learn_a_cycle_and_train_all_four_networks():
    torch.manual_seed(0)
    model = CycleGAN(CycleGANConfig(**{**NETS, "width": 8}, channels=2, a_channels=1,
                                    pool_size=4))
    dots = (torch.rand(32, 1, 8, 8) > 0.5).float()
    a, b = 0.4 * dots, 0.6 + 0.4 * dots[torch.randperm(32)]  # dark vs bright, unpaired
    x = torch.cat([a, b], 1)
    before = model.loss(x)
    nets = (model.g_ab, model.g_ba, model.d_a, model.d_b)
    weights = [torch.cat([p.detach().flatten() for p in n.parameters()]) for n in nets]
    stepper = Stepper(model, TrainConfig(lr=3e-3, beta1=0.5), torch.device("cpu"))
    for step in range(40):
        terms = stepper.step(x, None, step)
    after = model.loss(x)
    for key in ("cycle_a", "cycle_b"):
        assert after[key] < 0.75 * before[key], (key, before[key], after[key])
    assert {"cycle_a", "cycle_b", "identity_a", "d_a", "d_b"} <= set(terms)
    for net, w in zip(nets, weights, strict=True):
        assert not torch.equal(w, torch.cat([p.detach().flatten() for p in net.parameters()]))
    assert int(model.pool_a.count) == 4  # the pools filled from the generators' fakes


def test_translate_refuses_wrong_channels_and_directions():
    p2p = Pix2Pix(TranslationConfig(**NETS, channels=4, a_channels=1))
    with pytest.raises(UserError, match=r"\[N, 1, H, W\]"):
        p2p.translate(torch.rand(2, 3, 8, 8))
    with pytest.raises(UserError, match="a2b only"):
        p2p.translate(torch.rand(2, 3, 8, 8), direction="b2a")
    cyc = CycleGAN(CycleGANConfig(**NETS, channels=4, a_channels=1))
    assert cyc.translate(torch.rand(2, 3, 8, 8), direction="b2a").shape == (2, 1, 8, 8)
    with pytest.raises(UserError, match="a2b or b2a"):
        cyc.translate(torch.rand(2, 1, 8, 8), direction="sideways")
    with pytest.raises(UserError, match=r"\[0, 1\]"):
        cyc.loss(stacked() * 2)
    with pytest.raises(ValueError, match="1 to 3 channels"):
        TranslationConfig(**NETS, channels=5, a_channels=1)


def test_hold_linear_schedule_holds_for_half_then_decays_to_zero():
    assert [schedule_factor("hold-linear", p) for p in (0, 0.25, 0.5)] == [1, 1, 1]
    assert schedule_factor("hold-linear", 0.75) == pytest.approx(0.5)
    assert schedule_factor("hold-linear", 1.0) == 0


def test_cyclegan_defaults_to_normalised_generators_and_pix2pix_to_plain_ones():
    """Plain (unnormalised) generators collapsed the MNIST <-> MNIST-M CycleGAN (BENCHMARKS:
    translation), so its default is the GroupNorm residual U-Net; --block plain remains."""
    from torch import nn

    from genvision.models.translation import CycleGAN, CycleGANConfig, Pix2Pix, TranslationConfig

    def norms(net: nn.Module) -> int:
        return sum(isinstance(m, nn.GroupNorm) for m in net.modules())

    cyc = CycleGAN(CycleGANConfig(image_size=(8, 8)))
    assert norms(cyc.g_ab) > 0 and norms(cyc.g_ba) > 0
    assert norms(CycleGAN(CycleGANConfig(image_size=(8, 8), block="plain")).g_ab) == 0
    assert norms(Pix2Pix(TranslationConfig(image_size=(8, 8))).g_ab) == 0


def test_the_cycle_through_the_colour_side_is_weak_by_default_and_settable():
    def weights(**kw):
        c = CycleGANConfig(**NETS, **kw)
        return c.cycle_weight, c.cycle_weight_b
    assert weights(channels=4, a_channels=1) == (10.0, 1.0)  # grey -> colour: B's is weak
    assert weights(channels=4, a_channels=3) == (1.0, 10.0)  # colour -> grey: A's is weak
    assert weights(channels=2, a_channels=1) == (10.0, 10.0)  # same channels: CycleGAN's
    assert weights(channels=6, a_channels=3) == (10.0, 10.0)
    assert weights(channels=4, a_channels=1, cycle_weight_b=7.0) == (10.0, 7.0)
    # the resolved value is what a checkpoint stores, so a reload trains the same loss
    c = CycleGANConfig(**NETS, channels=4, a_channels=1)
    assert CycleGANConfig(**dataclasses.asdict(c)).cycle_weight_b == 1.0
