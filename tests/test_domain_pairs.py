"""Domain pairs for translation: deterministic, held-out photos kept out of training, the
MNIST-M blend and the edge maps as documented."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genvision.data import domain_pairs
from genvision.data.domain_pairs import blend_mnistm, canny_edges, load_domain_pair
from genvision.data.photos import PHOTO_SPLITS
from genvision.errors import DataError, UserError


def test_blend_is_the_crop_where_the_digit_is_black_and_its_negative_where_white():
    digits = torch.tensor([[[[0, 255], [100, 0]]]], dtype=torch.uint8)  # [1, 1, 2, 2]
    crops = np.array([[[[10, 20, 30], [40, 50, 60]], [[200, 90, 0], [7, 8, 9]]]],
                     dtype=np.uint8)  # [1, 2, 2, 3]
    out = blend_mnistm(digits, crops)
    assert out.shape == (1, 3, 2, 2) and out.dtype == torch.uint8
    assert out[0, :, 0, 0].tolist() == [10, 20, 30]            # black digit: the photo
    assert out[0, :, 0, 1].tolist() == [215, 205, 195]         # white digit: 255 - photo
    assert out[0, :, 1, 0].tolist() == [100, 10, 100]          # |photo - 100|


def test_edges_are_binary_single_channel_and_follow_a_step():
    patch = torch.zeros(1, 3, 16, 16, dtype=torch.uint8)
    patch[..., 8:] = 255  # a vertical step between columns 7 and 8
    edges = canny_edges(patch)
    assert edges.shape == (1, 1, 16, 16) and set(edges.unique().tolist()) <= {0, 255}
    cols = edges[0, 0].nonzero()[:, 1]
    assert len(cols) and set(cols.tolist()) <= {7, 8}
    assert canny_edges(torch.zeros(1, 3, 16, 16, dtype=torch.uint8)).max() == 0


@pytest.mark.parametrize("name", ["mnist-mnistm", "edges-photos", "digits-mnist"])
def test_same_name_split_and_seed_give_the_same_images(name):
    one, two = load_domain_pair(name, "test"), load_domain_pair(name, "test")
    assert torch.equal(one.a.x, two.a.x) and torch.equal(one.b.x, two.b.x)
    other = load_domain_pair(name, "test", seed=1)
    assert not torch.equal(one.b.x, other.b.x)


def test_mnistm_pairs_each_digit_with_its_own_blend_and_keeps_labels():
    pair = load_domain_pair("mnist-mnistm", "val")
    assert pair.paired and len(pair.a) == len(pair.b) and pair.b.shape == (3, 28, 28)
    assert torch.equal(pair.a.y, pair.b.y)
    # image i of B is the blend of digit i with the i-th crop of the split's photos
    crops = domain_pairs._crops("val", len(pair.a), 28, 0 * 4 + 1)
    assert torch.equal(pair.b.x, blend_mnistm(pair.a.x, crops))
    assert not torch.equal(pair.b.x[1:], blend_mnistm(pair.a.x[:-1], crops[1:]))


def test_training_pairs_never_read_the_held_out_photos(monkeypatch):
    read: list[str] = []
    real = domain_pairs.load_photos

    def spy(split):
        read.append(split)
        return real(split)
    monkeypatch.setattr(domain_pairs, "load_photos", spy)
    for name in ("mnist-mnistm", "edges-photos"):
        load_domain_pair(name, "train")
    assert read == ["train", "train"]
    assert not set(PHOTO_SPLITS["train"]) & set(PHOTO_SPLITS["test"])


def test_edges_photos_are_paired_edges_of_their_own_photos():
    pair = load_domain_pair("edges-photos", "val")
    assert pair.paired and pair.a.shape == (1, 32, 32) and pair.b.shape == (3, 32, 32)
    assert torch.equal(pair.a.x[:5], canny_edges(pair.b.x[:5]))


def test_digits_mnist_is_unpaired_labelled_and_upsampled_to_mnists_size():
    pair = load_domain_pair("digits-mnist", "train")
    assert not pair.paired and pair.a.shape == pair.b.shape == (1, 28, 28)
    assert pair.a.num_classes == pair.b.num_classes == 10
    assert len(pair.a) != len(pair.b)


def test_unknown_pair_or_split_is_refused_with_the_choices():
    with pytest.raises(UserError, match="mnist-mnistm"):
        load_domain_pair("horses-zebras")
    with pytest.raises(DataError, match="unknown split"):
        load_domain_pair("mnist-mnistm", "dev")
