"""Datasets an operating-system package installed (Debian's dataset-fashion-mnist): found
before any download, verified by the published files' hashes, refused when tampered."""

from __future__ import annotations

import gzip
import hashlib
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from genvision.cli import main
from genvision.data import download, load_dataset
from genvision.errors import DataError

DEBIAN = Path("/usr/share/datasets/fashion-mnist")
FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def _raw_idx(arr: np.ndarray, magic: int) -> bytes:
    return magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in arr.shape) \
        + arr.tobytes()


@pytest.fixture
def fake_system(tmp_path, monkeypatch):
    """A tiny Fashion-MNIST-shaped system copy, registered with its true hashes. Its gzip
    files are compressed differently from the 'download' (as Debian's are), so only the
    decompressed-content hash can verify them; the network is refused."""
    folder = tmp_path / "system"
    folder.mkdir()
    rng = np.random.default_rng(0)
    download_sha, raw_sha = {}, {}
    for prefix, n in (("train", 30), ("t10k", 10)):
        for kind, magic, arr in (("images-idx3", 2051, rng.integers(0, 256, (n, 28, 28))),
                                 ("labels-idx1", 2049, rng.integers(0, 10, n))):
            name = f"{prefix}-{kind}-ubyte.gz"
            raw = _raw_idx(arr.astype(np.uint8), magic)
            (folder / name).write_bytes(gzip.compress(raw, compresslevel=1, mtime=0))
            download_sha[name] = hashlib.sha256(gzip.compress(raw, mtime=1)).hexdigest()
            raw_sha[name] = hashlib.sha256(raw).hexdigest()
    remote = download.REMOTES["fashion-mnist"]
    monkeypatch.setitem(download.REMOTES, "fashion-mnist",
                        download.Remote(remote.base_url, download_sha, "idx", remote.description,
                                        remote.shape, remote.splits))
    monkeypatch.setitem(download.RAW_SHA256, "fashion-mnist", raw_sha)
    monkeypatch.setenv("GENVISION_FASHION_MNIST_DIR", str(folder))
    monkeypatch.setenv("GENVISION_CACHE", str(tmp_path / "cache"))

    def no_network(url, *args, **kwargs):
        raise AssertionError(f"tried to download {url} although a system copy exists")
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    return folder


def test_a_verified_system_copy_is_used_without_a_download(fake_system, tmp_path):
    test = load_dataset("fashion-mnist", "test")
    assert test.x.shape == (10, 1, 28, 28) and test.source == "fashion-mnist"
    assert test.class_names[0] == "t-shirt/top"
    assert len(load_dataset("fashion-mnist", "train")) + \
        len(load_dataset("fashion-mnist", "val")) == 30  # official train file, val carved out
    assert not (tmp_path / "cache").exists()  # nothing was copied or fetched
    assert download.dataset_location("fashion-mnist") == f"system copy {fake_system}"


def test_a_tampered_system_file_is_refused_in_one_line(fake_system):
    path = fake_system / "t10k-images-idx3-ubyte.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[100] ^= 1  # one pixel changed, the file still a valid IDX
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz is not the published "
                                        "fashion-mnist file") as err:
        load_dataset("fashion-mnist", "test")
    assert "\n" not in str(err.value) and "GENVISION_FASHION_MNIST_DIR" in str(err.value)
    path.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="not the published"):
        load_dataset("fashion-mnist", "test")


def test_a_missing_file_or_folder_names_the_fix(fake_system, monkeypatch, tmp_path):
    (fake_system / "train-labels-idx1-ubyte.gz").unlink()
    assert len(load_dataset("fashion-mnist", "test")) == 10  # test needs only t10k files
    with pytest.raises(DataError, match="lacks train-labels-idx1-ubyte.gz.*reinstall"):
        load_dataset("fashion-mnist", "train")
    monkeypatch.setenv("GENVISION_FASHION_MNIST_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="GENVISION_FASHION_MNIST_DIR names .* not a folder"):
        load_dataset("fashion-mnist", "test")


def test_data_list_says_where_it_found_the_data(fake_system, capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert f"-> system copy {fake_system}" in out
    assert "-> not yet downloaded" in out  # cifar10, nothing cached in this test


@pytest.mark.skipif(not DEBIAN.is_dir(), reason="Debian's dataset-fashion-mnist is not "
                    "installed (apt-get install dataset-fashion-mnist)")
def test_debians_fashion_mnist_is_the_published_dataset(monkeypatch, tmp_path):
    monkeypatch.delenv("GENVISION_FASHION_MNIST_DIR", raising=False)
    monkeypatch.setenv("GENVISION_CACHE", str(tmp_path / "cache"))
    test = load_dataset("fashion-mnist", "test")
    assert test.x.shape == (10_000, 1, 28, 28)
    assert torch.equal(torch.bincount(test.y), torch.full((10,), 1000))  # balanced classes
    assert len(load_dataset("fashion-mnist", "train")) == 54_000  # 60k minus the val carve-out
    assert download.dataset_location("fashion-mnist") == f"system copy {DEBIAN}"
