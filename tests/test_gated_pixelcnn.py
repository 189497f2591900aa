"""Gated PixelCNN on tiny CPU configs: causality, no blind spot, receptive field, the
row cache == the full network. What it shares with the Row LSTM (normalisation, sampler,
completion, save/load, CLI) is in test_pixel_family.py."""

from __future__ import annotations

import pytest
import torch

import pixel_checks as pc
from genvision.errors import UserError
from genvision.models.gated_pixelcnn import GatedPixelCNN, _RowCache
from genvision.models.pixel_base import PixelSampler

NAIVE = PixelSampler(cached=False)  # the reference sampler


def make(image_size=(5, 5), **kw) -> GatedPixelCNN:
    return pc.make("gated-pixelcnn", image_size, **kw)


images = pc.images
HEADS = pc.HEADS


@pytest.mark.parametrize("head", list(HEADS))
def test_causal_and_no_blind_spot(head):
    """Parameters of (pixel i, channel c) see every earlier value and nothing else.

    With a first kernel of 3 and 4 layers the receptive field spans 5 rows up and 4
    columns either side, so in a 5x5 image *every* earlier value is in it -- including the
    region above and to the right that the original PixelCNN's stacked masks never reach.
    """
    fields, _ = HEADS[head]
    size = (4, 4) if fields.get("channels") == 3 else (5, 5)
    deps = pc.dependency_map(make(size, **{**fields, "layers": 4}))
    pc.assert_causal(deps)
    assert pc.unseen_earlier(deps) == []


def test_paper_variant_without_vertical_residual():
    m = make((5, 5), layers=4, vertical_residual=False)
    deps = pc.dependency_map(m)
    pc.assert_causal(deps)
    assert pc.unseen_earlier(deps) == []
    assert pc.total_probability(make((3, 3), vertical_residual=False), 2) == \
        pytest.approx(1, abs=1e-5)
    m = make((5, 6), layers=3, vertical_residual=False).eval()
    assert torch.equal(m.sample(4, generator=torch.Generator().manual_seed(0), sampler=NAIVE),
                       m.sample(4, generator=torch.Generator().manual_seed(0)))


def test_conditional_is_causal_and_labels_matter():
    m = make((4, 4), num_classes=3, layers=4).double()
    y = torch.tensor([0, 1, 2])
    deps = pc.dependency_map(m, y=y)
    pc.assert_causal(deps)
    assert pc.unseen_earlier(deps) == []
    x = images(m, 3).double()
    assert not torch.allclose(m.log_prob(x, y), m.log_prob(x, y.roll(1)))


def test_receptive_field_is_limited_by_depth():
    """One 3x3 layer: the vertical stack reaches 2 rows up, the horizontal 1 pixel left."""
    deps = pc.dependency_map(make((5, 5), layers=1))
    pc.assert_causal(deps)
    seen = deps[4 * 5 + 2, 0]  # pixel (4, 2)
    assert seen[2:4, 1:4].all() and seen[4, 1]
    assert not seen[:2].any() and not seen[:, 0].any() and not seen[:, 4].any()


def assert_row_cache_matches(m: GatedPixelCNN, x: torch.Tensor, y=None) -> None:
    """The cached per-column computation gives the parameters of a full pass, everywhere."""
    _, H, W = m.config.shape
    with torch.no_grad():
        full = m.params(x, y)
        cache = _RowCache(m, x.clone(), y)
        for i in range(H):
            cache.row = i
            cache.start_row(i)
            for j in range(W):
                assert torch.allclose(cache.column(j), full[:, :, i, j], atol=1e-5), (i, j)
            cache.end_row(i)


@pytest.mark.parametrize("case", ["bernoulli", "rgb-logistic", "conditional"])
def test_row_cache_reproduces_the_full_network(case):
    """The cached per-column computation gives the parameters of a full pass."""
    fields = {"num_classes": 3} if case == "conditional" else HEADS[case][0]
    m = make((5, 6), **{**fields, "layers": 3, "input_kernel": 5}).eval()
    x = images(m, 3, seed=1)
    y = torch.tensor([2, 0, 1]) if case == "conditional" else None
    assert_row_cache_matches(m, x, y)


def test_rgb_widths_round_up_to_channel_groups():
    m = make((3, 3), channels=3, data_kind="rgb8", hidden=8, out_hidden=8)
    assert m.p == 9 and m.out1.out_channels == 9
    assert torch.isfinite(m.loss(images(m, 2))["loss"])


def test_dilated_layers_are_causal_dense_and_cached_exactly():
    """Dilation 2 after a 5x5 first layer: causal, still no hole or blind spot in a 6x6
    image, a wider field than without dilation, and the row cache matches the full pass."""
    m = make((6, 6), layers=3, input_kernel=5, dilation=(2,))
    assert [ly.dilation for ly in m.layers] == [1, 2, 2]
    deps = pc.dependency_map(m)
    pc.assert_causal(deps)
    assert pc.unseen_earlier(deps) == []
    plain = pc.dependency_map(make((6, 6), layers=3, input_kernel=5, dilation=()))
    assert deps.sum() > plain.sum()  # 6 columns/rows of reach instead of 4
    m = make((5, 6), layers=3, input_kernel=3, dilation=(1, 2)).eval()
    assert_row_cache_matches(m, images(m, 3, seed=2))
    assert torch.equal(m.sample(4, generator=torch.Generator().manual_seed(0), sampler=NAIVE),
                       m.sample(4, generator=torch.Generator().manual_seed(0)))
    with pytest.raises(UserError, match="dilations must be >= 1"):
        make((5, 5), dilation=(0,))
    # a type-A 3x3 first layer reaches 1 pixel left: dilation 2 next would skip one
    with pytest.raises(UserError, match="dilation 2 of layer 2 skips pixels.*--dilation"):
        make((5, 5), input_kernel=3, dilation=(2,))


def test_runs_from_before_dilation_load_and_resume_undilated(tmp_path):
    """A config saved before ``dilation`` existed means no dilation, not today's default."""
    import json

    import genvision
    from genvision.cli import main
    from genvision.models.gated_pixelcnn import GatedPixelCNNConfig

    assert GatedPixelCNNConfig().dilation == (1, 2, 4, 8)
    out = tmp_path / "old"
    tiny = ["--hidden", "4", "--layers", "4", "--out-hidden", "4", "--batch-size", "16",
            "--checkpoint-every", "4", "--no-progress"]
    assert main(["train", "gated-pixelcnn", "--data", "digits", "--steps", "4",
                 "--dilation", "1", "--out", str(out), *tiny]) == 0
    for path in [out / "run.json", *out.rglob("config.json")]:  # as an older genvision wrote
        meta = json.loads(path.read_text())
        for key in ("model_config", "model_overrides", "config"):
            meta.get(key, {}).pop("dilation", None)
        path.write_text(json.dumps(meta))
    assert [ly.dilation for ly in genvision.load(out).layers] == [1, 1, 1, 1]
    assert main(["train", "--resume", str(out), "--steps", "2", "--no-progress"]) == 0
    assert (out / "checkpoints" / "latest").read_text().strip() == "step-00000006"
    assert [ly.dilation for ly in genvision.load(out).layers] == [1, 1, 1, 1]
