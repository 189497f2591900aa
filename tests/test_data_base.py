"""ImageSet and the seeded splits."""

import numpy as np
import pytest
import torch

from genvision.data.base import ImageSet, carve_val, split_indices, split_sizes
from genvision.errors import DataError


def _set(n=6, labels=True, names=None):
    x = torch.arange(n * 4, dtype=torch.uint8).view(n, 1, 2, 2)
    y = torch.tensor([i % 3 for i in range(n)]) if labels else None
    return ImageSet(x, y, "test:src", "all", names)


def test_imageset_properties_and_subset():
    ds = _set()
    assert len(ds) == 6 and ds.shape == (1, 2, 2) and ds.num_classes == 3
    sub = ds.subset([4, 1])
    assert torch.equal(sub.x, ds.x[[4, 1]]) and sub.y.tolist() == [1, 1]
    assert (sub.source, sub.split) == ("test:src", "all")
    assert _set(labels=False).num_classes == 0
    assert _set(names=list("abcde")).num_classes == 5  # class names win over max(y)+1
    f = ds.to_float()
    assert f.dtype == torch.float32 and torch.allclose(f * 255, ds.x.float())


def test_imageset_rejects_bad_tensors():
    with pytest.raises(ValueError, match="uint8"):
        ImageSet(torch.zeros(2, 1, 2, 2), None, "s", "all")
    with pytest.raises(ValueError, match="uint8"):
        ImageSet(torch.zeros(2, 4, 2, 2, dtype=torch.uint8), None, "s", "all")
    with pytest.raises(ValueError, match="int64"):
        ImageSet(torch.zeros(2, 1, 2, 2, dtype=torch.uint8), torch.zeros(3, dtype=torch.int64),
                 "s", "all")


@pytest.mark.parametrize("n", [10, 97, 1797])
def test_split_indices_partition_and_seeding(n):
    parts = {s: split_indices(n, s, seed=3) for s in ("train", "val", "test")}
    joined = np.concatenate(list(parts.values()))
    assert sorted(joined.tolist()) == list(range(n))  # disjoint and covering
    assert {s: len(v) for s, v in parts.items()} == {
        k: v for k, v in split_sizes(n).items() if k != "all"}
    assert all((np.diff(v) > 0).all() for v in parts.values())  # original order
    assert np.array_equal(split_indices(n, "val", 3), parts["val"])
    assert not np.array_equal(split_indices(n, "val", 4), parts["val"])
    assert np.array_equal(split_indices(n, "all"), np.arange(n))


def test_carve_val_partitions_training_file():
    tr, va = carve_val(100, "train", 0), carve_val(100, "val", 0)
    assert len(va) == 10 and len(tr) == 90 and not set(tr) & set(va)


def test_unknown_split_is_a_data_error():
    with pytest.raises(DataError, match="unknown split 'dev'"):
        split_indices(10, "dev")
