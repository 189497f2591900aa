"""The loop owns optimisation: phases, repeats, clipping, freezing and non-finite checks
apply to every model alike (SRGAN and the pix2pix colorizer included)."""

from __future__ import annotations

import math

import pytest
import torch

import tiny_model as tiny
from genvision.errors import TrainingDiverged
from genvision.models.colorize import ColorizeGAN, ColorizeGANConfig
from genvision.models.protocol import OptimizerSpec, Phase
from genvision.models.superres import SRGAN, SRGANConfig
from genvision.train import TrainConfig
from genvision.train.phases import PhaseRunner, Stepper

CPU = torch.device("cpu")


def grad_norms(model: torch.nn.Module, prefix: str) -> float:
    grads = [p.grad.flatten() for n, p in model.named_parameters()
             if n.startswith(prefix) and p.grad is not None]
    return float(torch.cat(grads).norm())


@pytest.mark.parametrize("build", [
    lambda: SRGAN(SRGANConfig(scale=2, width=4, blocks=1, disc_width=4, disc_layers=2)),
    lambda: ColorizeGAN(ColorizeGANConfig(width=4, depth=2, disc_width=4, disc_layers=2)),
])
def test_grad_clip_reaches_every_phase_of_the_image_to_image_gans(build):
    """Before the loop owned optimisation, SRGAN and pix2pix silently ignored --grad-clip."""
    torch.manual_seed(0)
    model = build()
    clip = 1e-4
    terms = Stepper(model, TrainConfig(grad_clip=clip, ema_decay=0), CPU).step(
        torch.rand(2, 3, 16, 16), None, 0)
    assert terms["discriminator_grad_norm"] > clip and terms["generator_grad_norm"] > clip
    # the gradients each optimiser stepped with were clipped to the norm
    assert grad_norms(model, "discriminator.") <= clip * 1.001
    assert grad_norms(model, "generator.") <= clip * 1.001


class Counting(tiny.TinyModel):
    """Two phases: ``a`` (repeated 3 times, enc) and ``b`` (dec, enc frozen)."""

    calls: list

    def phases(self, cfg):
        self.calls = []

        def loss_a(x, y, ctx):
            self.calls.append(("a", ctx.step, ctx.repeat))
            ctx.scratch["seen"] = ctx.repeat
            out = self.loss(x, y, step=ctx.step)
            return out["loss"], {"mse": out["mse"]}

        def loss_b(x, y, ctx):
            self.calls.append(("b", ctx.step, ctx.scratch["seen"],
                               self.enc.weight.requires_grad))
            out = self.loss(x, y, step=ctx.step)
            return out["loss"] * self.config.nan_at_step_b, {"reg": out["reg"]}

        return [Phase("a", self.enc.parameters(), OptimizerSpec("adam", cfg.lr), loss_a,
                      repeats=3),
                Phase("b", self.dec.parameters(), OptimizerSpec("adamw", cfg.lr), loss_b,
                      frozen=(self.enc,))]


def test_phases_run_in_order_with_repeats_shared_context_and_frozen_modules():
    model = Counting(tiny.TinyConfig())
    model.config.nan_at_step_b = 1.0
    stepper = Stepper(model, TrainConfig(ema_decay=0), CPU)
    terms = stepper.step(tiny.make_data().x[:8], None, 5)
    assert model.calls == [("a", 5, 0), ("a", 5, 1), ("a", 5, 2), ("b", 5, 2, False)]
    assert model.enc.weight.requires_grad  # unfrozen after the phase
    assert set(terms) == {"mse", "reg", "a_grad_norm", "b_grad_norm"}
    assert set(stepper.runner.optimizers) == {"a", "b"}
    assert isinstance(stepper.runner.optimizers["a"], torch.optim.Adam)


def test_a_non_finite_second_phase_stops_before_its_step_and_names_the_term():
    model = Counting(tiny.TinyConfig())
    model.config.nan_at_step_b = math.nan
    stepper = Stepper(model, TrainConfig(ema_decay=0), CPU)
    dec_before = model.dec.weight.detach().clone()
    with pytest.raises(TrainingDiverged, match="the loss of phase 'b'"):
        # its logged term is finite but the loss it minimises is NaN
        stepper.step(tiny.make_data().x[:8], None, 0)
    assert torch.equal(model.dec.weight, dec_before)  # phase b never stepped


def test_lr_factor_scales_every_phase_from_its_own_base_rate():
    model = Counting(tiny.TinyConfig())
    runner = PhaseRunner(model.phases(TrainConfig(lr=0.01)), CPU, True, 0.0, 1)
    runner.set_lr_factor(0.5)
    assert [o.param_groups[0]["lr"] for o in runner.optimizers.values()] == [0.005, 0.005]
    with pytest.raises(ValueError, match="unique names"):
        PhaseRunner(model.phases(TrainConfig()) * 2, CPU, True, 0.0, 1)
