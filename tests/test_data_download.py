"""Downloads: file:// mirrors only (never the network), SHA-256 checks, offline errors."""

import gzip
import hashlib
import io
import pickle
import re
import tarfile
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch

from genvision.data import download, load_dataset
from genvision.data.download import REMOTES, Remote
from genvision.errors import DataError

_real_urlopen = urllib.request.urlopen


@pytest.fixture(autouse=True)
def no_network(monkeypatch, tmp_path):
    """Only file:// URLs may be opened; the cache lives in tmp_path."""
    def guarded(url, *args, **kwargs):
        assert str(url).startswith("file://"), f"test tried the network: {url}"
        return _real_urlopen(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", guarded)
    monkeypatch.setenv("GENVISION_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GENVISION_MIRROR", raising=False)
    # these tests are about downloads: a system copy of Fashion-MNIST must not answer
    monkeypatch.delenv("GENVISION_FASHION_MNIST_DIR", raising=False)
    monkeypatch.setitem(download.SYSTEM_DIRS, "fashion-mnist",
                        ("GENVISION_FASHION_MNIST_DIR", tmp_path / "no-system-copy"))


def _idx(arr, magic):
    head = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in arr.shape)
    return gzip.compress(head + arr.tobytes())


def fake_mnist(mirror, monkeypatch, corrupt=False):
    """Four small IDX files under mirror/mnist/, registered with their true SHA-256."""
    folder = mirror / "mnist"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    shas = {}
    for prefix, n in (("train", 20), ("t10k", 8)):
        for kind, magic, arr in (("images-idx3", 2051, rng.integers(0, 256, (n, 4, 4))),
                                 ("labels-idx1", 2049, rng.integers(0, 10, n))):
            name = f"{prefix}-{kind}-ubyte.gz"
            data = _idx(arr.astype(np.uint8), magic)
            (folder / name).write_bytes(data)
            shas[name] = hashlib.sha256(data).hexdigest()
    if corrupt:
        shas = {k: "0" * 64 for k in shas}
    monkeypatch.setitem(REMOTES, "mnist", Remote("https://unused.invalid/", shas, "idx",
                                                 "fake", (1, 4, 4), {}))
    monkeypatch.setenv("GENVISION_MIRROR", mirror.as_uri())
    return folder


def test_download_verifies_caches_and_loads(tmp_path, monkeypatch):
    src = fake_mnist(tmp_path / "mirror", monkeypatch)
    test = load_dataset("mnist", "test")
    assert test.x.shape == (8, 1, 4, 4) and test.source == "mnist" and test.num_classes == 10
    cache = tmp_path / "cache" / "mnist"
    assert sorted(p.name for p in cache.iterdir()) == ["t10k-images-idx3-ubyte.gz",
                                                      "t10k-labels-idx1-ubyte.gz"]
    for f in src.iterdir():  # the mirror disappears: cached files are enough
        f.unlink()
    assert torch.equal(load_dataset("mnist", "test").x, test.x)
    with pytest.raises(DataError, match="cannot download .*train-images"):
        load_dataset("mnist", "train")  # train files were never fetched


def test_base_url_argument_and_cache_dir(tmp_path, monkeypatch):
    fake_mnist(tmp_path / "mirror", monkeypatch)
    monkeypatch.delenv("GENVISION_MIRROR")
    folder = download.fetch("mnist", "all", cache_dir=tmp_path / "c2",
                            base_url=(tmp_path / "mirror" / "mnist").as_uri())
    assert folder == tmp_path / "c2" / "mnist" and len(list(folder.iterdir())) == 4


def test_checksum_mismatch_discards_download(tmp_path, monkeypatch):
    fake_mnist(tmp_path / "mirror", monkeypatch, corrupt=True)
    with pytest.raises(DataError, match="failed its SHA-256 check .*expected 0000"):
        load_dataset("mnist", "test")
    cache = tmp_path / "cache" / "mnist"
    assert list(cache.iterdir()) == []  # neither the file nor its temp copy is left


def test_offline_names_the_alternatives(monkeypatch):
    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataError) as err:
        load_dataset("fashion-mnist", "test")
    msg = str(err.value)
    assert "no route to host" in msg and "\n" not in msg
    for alt in ("digits", "mnist5k", "faces", "photos", "idx:", "folder:"):
        assert alt in msg


def test_timeout_is_offline_too(monkeypatch):
    def slow(url, *args, **kwargs):
        raise TimeoutError("timed out")

    monkeypatch.setattr(urllib.request, "urlopen", slow)
    with pytest.raises(DataError, match="cannot download .*timed out.*mnist5k"):
        load_dataset("cifar10", "test")


def test_cifar_archive_extracts_only_known_members(tmp_path, monkeypatch):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        def add(name, payload):
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        rng = np.random.default_rng(0)
        for b in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            d = {b"data": rng.integers(0, 256, (3, 3072), dtype=np.uint8), b"labels": [1, 2, 3]}
            add(f"cifar-10-batches-py/{b}", pickle.dumps(d, protocol=4))
        add("cifar-10-batches-py/batches.meta",
            pickle.dumps({b"label_names": [b"a"] * 10}, protocol=4))
        add("../escape.txt", b"should never be written")
    data = buf.getvalue()
    mirror = tmp_path / "mirror" / "cifar10"
    mirror.mkdir(parents=True)
    (mirror / "cifar-10-python.tar.gz").write_bytes(data)
    monkeypatch.setitem(REMOTES, "cifar10", Remote(
        "https://unused.invalid/", {"cifar-10-python.tar.gz": hashlib.sha256(data).hexdigest()},
        "cifar", "fake", (3, 32, 32), {}))
    monkeypatch.setenv("GENVISION_MIRROR", (tmp_path / "mirror").as_uri())
    ds = load_dataset("cifar10", "all")
    assert ds.x.shape == (18, 3, 32, 32) and ds.source == "cifar10"
    assert not (tmp_path / "cache" / "escape.txt").exists()
    assert not any(p.name == "escape.txt" for p in (tmp_path / "cache").rglob("*"))


def test_published_checksums_are_lowercase_sha256_and_distinct():
    """hexdigest() is lower-case hex: an upper-case, short or "0x"-prefixed checksum would
    never match a download; two files sharing one checksum is a copy-paste slip."""
    seen: dict[str, tuple[str, str]] = {}
    for name, remote in REMOTES.items():
        assert remote.files, name
        for fname, sha in remote.files.items():
            assert re.fullmatch(r"[0-9a-f]{64}", sha), (name, fname, sha)
            assert sha not in seen, (name, fname, seen.get(sha))
            seen[sha] = (name, fname)


def test_sha256_file_is_hashlib_of_the_file_bytes(tmp_path):
    """The checksum a download is compared with: a known vector, and a file of several
    read chunks (plus an odd tail) hashed exactly as hashlib hashes its bytes."""
    abc = tmp_path / "abc"
    abc.write_bytes(b"abc")  # FIPS 180-2 test vector
    assert download.sha256_file(abc) == \
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    data = np.random.default_rng(1).integers(0, 256, 2 * download._CHUNK + 7,
                                             dtype=np.uint8).tobytes()
    big = tmp_path / "big"
    big.write_bytes(data)
    assert download.sha256_file(big) == hashlib.sha256(data).hexdigest()
    big.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # one bit of the last chunk
    assert download.sha256_file(big) != hashlib.sha256(data).hexdigest()
