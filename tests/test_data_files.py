"""User file sources: idx:, npz:, folder:, cifar: -- valid, corrupt and wrong inputs."""

import gzip
import io
import pickle
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from genvision.data import load_dataset
from genvision.data.cifar import safe_unpickle
from genvision.errors import DataError


# ----- idx ----------------------------------------------------------------------------------
def idx_bytes(arr: np.ndarray, magic: int) -> bytes:
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in arr.shape) + \
        arr.astype(np.uint8).tobytes()


def write_idx(folder, prefix, n, gz=True, seed=0, n_labels=None):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 6, 5), dtype=np.uint8)
    y = rng.integers(0, 10, n_labels if n_labels is not None else n, dtype=np.uint8)
    ext = ".gz" if gz else ""
    opener = gzip.compress if gz else (lambda b: b)
    (folder / f"{prefix}-images-idx3-ubyte{ext}").write_bytes(opener(idx_bytes(x, 2051)))
    (folder / f"{prefix}-labels-idx1-ubyte{ext}").write_bytes(opener(idx_bytes(y, 2049)))
    return x, y


def test_idx_folder_splits(tmp_path):
    xtr, ytr = write_idx(tmp_path, "train", 50, gz=True)
    xte, yte = write_idx(tmp_path, "t10k", 20, gz=False, seed=1)
    spec = f"idx:{tmp_path}"
    test = load_dataset(spec, "test")
    assert test.x.shape == (20, 1, 6, 5) and torch.equal(test.x[:, 0], torch.from_numpy(xte))
    assert torch.equal(test.y, torch.from_numpy(yte).long()) and test.source == spec
    tr, va = load_dataset(spec, "train"), load_dataset(spec, "val")
    assert len(tr) == 45 and len(va) == 5
    rows = sorted(bytes(r) for r in torch.cat([tr.x, va.x]).flatten(1).numpy())
    assert rows == sorted(bytes(r) for r in xtr.reshape(50, -1))
    every = load_dataset(spec, "all")
    assert len(every) == 70 and torch.equal(every.x[50:, 0], torch.from_numpy(xte))


def test_idx_single_file_with_optional_labels(tmp_path):
    x, y = write_idx(tmp_path, "t10k", 30)
    ds = load_dataset(f"idx:{tmp_path / 't10k-images-idx3-ubyte.gz'}", "all")
    assert torch.equal(ds.y, torch.from_numpy(y).long()) and len(ds) == 30
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    ds = load_dataset(f"idx:{tmp_path / 't10k-images-idx3-ubyte.gz'}", "test")
    assert ds.y is None and len(ds) == 3


def test_idx_missing_test_files_named(tmp_path):
    # (a folder with only t10k files is one source with a seeded split: test_data_trust.py)
    write_idx(tmp_path, "train", 5)
    with pytest.raises(DataError, match="no t10k images in .*t10k-images-idx3-ubyte.*split val"):
        load_dataset(f"idx:{tmp_path}", "test")
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(f"idx:{tmp_path / 'nope'}", "test")


def test_idx_truncated_file_reports_bytes(tmp_path):
    x, _ = write_idx(tmp_path, "t10k", 10, gz=False)
    f = tmp_path / "t10k-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:-7])
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte: header \[10, 6, 5\] needs "
                                        r"316 bytes, file has 309"):
        load_dataset(f"idx:{tmp_path}", "test")


def test_idx_truncated_gzip_and_bad_magic(tmp_path):
    write_idx(tmp_path, "t10k", 10, gz=True)
    f = tmp_path / "t10k-images-idx3-ubyte.gz"
    f.write_bytes(f.read_bytes()[:40])
    with pytest.raises(DataError, match="not a readable gzip file"):
        load_dataset(f"idx:{tmp_path}", "test")
    f.write_bytes(gzip.compress(idx_bytes(np.zeros(4), 2049)))  # a labels file in disguise
    with pytest.raises(DataError, match="magic 2049, expected 2051"):
        load_dataset(f"idx:{tmp_path}", "test")


def test_idx_label_count_mismatch(tmp_path):
    write_idx(tmp_path, "t10k", 10, n_labels=9)
    with pytest.raises(DataError, match="holds 9 labels but .* holds 10 images"):
        load_dataset(f"idx:{tmp_path}", "test")


# ----- npz ----------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["nhw", "nhwc", "nchw"])
def test_npz_layouts(tmp_path, layout):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (10, 3, 4, 5), dtype=np.uint8)
    x = {"nhw": base[:, 0], "nhwc": base.transpose(0, 2, 3, 1), "nchw": base}[layout]
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(10) % 4)
    ds = load_dataset(f"npz:{tmp_path / 'd.npz'}", "all")
    want = base[:, :1] if layout == "nhw" else base
    assert torch.equal(ds.x, torch.from_numpy(want)) and ds.num_classes == 4


def test_npz_float_input_scaled(tmp_path):
    np.savez(tmp_path / "f.npz", x=np.array([0.0, 0.5, 1.0]).reshape(1, 1, 3))
    assert load_dataset(f"npz:{tmp_path / 'f.npz'}", "all").x.flatten().tolist() == [0, 128, 255]


@pytest.mark.parametrize("arrays,msg", [
    ({"images": np.zeros((2, 4, 4), np.uint8)}, "has no array 'x' .*images"),
    ({"x": np.zeros((2, 4), np.uint8)}, r"x has shape \[2, 4\]"),
    ({"x": np.zeros((2, 4, 4, 4), np.uint8)}, r"x has shape \[2, 4, 4, 4\]"),
    ({"x": np.full((2, 4, 4), 3.0)}, r"float x must lie in \[0, 1\], found \[3, 3\]"),
    ({"x": np.full((2, 4, 4), 300, np.int32)}, "dtype int32 with values outside 0..255"),
    ({"x": np.zeros((3, 4, 4), np.uint8), "y": np.arange(2)}, "y has shape .*3 images"),
    ({"x": np.zeros((2, 4, 4), np.uint8), "y": np.array([0.5, 1])}, "non-negative integers"),
])
def test_npz_errors(tmp_path, arrays, msg):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=msg):
        load_dataset(f"npz:{tmp_path / 'bad.npz'}", "all")


def test_npz_never_unpickles(tmp_path):
    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError, match="object arrays are not accepted"):
        load_dataset(f"npz:{tmp_path / 'obj.npz'}", "all")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable .npz"):
        load_dataset(f"npz:{tmp_path / 'junk.npz'}", "all")
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(f"npz:{tmp_path / 'missing.npz'}", "all")


# ----- folder -------------------------------------------------------------------------------
def save(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def test_folder_with_classes_grey(tmp_path):
    for k, cls in enumerate(["zebra", "ant"]):
        for i in range(5):
            save(tmp_path / cls / f"{i}.png", np.full((6, 6), 10 * k + i, np.uint8))
    ds = load_dataset(f"folder:{tmp_path}", "all")
    assert ds.class_names == ["ant", "zebra"] and ds.x.shape == (10, 1, 6, 6)
    assert ds.y.tolist() == [0] * 5 + [1] * 5
    assert ds.x[0, 0, 0, 0] == 10 and ds.x[5, 0, 0, 0] == 0  # ant = folder of value 10+i


def test_folder_unlabelled_rgb_and_grey_detection(tmp_path):
    save(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 0] = 255
    save(tmp_path / "b.jpg", rgb)
    ds = load_dataset(f"folder:{tmp_path}", "all")
    assert ds.y is None and ds.shape == (3, 4, 4)
    (tmp_path / "b.jpg").unlink()
    save(tmp_path / "c.bmp", np.full((4, 4, 3), 77, np.uint8))  # grey stored as RGB
    assert load_dataset(f"folder:{tmp_path}", "all").shape == (1, 4, 4)


def test_folder_mixed_sizes_need_image_size(tmp_path):
    save(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
    save(tmp_path / "b.png", np.zeros((8, 6), np.uint8))
    with pytest.raises(DataError, match="2 different sizes.*--image-size"):
        load_dataset(f"folder:{tmp_path}", "all")
    assert load_dataset(f"folder:{tmp_path}", "all", image_size=5).x.shape == (2, 1, 5, 5)


def test_folder_corrupt_and_empty(tmp_path):
    save(tmp_path / "ok.png", np.zeros((4, 4), np.uint8))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DataError, match="cannot read image .*broken.png"):
        load_dataset(f"folder:{tmp_path}", "all")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images")
    with pytest.raises(DataError, match="no images found in .*empty"):
        load_dataset(f"folder:{empty}", "all")
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(f"folder:{tmp_path / 'nowhere'}", "all")


# ----- cifar --------------------------------------------------------------------------------
def write_batch(path, n, seed=0, protocol=4, **override):
    rng = np.random.default_rng(seed)
    d = {b"batch_label": b"fake", b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
         b"labels": [int(v) for v in rng.integers(0, 10, n)], b"filenames": [b"f"] * n}
    d.update({k.encode(): v for k, v in override.items()})
    path.write_bytes(pickle.dumps(d, protocol=protocol))
    return d


def make_cifar(folder, n=4):
    batches = [write_batch(folder / f"data_batch_{i}", n, seed=i) for i in range(1, 6)]
    test = write_batch(folder / "test_batch", n, seed=9)
    names = [f"class{i}".encode() for i in range(10)]
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}, protocol=4))
    return batches, test


def test_cifar_reader(tmp_path):
    batches, test = make_cifar(tmp_path)
    ds = load_dataset(f"cifar:{tmp_path}", "test")
    assert ds.x.shape == (4, 3, 32, 32) and ds.class_names[3] == "class3"
    assert torch.equal(ds.x.flatten(1), torch.from_numpy(test[b"data"]))
    assert ds.y.tolist() == test[b"labels"]
    assert len(load_dataset(f"cifar:{tmp_path}", "train")) == 18
    assert len(load_dataset(f"cifar:{tmp_path}", "val")) == 2
    assert len(load_dataset(f"cifar:{tmp_path}", "all")) == 24


class Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def test_cifar_refuses_code_globals(tmp_path):
    make_cifar(tmp_path)
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(DataError, match=r"refusing global (posix|os|nt)\.system"):
        load_dataset(f"cifar:{tmp_path}", "test")
    (tmp_path / "x.pkl").write_bytes(pickle.dumps({"f": eval}))
    with pytest.raises(DataError, match="refusing global builtins.eval"):
        safe_unpickle(tmp_path / "x.pkl")


class Py2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 ``str`` (BINSTRING), as the real CIFAR batches do."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_bytes(self, obj):
        self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes


def test_cifar_python2_style_pickle_loads(tmp_path):
    # protocol 2, str-as-bytes and numpy.core names: the layout of the real batches
    data = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump({b"data": data, b"labels": [3, 4]})
    raw = buf.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"_codecs" not in raw and b"numpy.core.multiarray\n_reconstruct" in raw
    make_cifar(tmp_path)
    (tmp_path / "test_batch").write_bytes(raw)
    ds = load_dataset(f"cifar:{tmp_path}", "test")
    assert torch.equal(ds.x.flatten(1), torch.from_numpy(data)) and ds.y.tolist() == [3, 4]


def test_cifar_bad_batches(tmp_path):
    make_cifar(tmp_path)
    write_batch(tmp_path / "test_batch", 4, labels=[1, 2])  # override: too few labels
    with pytest.raises(DataError, match="2 labels for 4 images"):
        load_dataset(f"cifar:{tmp_path}", "test")
    write_batch(tmp_path / "test_batch", 4, data=np.zeros((4, 100), np.uint8))
    with pytest.raises(DataError, match=r"'data' must be uint8 \[N, 3072\]"):
        load_dataset(f"cifar:{tmp_path}", "test")
    (tmp_path / "test_batch").write_bytes(b"\x80\x04}")
    with pytest.raises(DataError, match="not a readable CIFAR batch"):
        load_dataset(f"cifar:{tmp_path}", "test")
    (tmp_path / "data_batch_3").unlink()
    with pytest.raises(DataError, match="data_batch_3 is missing"):
        load_dataset(f"cifar:{tmp_path}", "train")


# ----- dispatch -----------------------------------------------------------------------------
def test_unknown_names_and_prefixes():
    with pytest.raises(DataError, match="unknown dataset 'mnist6k'.*digits, mnist5k.*idx:"):
        load_dataset("mnist6k")
    with pytest.raises(DataError, match="unknown dataset 'zip:/x'.*folder:"):
        load_dataset("zip:/x")
    with pytest.raises(DataError, match="no path after npz:"):
        load_dataset("npz:")
    with pytest.raises(DataError, match="unknown split"):
        load_dataset("digits", "training")
