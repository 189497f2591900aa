"""prepare / prepare_eval / list_datasets, and the real MNIST test file of the benchmark."""

import gzip
import hashlib
from pathlib import Path

import pytest
import torch

from genvision.data import DataConfig, list_datasets, load_dataset, prepare, prepare_eval
from genvision.errors import DataError

MNIST_DIR = Path(__file__).resolve().parents[2] / "shared/data/mnist"
needs_mnist = pytest.mark.skipif(not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file(),
                                 reason=f"MNIST test files not found in {MNIST_DIR}")


def test_prepare_binary_model_gets_dynamic_binarisation():
    prep = prepare(DataConfig(data="digits", split="val"), "binary")
    assert prep.data_kind == "binary" and prep.x.shape == (179, 1, 8, 8)
    assert torch.equal(prep.x, prep.train.to_float())  # bits are drawn per batch, not here
    assert prep.y.dtype == torch.int64 and len(prep.y) == 179
    b1 = prep.batch_transform(prep.x[:32], torch.Generator().manual_seed(0))
    b2 = prep.batch_transform(prep.x[:32], torch.Generator().manual_seed(0))
    assert torch.equal(b1, b2) and set(b1.unique().tolist()) <= {0.0, 1.0}
    assert prep.protocol["binarize"] == {"scheme": "dynamic", "seed": None}
    assert prep.protocol["source"] == "digits" and prep.protocol["n"] == 179


def test_prepare_static_and_none_and_dequantize():
    cfg = DataConfig(data="faces", split="all", binarize="static", binarize_seed=3)
    prep = prepare(cfg, "grey8")
    want = torch.bernoulli(load_dataset("faces", "all").to_float(),
                           generator=torch.Generator().manual_seed(3))
    assert torch.equal(prep.x, want) and prep.batch_transform is None
    assert prep.protocol["binarize"] == {"scheme": "static", "seed": 3}

    grey = prepare(DataConfig(data="faces"), "grey8")
    assert grey.data_kind == "grey8" and grey.batch_transform is None

    cont = prepare(DataConfig(data="faces", dequantize=True), "continuous")
    assert cont.data_kind == "continuous" and cont.protocol["dequantize"]["kind"] == "uniform"
    noisy = cont.batch_transform(cont.x, torch.Generator().manual_seed(0))
    assert torch.equal(torch.floor(noisy * 256).to(torch.uint8), cont.train.x)

    with pytest.raises(DataError, match="cannot both be on"):
        prepare(DataConfig(data="faces", binarize="dynamic", dequantize=True), "binary")


def test_prepare_records_resize_and_grayscale():
    prep = prepare(DataConfig(data="photos", split="val", image_size=16, grayscale=True),
                   "grey8")
    assert prep.x.shape == (512, 1, 16, 16) and prep.data_kind == "grey8"
    assert prep.protocol["resize"] == 16 and prep.protocol["grayscale"] is True
    up = prepare(DataConfig(data="digits", image_size=12), "grey8")
    assert up.x.shape[1:] == (1, 12, 12) and up.protocol["shape"] == [1, 12, 12]


def test_prepare_eval_static_whole_split_then_prefix():
    full = prepare_eval("digits", "test", model_data_kind="binary")
    assert full.protocol["binarize"] == {"scheme": "static", "seed": 0}
    want = torch.bernoulli(load_dataset("digits", "test").to_float(),
                           generator=torch.Generator().manual_seed(0))
    assert torch.equal(full.x, want)
    head = prepare_eval(DataConfig(data="digits", binarize="dynamic"), "test", n=50)
    assert torch.equal(head.x, want[:50]) and head.protocol["n"] == 50 and len(head.y) == 50
    assert head.batch_transform is None  # evaluation never re-draws bits
    seven = prepare_eval("digits", "test", binarize_seed=7)
    assert not torch.equal(seven.x, want)
    via_flag = prepare(DataConfig(data="digits", split="test"), "binary", for_eval=True)
    assert torch.equal(via_flag.x, want) and via_flag.num_classes == 10
    assert via_flag.shape == (1, 8, 8)
    plain = prepare_eval("digits", "test", model_data_kind="grey8")
    assert plain.data_kind == "grey8" and torch.equal(plain.x, full.train.to_float())


def test_list_datasets_rows():
    rows = {r["name"]: r for r in list_datasets()}
    for name in ("digits", "mnist5k", "faces", "photos", "mnist", "fashion-mnist", "cifar10",
                 "idx:", "npz:", "folder:", "cifar:"):
        download = {"location"} if rows[name]["kind"] == "download" else set()
        assert set(rows[name]) == {"name", "kind", "description", "shape", "size", "splits",
                                   *download}
    assert rows["mnist5k"]["size"] == 5000 and rows["mnist5k"]["splits"]["all"] == 5000
    assert rows["digits"]["splits"]["val"] == len(load_dataset("digits", "val"))
    assert rows["cifar10"]["kind"] == "download" and rows["npz:"]["kind"] == "file"


@needs_mnist
def test_real_mnist_test_file():
    ds = load_dataset(f"idx:{MNIST_DIR}", "test")
    assert ds.x.shape == (10000, 1, 28, 28) and ds.x.dtype == torch.uint8
    assert torch.bincount(ds.y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974,
                                              1009]
    with pytest.raises(DataError, match="official MNIST test split, which is for testing only"):
        load_dataset(f"idx:{MNIST_DIR}", "train")


@needs_mnist
def test_real_mnist_is_the_official_test_set():
    # SHA-256 of the *decompressed* official t10k files (widely published; the .gz bytes
    # differ between mirrors because gzip headers carry names and timestamps).
    want = {"t10k-images-idx3-ubyte.gz":
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte.gz":
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"}
    for name, sha in want.items():
        assert hashlib.sha256(gzip.decompress((MNIST_DIR / name).read_bytes())).hexdigest() == sha


@needs_mnist
def test_benchmark_binary_test_set():
    prep = prepare_eval(f"idx:{MNIST_DIR}", "test", model_data_kind="binary")
    x = load_dataset(f"idx:{MNIST_DIR}", "test").x.to(torch.float32) / 255
    want = torch.bernoulli(x, generator=torch.Generator().manual_seed(0))
    assert torch.equal(prep.x, want)
    assert prep.data_kind == "binary" and prep.protocol["binarize"] == {"scheme": "static",
                                                                         "seed": 0}
    assert abs(float(prep.x.mean()) - float(x.mean())) < 0.01  # Bernoulli(x) keeps the mean
