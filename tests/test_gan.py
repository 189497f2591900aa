"""Tiny-config tests of the GAN family (CPU, 8x8 images, a few seconds)."""

from __future__ import annotations

import json
import math

import pytest
import torch

import tiny_model as tiny  # tests/tiny_model.py (its load_model tolerates half-built trees)
from genvision.callbacks import TrainState
from genvision.errors import TrainingDiverged, UserError
from genvision.models.gan import (
    DCGAN,
    GAN,
    SNGAN,
    WGANGP,
    GANConfig,
    LatentSampler,
    gradient_penalty,
)
from genvision.models.gan_watch import GANWatcher
from genvision.nn.diffaugment import diff_augment, parse_policy
from genvision.train import TrainConfig, TrainData, load_training_state, train
from genvision.train.phases import Stepper

TINY = {"image_size": (8, 8), "data_kind": "grey8", "latent_dim": 4, "g_width": 4,
        "d_width": 4, "label_dim": 3}
MODELS = [DCGAN, WGANGP, SNGAN]


def make(cls=DCGAN, **kw) -> GAN:
    return cls(cls.config_class(**{**TINY, **kw}))


def images(n: int = 16, seed: int = 0, shape=(1, 8, 8)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, *shape, generator=g) * 255).round() / 255


def labels(n: int = 16, k: int = 3) -> torch.Tensor:
    return torch.arange(n) % k


def train_cfg(**kw) -> TrainConfig:
    opts = dict(batch_size=8, log_every=2, checkpoint_every=3, sample_every=0, seed=1,
                progress=False, ema_decay=0.9)
    opts.update(kw)
    return TrainConfig(**opts)


def stepper(m: GAN, **cfg) -> Stepper:
    """The loop's training step (phases, EMA) for ``m`` without a run directory."""
    return Stepper(m, TrainConfig(**cfg), torch.device("cpu"))


def flat(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([t.detach().flatten().float() for t in module.state_dict().values()])


@pytest.mark.parametrize("cls", MODELS)
@pytest.mark.parametrize("conditional", [False, True])
def test_shapes_and_finite_terms_for_every_loss(cls, conditional):
    k = 3 if conditional else 0
    m = make(cls, num_classes=k, r1_gamma=1.0, diffaug="color,translation,cutout")
    x, y = images(), (labels() if k else None)
    terms = m.loss(x, y)
    want = {"loss", "d_real", "d_fake", "g_loss", "r1"} | (
        {"w_dist", "gp"} if cls is WGANGP else set())
    assert set(terms) == want
    assert all(v.shape == () and torch.isfinite(v) for v in terms.values())
    out = stepper(m).step(x, y, 0)
    assert {"d_grad_norm", "g_grad_norm", "g_loss", "loss"} <= set(out)
    assert all(math.isfinite(v) for v in out.values())
    s = m.sample(5, generator=torch.Generator().manual_seed(0))
    assert s.shape == (5, 1, 8, 8) and s.min() >= 0 and s.max() <= 1
    assert torch.equal(s, (s * 255).round() / 255)  # on the 256 levels of 8-bit data
    figs = m.figures(x, y, generator=torch.Generator().manual_seed(0))
    assert figs["interpolations"].shape == (32, 1, 8, 8)


def test_registered_names_defaults_and_protocol():
    assert (DCGAN.name, WGANGP.name, SNGAN.name) == ("dcgan", "wgan-gp", "sngan")
    assert [c.config_class().loss for c in MODELS] == ["ns", "wgan-gp", "hinge"]
    assert SNGAN.config_class().spectral_norm and not DCGAN.config_class().spectral_norm
    assert WGANGP.config_class().n_critic > 1
    m = make()
    assert m.likelihood_kind == "none" and m.family == "implicit (GAN)"
    assert DCGAN.input_kind({}) == "grey8" and "binary" not in DCGAN.supported_data_kinds
    with pytest.raises(UserError, match="no likelihood.*fix: .*fid"):
        m.log_prob(images())


@pytest.mark.parametrize("cls", MODELS)
def test_one_step_changes_g_and_d_and_g_ema(cls):
    m = make(cls)
    before = {name: flat(getattr(m, name)) for name in ("G", "D", "G_ema")}
    stepper(m).step(images(), None, 0)
    for name, old in before.items():
        assert not torch.equal(flat(getattr(m, name)), old), name


def test_gradient_penalty_equals_direct_autograd():
    torch.manual_seed(0)
    critic = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.Tanh(), torch.nn.Flatten(),
                                 torch.nn.Linear(3 * 4 * 4, 1))
    real, fake = torch.rand(4, 1, 6, 6), torch.rand(4, 1, 6, 6)
    eps = torch.tensor([0.0, 0.3, 0.7, 1.0])
    gp = gradient_penalty(lambda v: critic(v).squeeze(1), real, fake, eps)
    direct = []
    for i in range(4):  # one image at a time, straight from the definition
        xi = (eps[i] * real[i] + (1 - eps[i]) * fake[i]).unsqueeze(0).requires_grad_(True)
        (g,) = torch.autograd.grad(critic(xi).sum(), xi)
        direct.append((g.norm() - 1) ** 2)
    assert torch.allclose(gp, torch.stack(direct).mean(), atol=1e-6)
    # linear critic w.x: the gradient is w everywhere, so the penalty is (|w| - 1)^2
    w = torch.full((1, 1, 6, 6), 0.5)
    gp_lin = gradient_penalty(lambda v: (v * w).flatten(1).sum(1), real, fake)
    assert torch.allclose(gp_lin, (w.norm() - 1) ** 2)
    gp.backward()  # differentiable w.r.t. the critic (double backward)
    assert critic[0].weight.grad is not None and critic[3].weight.grad is not None


def _sigmas(m: GAN) -> list[float]:
    out = []
    for mod in m.D.modules():
        if hasattr(mod, "parametrizations"):
            out.append(float(torch.linalg.matrix_norm(mod.weight.detach().flatten(1), ord=2)))
    return out


def test_spectral_norm_keeps_largest_singular_value_near_one():
    m = make(SNGAN, num_classes=3)
    assert len(_sigmas(m)) == 4  # 2 convs, the linear head, the projection embedding
    st = stepper(m)
    for step in range(5):
        st.step(images(), labels(), step)
    assert all(abs(s - 1) < 0.1 for s in _sigmas(m)), _sigmas(m)
    assert not _sigmas(make(DCGAN))


def test_conditional_generator_depends_on_the_label():
    m = make(num_classes=3)
    stepper(m).step(images(), labels(), 0)
    a = m.sample(4, y=0, generator=torch.Generator().manual_seed(0))
    b = m.sample(4, y=1, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(a, b)
    assert torch.equal(a, m.sample(4, y=torch.zeros(4, dtype=torch.long),
                                   generator=torch.Generator().manual_seed(0)))


def test_truncation_and_seeded_sampling():
    m = make(truncation=0.5)
    z = m.latents(200, torch.Generator().manual_seed(0))
    assert z.abs().max() <= 0.5
    assert m.latents(200, torch.Generator().manual_seed(0), truncation=0).abs().max() > 0.5
    stepper(m, ema_decay=0.5).step(images(), None, 0)
    s1 = m.sample(16, generator=torch.Generator().manual_seed(3))
    assert torch.equal(s1, m.sample(16, generator=torch.Generator().manual_seed(3)))
    raw = m.sample(16, generator=torch.Generator().manual_seed(3),
                   sampler=LatentSampler(ema=False))
    # sampling uses G_ema unless asked for the raw G (one step apart: 16 images so that
    # some differ after rounding to 256 levels)
    assert not torch.equal(s1, raw)


def test_bad_inputs_are_one_line_user_errors():
    with pytest.raises(UserError, match=r"multiples of 4.*25x25.*--image-size 24"):
        make(image_size=(25, 25))
    m, mc = make(), make(num_classes=3)
    with pytest.raises(UserError, match="unconditional.*--conditional"):
        m.sample(2, y=1)
    with pytest.raises(UserError, match="out of range.*0..2"):
        mc.sample(2, y=5)
    with pytest.raises(UserError, match=r"\[0, 1\]"):
        m.loss(images() * 2)
    with pytest.raises(UserError, match="--lr does not apply.*--lr-g"):
        m.phases(TrainConfig(lr=0.1))
    with pytest.raises(UserError, match="adam_betas"):
        GANConfig(adam_betas=(0.5,))
    with pytest.raises(UserError, match="DiffAugment.*--diffaug"):
        GANConfig(diffaug="flip")


def test_diffaugment_is_differentiable_and_keeps_shapes():
    assert parse_policy("") == [] and parse_policy("none") == []
    assert parse_policy("Color, cutout") == ["color", "cutout"]
    x = torch.rand(5, 3, 8, 8, requires_grad=True)
    y = diff_augment(x, "color,translation,cutout")
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    torch.manual_seed(0)
    shifted = diff_augment(torch.ones(64, 1, 8, 8), "translation")
    assert shifted.min() == 0 and shifted.max() == 1  # zero padding came in somewhere
    cut = diff_augment(torch.ones(4, 1, 8, 8), "cutout")
    assert ((cut == 0).flatten(1).sum(1) > 0).all()


def _run(run_dir, steps, *, resume=False, **model_kw):
    model = make(**model_kw)
    data = TrainData(x=images(32), val_x=images(8, seed=1))
    return train(model, data, train_cfg(steps=steps, warmup_steps=2), run_dir, resume=resume)


@pytest.mark.parametrize("kw", [{"diffaug": "translation"}, {"self_condition": 3}],
                         ids=["diffaug", "self-condition"])
def test_save_load_round_trip_and_exact_resume(tmp_path, kw):
    _run(tmp_path / "a", 6, **kw)
    _run(tmp_path / "b", 3, **kw)
    _run(tmp_path / "b", 3, resume=True, **kw)
    sa, sb = load_training_state(tmp_path / "a"), load_training_state(tmp_path / "b")
    assert {"optim/d/0/exp_avg", "optim/g/0/exp_avg"} <= set(sa.tensors)
    assert not any(k.startswith("ema/") for k in sa.tensors)  # G_ema lives in the model
    assert sorted(sa.tensors) == sorted(sb.tensors)
    for k in sa.tensors:
        assert torch.equal(sa.tensors[k], sb.tensors[k]), k
    loaded = tiny.load_model(tmp_path / "a")
    assert any(k.startswith("G_ema.") for k in loaded.state_dict())
    model = make(**kw)
    model.load_state_dict({k[len("model/"):]: v for k, v in sa.tensors.items()
                           if k.startswith("model/")})
    for m in (loaded, model):
        m.eval()
    s1 = loaded.sample(8, generator=torch.Generator().manual_seed(5))
    s2 = model.sample(8, generator=torch.Generator().manual_seed(5))
    assert torch.equal(s1, s2)
    lines = [json.loads(s) for s in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    train_lines = [r for r in lines if r["split"] == "train"]
    assert {"loss", "g_loss", "d_real", "d_fake"} <= set(train_lines[-1])
    assert any(r["split"] == "val" and "d_real" in r for r in lines)
    # TTUR: each optimiser keeps its own learning rate (the warm-up only scaled it)
    assert sa.meta["optimizers"]["d"]["param_groups"][0]["lr"] == pytest.approx(2e-4)


def test_ttur_rates_survive_the_warm_up(tmp_path):
    model = make(lr_g=1e-4, lr_d=4e-4)
    seen = []

    from genvision.train import Callback

    class Spy(Callback):
        def on_step_end(self, state):
            seen.append({k: o.param_groups[0]["lr"] for k, o in state.optimizers.items()})

    train(model, TrainData(x=images(16)), train_cfg(steps=3, warmup_steps=2), tmp_path,
          callbacks=[Spy()])
    assert seen[0] == pytest.approx({"d": 2e-4, "g": 0.5e-4})
    assert seen[-1] == pytest.approx({"d": 4e-4, "g": 1e-4})


def test_warnings_for_a_winning_discriminator_and_collapse_reach_log_and_report(tmp_path):
    from genvision.report import write_report

    m = make(watch_every=1, d_win_steps=2)
    (watcher,) = m.callbacks()
    assert isinstance(watcher, GANWatcher)
    state = TrainState(1, 0.0, {"loss": 0.01}, m, {}, tmp_path, 0, batch=(images(), None))
    watcher.on_step_end(state)
    assert state.warnings == []
    state.step = 2
    watcher.on_step_end(state)
    (msg,) = state.warnings
    assert "discriminator wins outright" in msg and "fix:" in msg
    # a freshly initialised G gives nearly identical images: collapse from step 5 on
    model = make(watch_every=1, collapse_ratio=0.5)
    train(model, TrainData(x=images(32)), train_cfg(steps=6), tmp_path)
    lines = [json.loads(s) for s in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    warned = [r for r in lines if r["split"] == "warning"]
    assert warned and warned[0]["step"] == 5 and "collapsing" in warned[0]["warning"]
    assert len(warned) == 1  # said once, not every step
    html = write_report(tmp_path).read_text()
    assert 'id="warnings"' in html and "collapsing" in html


def test_nan_stops_with_a_gan_specific_fix(tmp_path):
    model = make()
    with torch.no_grad():
        model.D.out.weight.fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match=r"diverged at step 1.*--lr-d/--lr-g"):
        train(model, TrainData(x=images(16)), train_cfg(steps=2), tmp_path)


def test_info_codes_enter_g_and_q_learns_to_read_them():
    """InfoGAN: G gets a uniform categorical code; D's Q head and G cooperate on the
    cross-entropy term, so after a few steps Q recovers the code from G's images."""
    torch.manual_seed(0)
    m = make(SNGAN, info_codes=3, info_weight=2.0, lr_g=2e-3, lr_d=2e-3)
    x = images()
    assert {"info_ce"} <= set(m.loss(x)) and m.D.q is not None
    z = torch.randn(6, 4)
    codes = torch.tensor([0, 1, 2, 0, 1, 2])
    assert not torch.equal(m.G(z, codes), m.G(z, codes.roll(1)))  # the code changes G(z)
    st = stepper(m)

    def q_accuracy() -> float:
        with torch.no_grad():
            c = torch.arange(300) % 3
            _, logits = m.D.score_and_codes(m._run(m.G, torch.randn(300, 4), c))
            return float((logits.argmax(1) == c).float().mean())

    before = q_accuracy()
    for step in range(150):
        out = st.step(x, None, step)
    assert math.isfinite(out["info_ce"]) and out["info_ce"] < 0.5
    assert q_accuracy() > max(0.9, before + 0.3)


def test_info_codes_sampling_is_seeded_and_refuses_labels():
    m = make(SNGAN, info_codes=4)
    a = m.sample(8, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, m.sample(8, generator=torch.Generator().manual_seed(1)))
    figs = m.figures(images(), generator=torch.Generator().manual_seed(0))
    assert figs["interpolations"].shape == (32, 1, 8, 8)
    assert figs["codes"].shape == (4 * 8, 1, 8, 8)  # a row of 8 latents per code
    with pytest.raises(UserError, match="unconditional"):
        m.sample(2, y=1)  # the code is G's own latent, not a label to choose
    with pytest.raises(UserError, match="info-codes is for unconditional"):
        make(SNGAN, info_codes=4, num_classes=3)
