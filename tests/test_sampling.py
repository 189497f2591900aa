"""Per-sample seeds and sampler options (models/sampling.py) for every registered model."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import torch

import genvision
from genvision.errors import UserError
from genvision.models import base
from genvision.models.gan import LatentSampler
from genvision.models.pixel_base import PixelSampler
from genvision.models.sampling import (
    AncestralSampler,
    SampleRNG,
    SamplerOptions,
    as_sample_rng,
    make_sampler,
    resolve_sampler,
    sampler_protocol,
)
from genvision.models.vae import VAESampler

GAN_TINY = {"image_size": (8, 8), "data_kind": "grey8", "latent_dim": 4, "g_width": 4,
            "d_width": 4, "label_dim": 3}
DIFFUSION_TINY = {"image_size": (4, 4), "width": 4, "depth": 1, "emb_dim": 8,
                  "sample_steps": 3}
PIXEL_TINY = {"hidden": 6, "layers": 2, "kernel": 3, "input_kernel": 3, "out_hidden": 12}
#: registered name -> tiny configs (plain, and the variants whose sampling draws more)
TINY: dict[str, list[dict[str, Any]]] = {
    "dcgan": [GAN_TINY, {**GAN_TINY, "truncation": 0.5, "info_codes": 3}],
    "wgan-gp": [{**GAN_TINY, "num_classes": 3}],
    "sngan": [GAN_TINY],
    "vae": [{"image_size": (8, 8), "latent_dim": 4, "hidden": (4, 8), "res_blocks": 1,
             "fc_dim": 16, "ar_layers": 0},
            {"image_size": (8, 8), "latent_dim": 4, "hidden": (4, 8), "res_blocks": 1,
             "fc_dim": 16, "ar_layers": 2, "ar_channels": 8, "data_kind": "grey8"}],
    "pixelcnn": [{"image_size": (4, 4), "hidden": 6, "bottleneck": 3, "layers": 2,
                  "out_hidden": 6, "input_kernel": 3}],
    "gated-pixelcnn": [{**PIXEL_TINY, "image_size": (4, 4)},
                       {**PIXEL_TINY, "image_size": (3, 3), "data_kind": "grey8",
                        "head": "logistic_mixture", "levels": 4, "n_mix": 2}],
    "row-lstm": [{**PIXEL_TINY, "image_size": (4, 4), "data_kind": "grey8",
                  "head": "categorical", "levels": 4}],
    "nade": [{"image_size": (3, 3), "hidden": 5}],
    "ddpm": [{**DIFFUSION_TINY},
             {**DIFFUSION_TINY, "data_kind": "grey8", "num_classes": 3}],
    "flow-matching": [{**DIFFUSION_TINY}],
    "rbm": [{"image_size": (3, 3), "hidden": 5, "burn_in": 4},
            {"image_size": (3, 3), "hidden": 5, "burn_in": 20, "num_classes": 3}],
    "realnvp": [{"image_size": (4, 4), "levels": 1, "depth": 1, "width": 4, "net_blocks": 0}],
    "glow": [{"image_size": (4, 4), "levels": 1, "depth": 1, "width": 4, "net_blocks": 0,
              "num_classes": 3, "data_kind": "grey8"}],
    "made": [{"image_size": (3, 3), "hidden": (6, 5), "num_masks": 1},
             {"image_size": (3, 3), "hidden": (6, 5), "num_masks": 3, "eval_masks": 3}],
    "vqvae": [{"image_size": (8, 8), "hidden": (4, 6), "codebook_size": 5, "embedding_dim": 3,
               "prior_hidden": 4, "prior_layers": 2, "prior_out_hidden": 6,
               "prior_embedding": 3, "prior_input_kernel": 3},
              {"image_size": (8, 8), "hidden": (4, 6), "codebook_size": 5, "embedding_dim": 3,
               "prior_hidden": 4, "prior_layers": 2, "prior_out_hidden": 6,
               "prior_embedding": 3, "prior_input_kernel": 3, "data_kind": "grey8",
               "num_classes": 3}],
}


def build(name: str, cfg: dict[str, Any]) -> base.GenerativeModel:
    cls = base.get_model_class(name)
    model = cls(cls.config_class(**cfg))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # weights large enough that every input matters
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.5)
    return model.eval()


def test_every_registered_model_has_a_tiny_config_here():
    registered = {name for name in genvision.list_models()  # not the tests' own models
                  if base.get_model_class(name).__module__.startswith("genvision.")
                  # image-to-image models have no unconditional sampler
                  and base.get_model_class(name).sample is not base.GenerativeModel.sample}
    assert registered <= set(TINY), "add the new family's sampling variants to TINY"


def test_sample_rng_row_k_is_a_lone_generator_seeded_with_seed_k():
    seeds = [7, 123, 7, 2 ** 40]
    rng = SampleRNG(seeds)
    a, b, c = rng.randn(3, 2), rng.rand(5), rng.randint(10, 4)
    for k, s in enumerate(seeds):
        g = torch.Generator().manual_seed(s)
        assert torch.equal(a[k], torch.randn(3, 2, generator=g))
        assert torch.equal(b[k], torch.rand(5, generator=g))
        assert torch.equal(c[k], torch.randint(10, (4,), generator=g))
    assert torch.equal(a[0], a[2]) and not torch.equal(a[0], a[1])
    sub = rng[[3, 1]]  # a subset shares (and advances) the same generators
    x = sub.rand(2)
    g3 = torch.Generator().manual_seed(2 ** 40)
    for draw in (lambda g: torch.randn(3, 2, generator=g), lambda g: torch.rand(5, generator=g),
                 lambda g: torch.randint(10, (4,), generator=g)):
        draw(g3)
    assert torch.equal(x[0], torch.rand(2, generator=g3))


def test_sample_rng_categorical_bernoulli_and_truncation():
    rng = SampleRNG(range(4000))
    freq = torch.tensor([0.6, 0.3, 0.1])
    seen = torch.bincount(rng.categorical(probs=freq), minlength=3).float() / 4000
    assert torch.allclose(seen, freq, atol=0.03)
    p = torch.full((4000, 2), 0.25)
    assert abs(rng.bernoulli(p).mean().item() - 0.25) < 0.02
    z = rng.truncated_randn(6, bound=0.5)
    assert z.shape == (4000, 6) and z.abs().max() <= 0.5


def test_as_sample_rng_sources():
    a = as_sample_rng(torch.Generator().manual_seed(3), 4).rand(2)
    assert torch.equal(a, as_sample_rng(torch.Generator().manual_seed(3), 4).rand(2))
    torch.manual_seed(0)
    b = as_sample_rng(None, 4).rand(2)
    torch.manual_seed(0)
    assert torch.equal(b, as_sample_rng(None, 4).rand(2))
    rng = SampleRNG([1, 2])
    assert as_sample_rng(rng, 2).generators == rng.generators
    with pytest.raises(UserError, match="2 seeds was given for 3 samples"):
        as_sample_rng(rng, 3)


CASES = [(name, i) for name in sorted(TINY) for i in range(len(TINY[name]))]


@pytest.mark.parametrize("name,variant", CASES)
def test_sample_k_depends_only_on_its_seed_not_on_the_batch(name: str, variant: int):
    model = build(name, TINY[name][variant])
    if getattr(model.config, "self_condition", 0):
        pytest.skip("covered in test_self_conditioned_gan_clusters_are_per_sample")
    seeds = [11, 12, 13, 14, 15, 16]
    k = model.config.num_classes
    y = torch.arange(6) % k if k else None
    whole = model.sample(6, y=y, generator=SampleRNG(seeds))
    parts = torch.cat([model.sample(2, y=None if y is None else y[:2],
                                    generator=SampleRNG(seeds[:2])),
                       model.sample(4, y=None if y is None else y[2:],
                                    generator=SampleRNG(seeds[2:]))])
    assert whole.shape == (6, *model.config.shape)
    assert torch.equal(whole, parts)
    assert not torch.equal(whole[0], whole[1])  # different seeds, different images
    again = model.sample(1, y=None if y is None else y[3:4], generator=SampleRNG([14]))
    assert torch.equal(again[0], whole[3])
    for sampler in model.samplers.values():  # every sampler, default options
        a = model.sample(3, y=None if y is None else y[:3],
                         generator=SampleRNG(seeds[:3]), sampler=sampler())
        b = model.sample(1, y=None if y is None else y[2:3],
                         generator=SampleRNG(seeds[2:3]), sampler=sampler())
        assert torch.equal(a[2], b[0])


def test_self_conditioned_gan_clusters_are_per_sample():
    model = build("sngan", {**GAN_TINY, "self_condition": 3})
    x = (torch.rand(30, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 255).round() / 255
    model.init_from_data(x)
    whole = model.sample(5, generator=SampleRNG(range(5)))
    assert torch.equal(whole[3:], model.sample(2, generator=SampleRNG([3, 4])))
    drawn = model._sample_g_input(3000, None, SampleRNG(range(3000)))
    seen = torch.bincount(drawn, minlength=3).float() / 3000
    assert torch.allclose(seen, model.cluster_freq, atol=0.03)


@pytest.mark.parametrize("name", ["pixelcnn", "gated-pixelcnn", "row-lstm", "nade", "made"])
def test_naive_and_cached_samplers_agree_and_completion_is_per_sample(name: str):
    model = build(name, TINY[name][0])  # MADE: one mask (the naive path knows only one)
    naive = model.sample(4, generator=SampleRNG(range(4)), sampler=PixelSampler(cached=False))
    assert torch.equal(naive, model.sample(4, generator=SampleRNG(range(4))))
    keep = torch.zeros(4, *model.config.shape, dtype=torch.bool)
    keep[0, :, 0] = True  # image 0 keeps its top row, the others keep nothing
    keep[2] = True        # image 2 keeps everything: it draws nothing
    out = model.complete(naive, keep, generator=SampleRNG(range(4)))
    assert torch.equal(out[2], naive[2]) and torch.equal(out[0][keep[0]], naive[0][keep[0]])
    alone = model.complete(naive[1:2], keep[1:2], generator=SampleRNG([1]))
    assert torch.equal(out[1], alone[0])  # independent of the others' masks


def test_make_sampler_parses_typed_options():
    gan = build("dcgan", GAN_TINY)
    assert make_sampler(gan) == LatentSampler()
    s = make_sampler(gan, "latent", ["truncation=0.7", "ema=false"])
    assert s == LatentSampler(truncation=0.7, ema=False)
    assert sampler_protocol(s) == {"name": "latent", "truncation": 0.7, "ema": False}
    assert sampler_protocol(resolve_sampler(gan, None)) == {"name": "latent",
                                                           "truncation": 0.0, "ema": True}
    assert make_sampler(type(gan), None, ["truncation=none"]).truncation is None
    assert make_sampler(base.get_model_class("vae"), None, ["decoder=mean"]) == \
        VAESampler(decoder="mean")
    assert make_sampler(base.get_model_class("nade"), "ancestral", ["cached=0"]) == \
        PixelSampler(cached=False)
    assert isinstance(resolve_sampler(object(), None), AncestralSampler)


@pytest.mark.parametrize("name,opts,match", [
    ("dcgan", ["nope=1"], r"sampler 'latent' of dcgan has no option 'nope'.*truncation, ema"),
    ("dcgan", ["truncation"], r"'truncation' is not key=value"),
    ("dcgan", ["truncation=high"], r"truncation='high' is not a valid float"),
    ("dcgan", ["truncation=-1"], r"truncation must be >= 0"),
    ("dcgan", ["ema=maybe"], r"ema='maybe' is not a valid bool"),
    ("vae", ["decoder=median"], r"decoder='median' is not one of sample, mean"),
])
def test_make_sampler_refuses_bad_options(name: str, opts: list[str], match: str):
    with pytest.raises(UserError, match=match) as err:
        make_sampler(base.get_model_class(name), None, opts)
    assert "\n" not in str(err.value)


def test_make_sampler_refuses_an_unknown_sampler_and_foreign_options():
    with pytest.raises(UserError, match="vae has no sampler 'ddim'.*one of: ancestral"):
        make_sampler(base.get_model_class("vae"), "ddim", [])
    vae = build("vae", TINY["vae"][0])
    with pytest.raises(UserError, match="vae has no sampler LatentSampler"):
        vae.sample(2, sampler=LatentSampler())


def test_sampler_options_change_gan_and_vae_samples():
    gan = build("dcgan", GAN_TINY)
    gan.G_ema.load_state_dict({k: v + 0.1 for k, v in gan.G.state_dict().items()})
    plain = gan.sample(4, generator=SampleRNG(range(4)))
    assert not torch.equal(plain, gan.sample(4, generator=SampleRNG(range(4)),
                                             sampler=LatentSampler(truncation=0.3)))
    assert not torch.equal(plain, gan.sample(4, generator=SampleRNG(range(4)),
                                             sampler=LatentSampler(ema=False)))
    z = gan.latents(50, SampleRNG(range(50)), truncation=0.3)
    assert z.abs().max() <= 0.3
    cls = base.get_model_class("vae")
    vae = cls(cls.config_class(**TINY["vae"][0])).eval()  # fresh init: means near 0.5
    drawn = vae.sample(4, generator=SampleRNG(range(4)))
    means = vae.sample(4, generator=SampleRNG(range(4)), sampler=VAESampler(decoder="mean"))
    assert set(drawn.unique().tolist()) <= {0.0, 1.0}
    assert ((means > 0) & (means < 1)).float().mean() > 0.5  # probabilities, not pixels


def test_sampler_options_are_frozen_dataclasses_with_a_name():
    for name in sorted(TINY):
        for key, cls in base.get_model_class(name).samplers.items():
            assert issubclass(cls, SamplerOptions) and cls.name == key
            assert dataclasses.is_dataclass(cls)
