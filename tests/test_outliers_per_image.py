"""outliers' per-image results: the background-strength check, the ratio-vs-NLL warning,
and the per-image CSV / gallery written by the CLI (issue 20)."""

from __future__ import annotations

import csv
import math

import pytest
import torch

from genvision.apps.outliers.detect import Scored
from genvision.apps.outliers.per_image import (
    background_strength,
    gallery,
    gallery_rows,
    independent_pixel_nll,
    ratio_vs_nll,
    write_scores_csv,
)


def test_independent_pixels_by_hand():
    train = torch.tensor([[[[0.0, 1.0]]], [[[0.0, 0.0]]]])  # 2 images of 1x2 binary pixels
    x = torch.tensor([[[[0.0, 1.0]]]])
    # add-one counts: pixel 0 -> (3, 1)/4, pixel 1 -> (2, 2)/4
    want = -(math.log(3 / 4) + math.log(2 / 4))
    assert independent_pixel_nll(train, x, 2).item() == pytest.approx(want)
    grey = independent_pixel_nll(train, x, 256)  # 8-bit: 256 levels share the smoothing
    assert grey.item() == pytest.approx(-(math.log(3 / 258) + math.log(2 / 258)))


@pytest.mark.parametrize("bg, words", [
    (150.0, "too weak: it explains 42%"),  # (200 - 150) / (200 - 80)
    (100.0, None),
    (70.0, "better than the model itself"),
])
def test_background_strength_verdicts(bg, words):
    out = background_strength(torch.full((4,), 80.0), torch.full((4,), bg),
                              torch.full((4,), 200.0))
    assert out["share"] == pytest.approx((200 - bg) / 120)
    assert (out["warning"] is None) if words is None else (words in out["warning"])
    worse = background_strength(torch.full((4,), 210.0), torch.full((4,), 100.0),
                                torch.full((4,), 200.0))
    assert "no better than independent pixels" in worse["warning"]


def test_ratio_worse_than_nll_is_named():
    ood = {"faces": {"metrics": {"nll": {"auroc": 0.99}, "ratio": {"auroc": 0.88}}},
           "noise": {"metrics": {"nll": {"auroc": 0.9}, "ratio": {"auroc": 0.95}}}}
    assert "separates faces worse than plain NLL" in ratio_vs_nll(ood)
    # a weak (or unknown) background is blamed; a strong one is not
    assert "may be too weak" in ratio_vs_nll(ood)
    assert "may be too weak" in ratio_vs_nll(ood, 0.3)
    assert "may be too weak" in ratio_vs_nll(ood, math.nan)
    strong = ratio_vs_nll(ood, 0.8)
    assert "too weak" not in strong and "explains 80%" in strong
    assert "cancels by design" in strong and "faces" in strong
    del ood["faces"]
    assert ratio_vs_nll(ood) is None
    assert ratio_vs_nll(ood, 0.8) is None


def test_csv_has_every_image_and_the_gallery_orders_by_score(tmp_path):
    x = torch.arange(20, dtype=torch.float32).reshape(20, 1, 1, 1).expand(20, 1, 4, 4) / 19
    nll = torch.arange(20, dtype=torch.float64).flip(0)  # image 19 is the least anomalous
    a = Scored("in", {}, {"nll": nll, "ratio": -nll}, nll, x.clone())
    b = Scored("ood", {}, {"nll": nll[:3]}, nll[:3], x[:3].clone())
    write_scores_csv([a, b], tmp_path / "s.csv")
    rows = list(csv.DictReader((tmp_path / "s.csv").open()))
    assert len(rows) == 23 and rows[0]["set"] == "in" and rows[-1]["ratio"] == ""
    assert float(rows[0]["nll_bits"]) == 19.0
    images, names = gallery_rows([a, b], "nll", k=4)
    assert names == ["in", "ood"] and images.shape == (16, 1, 4, 4)
    # row "in": the 4 lowest NLL (images 19, 18, 17, 16) then the 4 highest (3, 2, 1, 0)
    firsts = images[:8, 0, 0, 0] * 19
    assert firsts.round().tolist() == [19, 18, 17, 16, 3, 2, 1, 0]
    # row "ood" has 3 images: 3 least, 2 black pads, 3 most
    assert (images[8 + 3:8 + 5] == 0).all()
    assert gallery_rows([a], "ratio", k=4)[0][:8, 0, 0, 0].mul(19).round().tolist() == \
        [0, 1, 2, 3, 16, 17, 18, 19]  # ratio = -nll: the order flips
    assert gallery([a, b], "nll", tmp_path / "g.png", k=4) == ["in", "ood"]
    assert (tmp_path / "g.png").stat().st_size > 100
