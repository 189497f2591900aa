"""The conformance suite: every registered model keeps the protocol (models/base.py).

Parametrised over ``genvision.list_models()`` (after diffusers' ModelTesterMixin), so a new
family is checked the day it registers: it only needs a tiny config in ``TINY`` below
(the suite fails, naming the model, until it has one). Checked for each model: the loss
keys and their finiteness, one training step through the loop's phases, sample shape and
range, seeded determinism, ``log_prob`` shape, kind and units, a save/load round trip that
gives identical samples, an exact resume, and, for every exact-likelihood model, that
exp(log_prob) sums to 1 over every image of a tiny shape.
"""

from __future__ import annotations

import math

import pytest
import torch

import genvision
from genvision.errors import UserError
from genvision.models.base import CAPABILITIES, GenerativeModel, get_model_class, load
from genvision.models.sampling import SampleRNG
from genvision.train import TrainConfig, TrainData, load_training_state, train
from genvision.train.phases import Stepper

#: name -> (config fields of a tiny model, image shape (C, H, W), data kind)
TINY: dict[str, tuple[dict, tuple[int, int, int], str]] = {
    "vae": ({"hidden": (4, 8), "latent_dim": 3, "kl_warmup_steps": 2},
            (1, 8, 8), "binary"),
    "pixelcnn": ({"hidden": 6, "layers": 2, "out_hidden": 8}, (1, 5, 5), "binary"),
    "gated-pixelcnn": ({"hidden": 6, "layers": 2, "kernel": 3, "input_kernel": 3,
                        "out_hidden": 8, "dilation": (1, 1)}, (1, 5, 5), "binary"),
    "row-lstm": ({"hidden": 6, "layers": 2, "kernel": 3, "input_kernel": 3,
                  "out_hidden": 8}, (1, 5, 5), "binary"),
    "made": ({"hidden": (6, 5), "num_masks": 2}, (1, 3, 3), "binary"),
    "nade": ({"hidden": 5}, (1, 3, 3), "binary"),
    "rbm": ({"hidden": 5, "chains": 6, "burn_in": 5, "ais_runs": 8, "ais_betas": 50},
            (1, 4, 4), "binary"),
    "dcgan": ({"latent_dim": 4, "g_width": 4, "d_width": 4}, (1, 8, 8), "grey8"),
    "wgan-gp": ({"latent_dim": 4, "g_width": 4, "d_width": 4}, (1, 8, 8), "grey8"),
    "sngan": ({"latent_dim": 4, "g_width": 4, "d_width": 4}, (1, 8, 8), "grey8"),
    "srresnet": ({"scale": 2, "width": 4, "blocks": 1}, (3, 8, 8), "rgb8"),
    "srgan": ({"scale": 2, "width": 4, "blocks": 1, "disc_width": 4, "disc_layers": 2},
              (3, 16, 16), "rgb8"),
    "ddpm": ({"width": 4, "depth": 1, "emb_dim": 8, "sample_steps": 3, "eval_timesteps": 2,
              "complete_resample": 1}, (1, 8, 8), "binary"),
    "flow-matching": ({"width": 4, "depth": 1, "emb_dim": 8, "sample_steps": 3,
                       "eval_timesteps": 2, "complete_resample": 1}, (1, 8, 8), "binary"),
    "realnvp": ({"levels": 1, "depth": 1, "width": 4, "net_blocks": 0,
                 "dequantization": "uniform"}, (1, 8, 8), "binary"),
    "glow": ({"levels": 1, "depth": 1, "width": 4, "net_blocks": 0, "init_images": 8,
              "dequantization": "variational", "deq_width": 4, "deq_depth": 1},
             (1, 8, 8), "binary"),
    "colorize-regression": ({"width": 4, "depth": 2}, (3, 8, 8), "rgb8"),
    "pix2pix": ({"a_channels": 1, "width": 4, "depth": 1, "disc_width": 4, "disc_layers": 1},
                (4, 8, 8), "rgb8"),
    "cyclegan": ({"a_channels": 1, "width": 4, "depth": 1, "disc_width": 4, "disc_layers": 1,
                  "pool_size": 2}, (4, 8, 8), "rgb8"),
    "colorize-gan": ({"width": 4, "depth": 2, "disc_width": 4, "disc_layers": 2},
                     (3, 16, 16), "rgb8"),
    "vqvae": ({"hidden": (4, 6), "res_blocks": 1, "codebook_size": 4, "embedding_dim": 3,
               "ae_steps": 2, "prior_hidden": 4, "prior_layers": 2, "prior_out_hidden": 6,
               "prior_embedding": 3, "prior_input_kernel": 3}, (1, 8, 8), "binary"),
}
#: exact-likelihood models: a tiny binary shape small enough to enumerate every image
NORMALISATION_SHAPE = {"pixelcnn": (2, 2), "gated-pixelcnn": (2, 2), "row-lstm": (2, 2),
                       "made": (2, 2), "nade": (2, 2)}

#: every model genvision registers (test doubles registered by other test files are not)
MODELS = [n for n in genvision.list_models()
          if get_model_class(n).__module__.startswith("genvision.")]


def build(name: str, **overrides) -> GenerativeModel:
    if name not in TINY:
        pytest.fail(f"{name} is registered but has no tiny config: add it to TINY in "
                    f"{__file__} so the conformance suite covers it")
    fields, (c, h, w), kind = TINY[name]
    cls = get_model_class(name)
    torch.manual_seed(0)
    return cls(cls.config_class(**{"channels": c, "image_size": (h, w), "data_kind": kind,
                                   **fields, **overrides}))


def sensitive(model: GenerativeModel) -> GenerativeModel:
    """The model with weights large enough that every input (latent, earlier pixel,
    label) changes the output: at initialisation a latent may barely move a Bernoulli
    draw, and a sampler that ignored its seed would go unnoticed."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.5)
    return model


def images(model: GenerativeModel, n: int = 6, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, *model.config.shape, generator=g)
    return (x > 0.5).float() if model.config.data_kind == "binary" else (x * 255).round() / 255


def can_sample(model: GenerativeModel) -> bool:
    try:
        model.sample(1, generator=torch.Generator().manual_seed(0))
    except (NotImplementedError, UserError):
        return False
    return True


def flat_state(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([t.detach().double().flatten() for t in model.state_dict().values()])


def test_every_registered_model_has_a_tiny_config():
    assert set(MODELS) <= set(TINY), sorted(set(MODELS) - set(TINY))


@pytest.mark.parametrize("name", MODELS)
def test_declarations(name):
    cls = get_model_class(name)
    assert cls.name == name and cls.family
    assert cls.likelihood_kind in ("exact", "bound", "estimate", "none")
    assert cls.supported_data_kinds and dict(cls.train_defaults) is not None
    assert all(isinstance(cls.supports(c), bool) for c in CAPABILITIES)
    assert cls.supports("log_prob") == (cls.likelihood_kind != "none")


@pytest.mark.parametrize("name", MODELS)
def test_loss_terms_are_finite_scalars_with_a_loss_key(name):
    model = build(name)
    terms = model.loss(images(model))
    assert "loss" in terms
    for key, value in terms.items():
        assert value.shape == () and torch.isfinite(value), key


@pytest.mark.parametrize("name", MODELS)
def test_one_training_step_through_the_phases_changes_the_weights(name):
    model = build(name)
    before = flat_state(model)
    pair = model.ema_pair()
    shadow = flat_state(pair[1]) if pair is not None else None
    stepper = Stepper(model, TrainConfig(), torch.device("cpu"))
    terms = stepper.step(images(model), None, 0)
    assert terms and all(math.isfinite(v) for v in terms.values())
    assert not torch.equal(before, flat_state(model))
    if pair is not None:  # the loop averages into the model's own shadow network
        assert pair[1] is not pair[0] and not torch.equal(shadow, flat_state(pair[1]))
    assert not hasattr(model, "step")  # the loop passes the step; it never sets it


@pytest.mark.parametrize("name", MODELS)
def test_samples_shape_range_levels_and_seeded_determinism(name):
    model = sensitive(build(name)).eval()
    if not can_sample(model):
        pytest.skip(f"{name} has no unconditional sampler (image-to-image)")
    a = model.sample(5, generator=torch.Generator().manual_seed(3))
    assert a.shape == (5, *model.config.shape)
    assert a.min() >= 0 and a.max() <= 1
    if model.config.data_kind == "binary":
        assert set(a.unique().tolist()) <= {0.0, 1.0}
    else:
        assert torch.equal(a, (a * 255).round() / 255)  # on the 256 levels of 8-bit data
    assert torch.equal(a, model.sample(5, generator=torch.Generator().manual_seed(3)))
    assert not torch.equal(a, model.sample(5, generator=torch.Generator().manual_seed(4)))


@pytest.mark.parametrize("name", MODELS)
def test_sample_k_does_not_depend_on_the_batch_size(name):
    model = sensitive(build(name)).eval()
    if not can_sample(model):
        pytest.skip(f"{name} has no unconditional sampler (image-to-image)")
    seeds, k = [5, 6, 7, 8, 9], model.config.num_classes
    y = torch.arange(5) % k if k else None
    whole = model.sample(5, y=y, generator=SampleRNG(seeds))
    parts = [model.sample(2, y=None if y is None else y[:2], generator=SampleRNG(seeds[:2])),
             model.sample(3, y=None if y is None else y[2:], generator=SampleRNG(seeds[2:]))]
    assert torch.equal(whole[:2], parts[0]) and torch.equal(whole[2:], parts[1])


@pytest.mark.parametrize("name", MODELS)
def test_log_prob_shape_kind_and_units(name):
    model = build(name).eval()
    x = images(model, 4)
    if model.likelihood_kind == "none":
        with pytest.raises(UserError):
            model.log_prob(x)
        return
    lp = model.log_prob(x)
    assert lp.shape == (4,) and torch.isfinite(lp).all()
    # nats per image of discrete data: a probability (or a bound on one, or an estimate
    # of one: an RBM's AIS) is at most 1
    assert (lp <= 1e-6).all()
    assert model.likelihood_protocol()["kind"] == model.likelihood_kind


@pytest.mark.parametrize("name", sorted(NORMALISATION_SHAPE))
def test_exact_likelihoods_sum_to_one_over_every_tiny_image(name):
    assert get_model_class(name).likelihood_kind == "exact"
    h, w = NORMALISATION_SHAPE[name]
    model = build(name, image_size=(h, w)).double().eval()
    grid = torch.cartesian_prod(*[torch.tensor([0.0, 1.0], dtype=torch.float64)] * (h * w))
    with torch.no_grad():
        total = model.log_prob(grid.reshape(-1, 1, h, w)).exp().sum()
    assert abs(float(total) - 1.0) < 1e-9


def test_every_exact_likelihood_model_is_checked_for_normalisation():
    exact = {n for n in MODELS if get_model_class(n).likelihood_kind == "exact"}
    assert exact <= set(NORMALISATION_SHAPE), sorted(exact - set(NORMALISATION_SHAPE))


@pytest.mark.parametrize("name", MODELS)
def test_save_load_round_trip_gives_identical_weights_and_samples(name, tmp_path):
    model = build(name)
    Stepper(model, TrainConfig(), torch.device("cpu")).step(images(model), None, 0)
    model.eval().save_pretrained(tmp_path)
    again = load(tmp_path)
    assert torch.equal(flat_state(model), flat_state(again))
    if can_sample(model):
        a = model.sample(4, generator=torch.Generator().manual_seed(1))
        assert torch.equal(a, again.sample(4, generator=torch.Generator().manual_seed(1)))


@pytest.mark.parametrize("name", MODELS)
def test_a_resumed_run_equals_an_uninterrupted_one(name, tmp_path):
    def run(out, steps, resume=False):
        model = build(name)
        x = images(model, 24)
        cfg = TrainConfig(steps=steps, batch_size=6, checkpoint_every=2, log_every=1,
                          progress=False, ema_decay=0.9)
        return train(model, TrainData(x=x), cfg, out, resume=resume)

    run(tmp_path / "a", 4)
    run(tmp_path / "b", 2)
    run(tmp_path / "b", 2, resume=True)
    sa, sb = load_training_state(tmp_path / "a"), load_training_state(tmp_path / "b")
    assert sorted(sa.tensors) == sorted(sb.tensors)
    for key in sa.tensors:
        assert torch.equal(sa.tensors[key], sb.tensors[key]), key
