"""Data you can trust (issue 16): size-checked unpickling, IDX headers, test-only IDX
folders, which images a run is scored on, and what a test split is called."""

from __future__ import annotations

import json
import pickle
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from genvision.apps.classify.data import load_task_data
from genvision.apps.classify.report import protocol_line
from genvision.apps.outliers.data import in_distribution, ood_set
from genvision.cli import main
from genvision.data import load_dataset
from genvision.data.idx import read_idx
from genvision.data.safe_pickle import safe_unpickle
from genvision.data.sources import is_mnist_test_source, splits_overlap
from genvision.errors import DataError
from genvision.runs.start import read_run

MNIST_DIR = Path(__file__).resolve().parents[2] / "shared/data/mnist"


# ----- pickles ---------------------------------------------------------------------------------
def test_protocol5_and_fortran_arrays_load_exactly(tmp_path):
    # protocol 5 rebuilds arrays with numpy's _frombuffer, which the old unpickler refused
    arrays = {"u8": np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
              "f32": np.asfortranarray(np.linspace(0, 1, 6, dtype=">f4").reshape(2, 3)),
              "i64": np.array([3, -1, 7], dtype=np.int64), "empty": np.zeros((0, 5))}
    for protocol in (4, 5):
        path = tmp_path / f"p{protocol}.pkl"
        path.write_bytes(pickle.dumps(arrays, protocol=protocol))
        got = safe_unpickle(path)
        for name, a in arrays.items():
            assert got[name].dtype == a.dtype and got[name].shape == a.shape, (protocol, name)
            assert np.array_equal(got[name], a), (protocol, name)


def test_no_array_is_sized_by_the_pickle(tmp_path):
    """Shapes far beyond the file are refused before NumPy is asked for the memory."""
    recon = np.zeros(1).__reduce__()[0]

    class Reduce:
        def __init__(self, *r):
            self.r = r

        def __reduce__(self):
            return self.r

    frombuffer = np.zeros(2).__reduce_ex__(5)[0]
    for bomb, words in [
        (Reduce(recon, (np.ndarray, (0,), b"b"), (1, (10**11,), np.dtype(object), False, [])),
         "dtype"),
        (Reduce(recon, (np.ndarray, (0,), b"b"), (1, (2**40,), np.dtype(np.uint8), False,
                                                  b"x")), "needs 1099511627776 bytes"),
        (Reduce(frombuffer, (b"abcd", np.dtype(np.uint8), (2**33, 2**33), "C")), "bytes"),
        (Reduce(np.ndarray, ((10**11,),)), "ndarray"),
    ]:
        path = tmp_path / "bomb.pkl"
        path.write_bytes(pickle.dumps({"data": bomb}, protocol=4))
        with pytest.raises(DataError, match=words):
            safe_unpickle(path)


def test_memo_index_out_of_order_is_refused(tmp_path):
    path = tmp_path / "memo.pkl"
    path.write_bytes(b"\x80\x02}r" + struct.pack("<I", 2**31) + b".")
    with pytest.raises(DataError, match="memo index"):
        safe_unpickle(path)


# ----- IDX -------------------------------------------------------------------------------------
def write_idx(path: Path, dims: tuple[int, ...], payload: bytes, magic: int = 0x0800) -> Path:
    path.write_bytes(struct.pack(">I", magic | len(dims)) + struct.pack(f">{len(dims)}I", *dims)
                     + payload)
    return path


@pytest.mark.parametrize("dims", [(2**22, 2**21, 2**21), (2**32 - 1, 2**32 - 1, 2**32 - 1),
                                  (1000, 28, 28)])
def test_idx_header_beyond_the_file_is_refused(tmp_path, dims):
    # 2**22 * 2**21 * 2**21 wraps to 0 in int64: the old check took the empty file as valid
    path = write_idx(tmp_path / "x-images-idx3-ubyte", dims, b"")
    with pytest.raises(DataError, match="header"):
        read_idx(path, 2051)


def test_only_t10k_folder(folder: Path, n: int = 50, side: int = 8, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / "t10k-images-idx3-ubyte", (n, side, side),
              rng.integers(0, 256, n * side * side, dtype=np.uint8).tobytes())
    write_idx(folder / "t10k-labels-idx1-ubyte", (n,), (np.arange(n) % 10).astype(np.uint8)
              .tobytes())
    return folder


test_only_t10k_folder.__test__ = False  # a helper, not a test


def test_a_test_only_idx_folder_is_one_source_with_a_seeded_split(tmp_path):
    folder = test_only_t10k_folder(tmp_path / "mine")
    full = load_dataset(f"idx:{folder}", "all")
    parts = {s: load_dataset(f"idx:{folder}", s, split_seed=3) for s in ("train", "val", "test")}
    assert [len(parts[s]) for s in ("train", "val", "test")] == [40, 5, 5]
    rows = {s: {bytes(x.numpy().tobytes()) for x in parts[s].x} for s in parts}
    assert not rows["train"] & rows["test"] and not rows["train"] & rows["val"]
    assert len(rows["train"] | rows["val"] | rows["test"]) == len(full) == 50
    assert parts["test"].y is not None and parts["test"].source == f"idx:{folder}"


@pytest.mark.skipif(not MNIST_DIR.is_dir(), reason="official MNIST test split not present")
def test_the_official_mnist_test_folder_stays_the_whole_test_split():
    assert len(load_dataset(f"idx:{MNIST_DIR}", "test")) == 10_000
    assert is_mnist_test_source(f"idx:{MNIST_DIR}", "test")


def test_outliers_ood_accepts_a_test_only_folder(tmp_path, tiny_vae_run):
    folder = test_only_t10k_folder(tmp_path / "ood")
    ds = ood_set(f"idx:{folder}", read_run(tiny_vae_run), resize=False, n=None)
    assert ds.x.shape == (50, 1, 8, 8)


def test_train_and_evaluate_on_a_test_only_folder_never_share_images(tmp_path, capsys):
    folder = test_only_t10k_folder(tmp_path / "mine", n=200)
    run = tmp_path / "run"
    assert main(["train", "vae", "--data", f"idx:{folder}", "--steps", "1", "--out", str(run),
                 "--latent-dim", "4", "--hidden", "8", "16", "--fc-dim", "32", "--ar-layers",
                 "1", "--ar-channels", "4", "--batch-size", "16", "--no-progress"]) == 0
    assert main(["evaluate", str(run), "--metrics", "nll"]) == 0
    entry = json.loads((run / "metrics.json").read_text())["evaluations"][-1]
    assert entry["data"]["n"] == 20 and "training_images" not in entry["data"]
    assert "TRAINING IMAGES" not in capsys.readouterr().out


# ----- which images a run is scored on ---------------------------------------------------------
@pytest.mark.parametrize("train,evals,overlap", [
    (("digits", "train"), ("digits", "test"), False),
    (("digits", "train"), ("digits", "val"), False),
    (("digits", "all"), ("digits", "test"), True),
    (("digits", "test"), ("digits", "test"), True),
    (("digits", "train"), ("digits", "all"), True),
    (("digits", "all"), ("faces", "test"), False),
    (("idx:./d", "all"), ("idx:d/", "test"), True),
])
def test_splits_overlap(train, evals, overlap):
    assert splits_overlap(*train, *evals) is overlap


def _trained_on(tmp_path: Path, tiny_vae_run: Path, split: str) -> Path:
    run = tmp_path / "run"
    shutil.copytree(tiny_vae_run, run, symlinks=True)
    info = json.loads((run / "run.json").read_text())
    info["data_config"]["split"] = split
    (run / "run.json").write_text(json.dumps(info))
    return run


def test_evaluate_on_training_images_only_when_asked_and_says_so(tmp_path, tiny_vae_run,
                                                                 capsys):
    run = _trained_on(tmp_path, tiny_vae_run, "all")
    assert main(["evaluate", str(run), "--metrics", "nll", "--n", "8"]) == 2
    assert not (run / "metrics.json").exists()
    capsys.readouterr()
    assert main(["evaluate", str(run), "--split", "test", "--metrics", "nll", "--n", "8"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("TRAINING IMAGES (the run trained on digits split all)")
    entry = json.loads((run / "metrics.json").read_text())["evaluations"][-1]
    assert entry["data"]["training_images"] == "the run trained on digits split all"


# ----- what the test split is called -----------------------------------------------------------
def _labelled_idx(folder: Path, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix in ("train", "t10k"):
        write_idx(folder / f"{prefix}-images-idx3-ubyte", (n, 8, 8),
                  rng.integers(0, 256, n * 64, dtype=np.uint8).tobytes())
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", (n,),
                  (np.arange(n) % 2).astype(np.uint8).tobytes())


def test_classify_never_calls_a_users_folder_the_official_mnist_test(tmp_path):
    folder = tmp_path / "my-mnist"  # "mnist" in the path made the old code say official
    _labelled_idx(folder, 40, 0)
    data = load_task_data("0-vs-1", f"idx:{folder}")
    assert data.protocol["official_mnist_test"] is False
    assert data.protocol["test"]["what"] == f"idx:{folder} split test"
    line = protocol_line(data.protocol, {"steps": 1})
    assert "official" not in line and f"test idx:{folder} split test" in line


@pytest.mark.skipif(not MNIST_DIR.is_dir(), reason="official MNIST test split not present")
def test_classify_recognises_the_official_mnist_test_by_content():
    data = load_task_data("0-vs-1", "mnist5k", f"idx:{MNIST_DIR}", n_test=10)
    assert data.protocol["official_mnist_test"] is True
    assert "official MNIST test split" in protocol_line(data.protocol, {})


def test_outliers_auto_never_looks_in_the_working_directory(tmp_path, monkeypatch):
    """A ``../shared/data/mnist`` beside the working directory is not the in-distribution set."""
    trap = tmp_path / "shared" / "data" / "mnist"
    test_only_t10k_folder(trap, n=30, side=28)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    info = {"data_config": {"data": "mnist5k", "split": "train"},
            "model_config": {"channels": 1, "image_size": [28, 28], "data_kind": "binary"}}
    ds = in_distribution(info, "auto", "test", n=10)
    assert ds.protocol["source"] == "mnist5k" and ds.protocol["split"] == "test"
    assert "held out" in ds.protocol["chosen_because"]
    assert "shared" not in json.dumps(ds.protocol)


def test_outliers_first_line_names_the_in_distribution_data(tmp_path, tiny_vae_run, capsys):
    out = tmp_path / "o"
    assert main(["outliers", str(tiny_vae_run), "--ood", "noise", "--n", "20",
                 "--background", "none", "--out", str(out)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("in-distribution: digits split test: held out from the run's "
                            "training split (digits split train)"), first
