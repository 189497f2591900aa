"""NADE and MADE on tiny configs: exact normalisation, causality, sampling, save/load, CLI."""

from __future__ import annotations

import itertools
import json

import pytest
import torch

import genvision.models.made  # noqa: F401  (registers "made")
import genvision.models.nade  # noqa: F401  (registers "nade")
from genvision.cli import main
from genvision.data import DataConfig, prepare_eval
from genvision.errors import UserError
from genvision.models.base import load
from genvision.models.made import MADE, MADEConfig
from genvision.models.nade import NADE, NADEConfig
from genvision.models.pixel_base import PixelSampler
from genvision.models.protocol import StepContext

NAIVE = PixelSampler(cached=False)  # the reference sampler

CAT = {"data_kind": "grey8", "head": "categorical", "levels": 4}


def nade(**kw) -> NADE:
    return NADE(NADEConfig(**{"image_size": (3, 3), "hidden": 5, **kw}))


def made(**kw) -> MADE:
    return MADE(MADEConfig(**{"image_size": (3, 3), "hidden": (6, 5), "num_masks": 1, **kw}))


def all_images(shape, levels: int) -> torch.Tensor:
    """Every image of ``shape`` with values k / (levels - 1): [levels**D, *shape], float64."""
    d = shape[0] * shape[1] * shape[2]
    values = [k / (levels - 1) for k in range(levels)]
    return torch.tensor(list(itertools.product(values, repeat=d)),
                        dtype=torch.float64).view(-1, *shape)


def randomise(model, scale: float = 0.3):
    """Non-zero values for the parameters initialised at zero (biases, label tables), so
    every path (labels, direct layer) contributes to the checks."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model


# one entry per model variant: (name, factory, extra config, levels)
VARIANTS = [
    ("nade", nade, {}, 2),
    ("made", made, {}, 2),
    ("made-ensemble", made, {"num_masks": 3, "hidden": (7,)}, 2),
    ("made-raster-ensemble", made, {"num_masks": 3, "orderings": "raster"}, 2),
    ("made-no-direct", made, {"direct": False}, 2),
    ("nade-cat", nade, {**CAT, "image_size": (2, 2)}, 4),
    ("made-cat", made, {**CAT, "image_size": (2, 2), "num_masks": 2}, 4),
]


# ----- 1. exact normalisation ------------------------------------------------------------------
@pytest.mark.parametrize("name,factory,kw,levels", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_probabilities_of_all_images_sum_to_one(name, factory, kw, levels):
    m = randomise(factory(**kw).double()).eval()
    x = all_images(m.config.shape, levels)
    assert x.shape[0] == levels ** m.config.dims
    with torch.no_grad():
        total = m.log_prob(x).exp().sum().item()
        assert total == pytest.approx(1.0, abs=1e-5)
        if isinstance(m, MADE):  # every single mask is a normalised model as well
            for k in range(m.config.num_masks):
                assert m.log_prob(x, mask=k).exp().sum().item() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("factory,kw", [(nade, {}), (made, {"num_masks": 2}),
                                        (made, {**CAT, "image_size": (2, 2)})])
def test_conditional_model_is_normalised_per_class(factory, kw):
    m = randomise(factory(num_classes=3, **kw).double()).eval()
    x = all_images(m.config.shape, m.config.levels if "head" in kw else 2)
    totals = []
    with torch.no_grad():
        for k in range(3):
            lp = m.log_prob(x, torch.full((len(x),), k))
            totals.append(lp.exp().sum().item())
            if k:  # the label matters
                assert not torch.allclose(lp, m.log_prob(x, torch.zeros(len(x), dtype=torch.long)))
    assert totals == pytest.approx([1.0] * 3, abs=1e-5)


# ----- 2. causality ----------------------------------------------------------------------------
CAUSAL = [
    ("nade", nade, {}),
    ("nade-rgb-cat", nade, {**CAT, "data_kind": "rgb8", "channels": 3, "image_size": (2, 2)}),
    ("made-ensemble", made, {"num_masks": 3, "num_classes": 2}),
    ("made-rgb-cat", made, {**CAT, "data_kind": "rgb8", "channels": 3, "image_size": (2, 2),
                            "num_masks": 2}),
]


@pytest.mark.parametrize("name,factory,kw", CAUSAL, ids=[v[0] for v in CAUSAL])
def test_conditional_d_ignores_dimensions_at_or_after_d(name, factory, kw):
    m = randomise(factory(**kw).double())
    n = 3
    x = torch.rand(n, *m.config.shape, dtype=torch.float64, requires_grad=True)
    y = torch.arange(n) % 2 if m.config.num_classes else None
    for mask in range(getattr(m.config, "num_masks", 1)):
        logits = m.conditionals(x, y, mask)  # [N, D, P]
        assert logits.shape[:2] == (n, m.config.dims)
        ranks = m.ranks(mask)
        assert sorted(ranks.tolist()) == list(range(m.config.dims))
        if mask == 0:  # mask 0 (and NADE) generate in the natural order
            assert ranks.tolist() == list(range(m.config.dims))
        seen_any = False
        for d in range(m.config.dims):
            (g,) = torch.autograd.grad(logits[:, d].sum(), x, retain_graph=True)
            g = m.flatten(g)  # natural order, like ranks
            future = ranks >= ranks[d]
            assert (g[:, future] == 0).all(), (mask, d)
            seen_any |= bool((g[:, ~future] != 0).any())
        assert seen_any  # the check can fail: earlier values do flow into later conditionals


def test_made_masks_differ_in_order_and_connectivity():
    m = made(num_masks=3)
    assert not torch.equal(m.ranks(1), m.ranks(2))
    r = made(num_masks=3, orderings="raster")
    assert all(torch.equal(r.ranks(k), r.ranks(0)) for k in range(3))
    assert not torch.equal(r.masks(0)[0][0], r.masks(1)[0][0])  # connectivity-agnostic


# ----- 3. loss and log_prob --------------------------------------------------------------------
def binary(n=6, shape=(1, 3, 3), seed=0) -> torch.Tensor:
    return torch.bernoulli(torch.full((n, *shape), 0.4), generator=torch.Generator()
                           .manual_seed(seed))


@pytest.mark.parametrize("factory,kw", [(nade, {}), (made, {"num_masks": 3}),
                                        (made, {"num_classes": 2})])
def test_loss_is_mean_nll_of_log_prob(factory, kw):
    m = randomise(factory(**kw)).eval()
    x = binary()
    y = torch.arange(6) % 2 if m.config.num_classes else None
    lp = m.log_prob(x, y)
    assert lp.shape == (6,) and torch.isfinite(lp).all() and (lp < 0).all()
    out = m.loss(x, y)
    assert torch.allclose(out["loss"], -lp.mean())
    assert torch.allclose(out["bits_per_dim"], -lp.mean() / (9 * torch.log(torch.tensor(2.0))))
    m.train()
    out = m.loss(x, y)
    out["loss"].backward()
    assert all(p.grad is not None for p in m.parameters())


def test_made_training_cycles_masks_and_resumes_the_cycle(tmp_path):
    m = randomise(made(num_masks=3)).train()
    x = binary()
    used = []
    for _ in range(4):
        loss = m.loss(x)["loss"]
        single = [(-m.log_prob(x, mask=k).mean()).item() for k in range(3)]
        used.append(min(range(3), key=lambda k: abs(single[k] - loss.item())))
    assert used == [0, 1, 2, 0]
    assert len(set(single)) == 3  # the masks give different models
    # the training loop's step drives the cycle: 7 mod 3 = 1
    out = m.training_loss(x, None, StepContext(step=7))
    assert torch.allclose(out["loss"], -m.log_prob(x, mask=1).mean())
    m.save_pretrained(tmp_path)
    again = load(tmp_path).train()
    assert int(again.mask_step) == 8  # so a resumed model continues with mask 8 mod 3 = 2
    assert torch.allclose(again.loss(x)["loss"], -m.log_prob(x, mask=2).mean())


def test_ensemble_is_log_mean_of_mask_likelihoods():
    m = randomise(made(num_masks=3))
    x = binary()
    single = torch.stack([m.log_prob(x, mask=k) for k in range(3)])
    assert torch.allclose(m.log_prob(x), single.exp().mean(0).log(), atol=1e-5)
    two = randomise(made(num_masks=3, eval_masks=2))
    assert torch.allclose(two.log_prob(x), single[:2].exp().mean(0).log(), atol=1e-5)
    assert m.likelihood_protocol()["masks"] == 3 and two.likelihood_protocol()["masks"] == 2
    assert m.likelihood_protocol()["kind"] == "exact"
    with pytest.raises(UserError, match="mask 3 does not exist"):
        m.log_prob(x, mask=3)
    assert made().likelihood_protocol() == {"kind": "exact", "estimator": "exact",
                                            "likelihood": "bernoulli", "masks": 1,
                                            "orderings": "raster"}


def test_nade_chunked_log_prob_matches_one_pass():
    m = randomise(nade(eval_chunk=2))
    x = binary(n=5)
    with torch.no_grad():
        chunked = m.log_prob(x)
    assert torch.allclose(chunked, m.log_prob(x).detach(), atol=1e-5)


def test_params_map_matches_the_pixel_layout():
    # the base class's likelihood on params() must equal the model's own log_prob, which
    # checks the natural order <-> [N, C*P, H, W] layout with 3 channels
    for factory in (nade, made):
        m = randomise(factory(**{**CAT, "data_kind": "rgb8", "channels": 3,
                                 "image_size": (2, 3)}))
        x = torch.randint(0, 4, (4, 3, 2, 3)).float() / 3
        assert torch.allclose(m.head.log_prob(m.params(x), x), m.log_prob(x), atol=1e-5)


@pytest.mark.parametrize("bad", [{"hidden": 0}, {"eval_chunk": -1}])
def test_bad_nade_config_is_a_user_error(bad):
    with pytest.raises(UserError):
        nade(**bad)


@pytest.mark.parametrize("bad", [{"hidden": ()}, {"num_masks": 0},
                                 {"num_masks": 2, "eval_masks": 3}])
def test_bad_made_config_is_a_user_error(bad):
    with pytest.raises(UserError):
        made(**bad)


# ----- 4. sampling and completion --------------------------------------------------------------
SAMPLERS = [("nade", nade, {}), ("made", made, {}), ("made-ensemble", made, {"num_masks": 4}),
            ("nade-cat", nade, CAT), ("made-cat", made, {**CAT, "num_masks": 2})]


@pytest.mark.parametrize("name,factory,kw", SAMPLERS, ids=[v[0] for v in SAMPLERS])
def test_samples_are_valid_and_reproducible_by_seed(name, factory, kw):
    m = randomise(factory(image_size=(4, 4), **kw))
    s1 = m.sample(8, generator=torch.Generator().manual_seed(0))
    s2 = m.sample(8, generator=torch.Generator().manual_seed(0))
    s3 = m.sample(8, generator=torch.Generator().manual_seed(1))
    assert s1.shape == (8, 1, 4, 4)
    assert torch.equal(s1, s2) and not torch.equal(s1, s3)
    levels = m.config.levels if "head" in kw else 2
    allowed = {k / (levels - 1) for k in range(levels)}
    assert {round(v, 6) for v in s1.unique().tolist()} <= {round(v, 6) for v in allowed}


SAMPLE_DIST = [("nade", nade, {}), ("made-ensemble", made, {"num_masks": 3, "num_classes": 2}),
               ("made-cat-ensemble", made, {**CAT, "num_masks": 2})]


@pytest.mark.parametrize("name,factory,kw", SAMPLE_DIST, ids=[v[0] for v in SAMPLE_DIST])
def test_sample_frequencies_match_exp_log_prob(name, factory, kw):
    # the sampler draws from the distribution log_prob scores (the mixture, for an
    # ensemble): empirical frequencies of 20,000 draws within 0.03 total variation
    m = randomise(factory(image_size=(1, 3) if "head" in kw else (2, 2), **kw), scale=1.5)
    levels = m.config.levels if "head" in kw else 2
    x = all_images(m.config.shape, levels).float()
    y = torch.ones(len(x), dtype=torch.long) if m.config.num_classes else None
    n = 20_000
    s = m.sample(n, y=None if y is None else 1, generator=torch.Generator().manual_seed(0))
    index = (m.flatten(s) * (levels - 1)).round().long()
    code = (index * levels ** torch.arange(m.config.dims - 1, -1, -1)).sum(1)
    freq = torch.bincount(code, minlength=len(x)).double() / n
    with torch.no_grad():
        p = m.log_prob(x, y).double().exp()
    assert p.max() > 2 / len(x)  # far from uniform, so a wrong sampler shows
    assert 0.5 * (freq - p).abs().sum().item() < 0.03


@pytest.mark.parametrize("factory,kw", [(nade, {}), (made, {}), (nade, CAT),
                                        (made, {**CAT, "data_kind": "rgb8", "channels": 3})])
def test_cached_sampler_equals_the_naive_reference(factory, kw):
    m = randomise(factory(image_size=(3, 4), **kw))
    a = m.sample(6, generator=torch.Generator().manual_seed(5))
    b = m.sample(6, generator=torch.Generator().manual_seed(5), sampler=NAIVE)
    assert torch.equal(a, b)
    x = m.sample(6, generator=torch.Generator().manual_seed(9))
    keep = torch.zeros(1, 1, 3, 4, dtype=torch.bool)
    keep[..., 1, 2:] = True
    a = m.complete(x, keep, generator=torch.Generator().manual_seed(5))
    b = m.complete(x, keep, generator=torch.Generator().manual_seed(5), sampler=NAIVE)
    assert torch.equal(a, b)


@pytest.mark.parametrize("factory,kw", [(nade, {}), (made, {"num_masks": 3})])
def test_conditional_sampling_follows_labels(factory, kw):
    m = randomise(factory(image_size=(4, 4), num_classes=3, **kw))
    with torch.no_grad():  # make the label dominate so different labels give different images
        m.label.mul_(20)
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    a, b = m.sample(6, y=torch.tensor(0), generator=gen()), m.sample(6, y=2, generator=gen())
    assert not torch.equal(a, b)
    cycled = m.sample(6, generator=gen())  # no labels: classes 0, 1, 2, 0, 1, 2
    by_label = m.sample(6, y=torch.arange(6) % 3, generator=gen())
    assert torch.equal(cycled, by_label)
    with pytest.raises(UserError, match="out of range"):
        m.sample(2, y=torch.tensor([0, 3]))
    with pytest.raises(UserError, match="unconditional"):
        factory(image_size=(4, 4), **kw).sample(2, y=torch.tensor([0, 1]))


@pytest.mark.parametrize("factory,kw", [(nade, {}), (made, {"num_masks": 3}), (nade, CAT)])
def test_completion_keeps_given_values_and_fills_the_rest(factory, kw):
    m = randomise(factory(image_size=(4, 4), **kw))
    x = torch.full((5, 1, 4, 4), 0.5)  # 0.5 is no valid value: filled ones must change
    x[:, :, :2] = binary(5, (1, 2, 4), seed=3)
    x[:, :, 3, 0] = 1.0
    keep = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    keep[:, :, :2] = True
    keep[:, :, 3, 0] = True  # a kept value after drawn ones stays too
    out = m.complete(x, keep, generator=torch.Generator().manual_seed(0))
    k = keep.expand_as(x)
    assert torch.equal(out[k], x[k])
    levels = m.config.levels if "head" in kw else 2
    filled = out[~k] * (levels - 1)
    assert torch.allclose(filled, filled.round())
    again = m.complete(x, keep, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again)


# ----- 5. save / load --------------------------------------------------------------------------
@pytest.mark.parametrize("factory,kw", [(nade, {"num_classes": 2}),
                                        (made, {"num_masks": 3, "num_classes": 2}),
                                        (made, CAT)])
def test_save_load_round_trip(factory, kw, tmp_path):
    m = randomise(factory(**kw)).eval()
    m.save_pretrained(tmp_path)
    again = load(tmp_path)
    assert type(again) is type(m) and again.config == m.config
    x = binary() if not kw.get("head") else torch.randint(0, 4, (6, 1, 3, 3)).float() / 3
    y = torch.arange(6) % 2 if m.config.num_classes else None
    assert torch.equal(m.log_prob(x, y), again.log_prob(x, y))
    if isinstance(m, MADE):  # the stored degrees, not the seed, define the loaded masks
        assert torch.equal(m.ranks_all, again.ranks_all)


# ----- 6. the command line ---------------------------------------------------------------------
CLI = {"nade": ["--hidden", "16"], "made": ["--hidden", "32", "--num-masks", "2"]}


@pytest.mark.parametrize("name", ["nade", "made"])
def test_train_and_evaluate_through_the_cli(name, tmp_path, capsys):
    out = tmp_path / name
    argv = ["train", name, "--data", "digits", "--steps", "30", "--batch-size", "32",
            "--log-every", "10", "--checkpoint-every", "30", "--no-progress", "--out", out,
            *CLI[name]]
    if name == "made":
        argv.append("--conditional")
    assert main([str(a) for a in argv]) == 0
    info = json.loads((out / "run.json").read_text())
    assert info["model"] == name and info["likelihood_kind"] == "exact"
    assert (out / "samples.png").exists() and (out / "checkpoints" / "latest").exists()
    assert main(["evaluate", str(out), "--metrics", "nll", "--n", "50"]) == 0
    entry = json.loads((out / "metrics.json").read_text())["evaluations"][-1]
    assert entry["protocol"]["kind"] == "exact" and entry["n"] == 50
    assert 0 < entry["nll_nats"] < 64 * 0.7  # below a uniform model's 64 ln 2 nats
    assert "bits/dim" in capsys.readouterr().out


def test_made_resume_reproduces_an_uninterrupted_run(tmp_path):
    # the mask cycle follows the loop's step, so 4 + 4 resumed steps = 8 steps in one go
    flags = ["--data", "digits", "--hidden", "16", "--num-masks", "3", "--batch-size", "16",
             "--checkpoint-every", "4", "--no-progress"]
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["train", "made", *flags, "--steps", "8", "--out", str(a)]) == 0
    assert main(["train", "made", *flags, "--steps", "4", "--out", str(b)]) == 0
    assert main(["train", "--resume", str(b), "--steps", "4", "--no-progress"]) == 0
    sa, sb = load(a).state_dict(), load(b).state_dict()
    assert int(sa["mask_step"]) == 8
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


# ----- 7. learning -----------------------------------------------------------------------------
def test_nade_learns_digits():
    torch.manual_seed(0)
    x = prepare_eval(DataConfig(data="digits"), "train", model_data_kind="binary").x[:512]
    m = NADE(NADEConfig(image_size=(8, 8), hidden=32))
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    with torch.no_grad():
        before = -m.log_prob(x).mean().item()
    for step in range(200):
        batch = x[(step * 64) % 512:][:64]
        opt.zero_grad()
        m.loss(batch)["loss"].backward()
        opt.step()
    with torch.no_grad():
        after = -m.log_prob(x).mean().item()
    assert before > 40 and after < before - 12, (before, after)
