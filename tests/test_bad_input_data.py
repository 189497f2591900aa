"""Bad-input corpus, data side (issue 16): crafted CIFAR pickles, IDX headers, evaluating
or scoring a run on the images it trained on, and outlier options.

Every case asserts the whole refusal contract of :mod:`bad_input` (exit 2, one line, no
traceback, nothing pre-existing changed, nothing written). The pickles are written here
with the pickle protocol itself (``__reduce__``), exactly as an attacker would.
"""

from __future__ import annotations

import json
import pickle
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from bad_input import Case, check_refusal

MNIST_DIR = Path(__file__).resolve().parents[2] / "shared/data/mnist"
TINY = ["--latent-dim", "4", "--hidden", "8", "16", "--fc-dim", "32", "--ar-layers", "1",
        "--ar-channels", "4", "--batch-size", "16", "--no-progress"]
#: numpy's own array-rebuilding global, whatever its module is called in this NumPy
RECONSTRUCT = np.zeros(1).__reduce__()[0]


class Reduce:
    """Pickles as the call ``__reduce__`` returns: how a crafted pickle names globals."""

    def __init__(self, *reduce: object) -> None:
        self.reduce = reduce

    def __reduce__(self):
        return self.reduce


def good_batch(n: int = 4, **override: object) -> dict:
    rng = np.random.default_rng(0)
    d = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
         b"labels": [int(v) for v in rng.integers(0, 10, n)]}
    d.update({k.encode(): v for k, v in override.items()})
    return d


def cifar_folder(folder: Path, test_batch: object = None, meta: object = None,
                 raw: bytes | None = None) -> Path:
    """A cifar-10-batches-py folder whose test_batch (and batches.meta) the case chooses."""
    cifar = folder / "cifar"
    cifar.mkdir()
    for i in range(1, 6):
        (cifar / f"data_batch_{i}").write_bytes(pickle.dumps(good_batch(), protocol=4))
    body = raw if raw is not None else pickle.dumps(
        good_batch() if test_batch is None else test_batch, protocol=4)
    (cifar / "test_batch").write_bytes(body)
    names = {b"label_names": [f"c{i}".encode() for i in range(10)]} if meta is None else meta
    (cifar / "batches.meta").write_bytes(pickle.dumps(names, protocol=4))
    return cifar


def train_on(folder: Path, data: str, split: str = "test") -> list[object]:
    return ["train", "vae", "--data", data, "--split", split, "--steps", "1", "--out",
            folder / "run", *TINY]


def cifar_case(name: str, words: tuple[str, ...], **kw: object) -> Case:
    return Case(name, lambda f: train_on(f, f"cifar:{cifar_folder(f, **kw)}"), words)


#: an object-dtype array state of 10**11 elements: NumPy's __setstate__ allocates 800 GB
#: for it before reading the (empty) list
HUGE_OBJECT_ARRAY = Reduce(RECONSTRUCT, (np.ndarray, (0,), b"b"),
                           (1, (10**11,), np.dtype(object), False, []))

CIFAR_CASES = [
    cifar_case("cifar array state asking for 800 GB", ("test_batch", "array dtype"),
               test_batch={b"data": HUGE_OBJECT_ARRAY, b"labels": []}),
    cifar_case("cifar uint8 array whose shape exceeds the file", ("test_batch", "bytes"),
               test_batch={b"data": Reduce(RECONSTRUCT, (np.ndarray, (0,), b"b"),
                                           (1, (10**6, 3072), np.dtype(np.uint8), False,
                                            b"\0" * 3072)), b"labels": [0]}),
    cifar_case("cifar ndarray(shape) called directly", ("test_batch", "ndarray"),
               test_batch={b"data": Reduce(np.ndarray, ((10**11,),)), b"labels": []}),
    cifar_case("cifar _reconstruct with a huge shape", ("test_batch",),
               test_batch={b"data": Reduce(RECONSTRUCT, (np.ndarray, (10**11,), b"b")),
                           b"labels": []}),
    # PROTO 2, EMPTY_DICT, LONG_BINPUT 10**6, STOP: CPython sizes its memo table by the index
    cifar_case("cifar memo index far out of order", ("test_batch", "memo"),
               raw=b"\x80\x02}r" + struct.pack("<I", 10**6) + b"."),
    cifar_case("cifar batch that is a list", ("test_batch", "dict"), test_batch=[1, 2]),
    cifar_case("cifar string labels", ("test_batch", "label", "integer"),
               test_batch=good_batch(labels=[b"cat", b"dog", b"cat", b"dog"])),
    cifar_case("cifar float labels", ("test_batch", "label", "integer"),
               test_batch=good_batch(labels=[1.0, 2.0, 3.0, 4.0])),
    cifar_case("cifar labels a string", ("test_batch", "labels"),
               test_batch=good_batch(labels="0123")),
    cifar_case("cifar label beyond label_names", ("batches.meta", "label 12"),
               test_batch=good_batch(labels=[0, 1, 12, 3])),
    cifar_case("cifar meta not a dict", ("batches.meta", "dict"), meta=["airplane"]),
    cifar_case("cifar label_names not a list", ("batches.meta", "label_names"),
               meta={b"label_names": 7}),
    cifar_case("cifar label_names not strings", ("batches.meta", "label_names"),
               meta={b"label_names": [1, 2, 3]}),
]


def idx_images(path: Path, dims: tuple[int, ...], payload: bytes) -> Path:
    path.write_bytes(struct.pack(">I", 0x0800 | len(dims)) + struct.pack(f">{len(dims)}I", *dims)
                     + payload)
    return path


IDX_CASES = [
    # 2**22 * 2**21 * 2**21 = 2**64: an int64 product wraps to 0 and the empty file "fits"
    Case("idx header whose int64 size product wraps to zero",
         lambda f: train_on(f, "idx:" + str(idx_images(f / "x-images-idx3-ubyte",
                                                       (2**22, 2**21, 2**21), b"")), "all"),
         ("header", "needs 18446744073709551632 bytes")),
]


@pytest.mark.parametrize("case", CIFAR_CASES + IDX_CASES, ids=str)
def test_bad_data_file_is_refused_in_one_line(case, tmp_path, capsys):
    check_refusal(case, tmp_path, capsys)


@pytest.mark.skipif(not MNIST_DIR.is_dir(), reason="official MNIST test split not present")
def test_training_on_the_official_mnist_test_split_is_refused(tmp_path, capsys):
    case = Case("train on the official MNIST test folder",
                lambda f: train_on(f, f"idx:{MNIST_DIR}", "train"),
                ("official MNIST test split", "testing only"))
    check_refusal(case, tmp_path, capsys)


# ----- runs scored on the images they trained on ---------------------------------------------
def trained_on(folder: Path, tiny_vae_run: Path, split: str) -> Path:
    """A copy of the tiny digits run whose run.json says it trained on ``split``."""
    run = folder / "run"
    shutil.copytree(tiny_vae_run, run, symlinks=True)
    info = json.loads((run / "run.json").read_text())
    info["data_config"]["split"] = split
    (run / "run.json").write_text(json.dumps(info))
    return run


RUN_CASES = {
    "evaluate a run trained on split all (default --split test)": (
        "all", lambda run: ["evaluate", run, "--metrics", "nll", "--n", "8"],
        ("holds images", "trained on split all", "--split test")),
    "evaluate a run trained on split test (default --split test)": (
        "test", lambda run: ["evaluate", run, "--metrics", "nll", "--n", "8"],
        ("holds images", "--data")),
    "evaluate a run trained on all with --data spelled as its own source": (
        "all", lambda run: ["evaluate", run, "--data", "digits", "--metrics", "nll"],
        ("holds images",)),
    "outliers --in-data auto on a run trained on all": (
        "all", lambda run: ["outliers", run, "--ood", "noise", "--n", "20",
                            "--background", "none"], ("--in-data", "held-out")),
    "outliers --typicality-m larger than --n": (
        "train", lambda run: ["outliers", run, "--ood", "noise", "--n", "20",
                              "--typicality-m", "50", "--background", "none"],
        ("--typicality-m 50", "--n 20")),
    # --n 200 but the digits' test split holds only 179 images
    "outliers --typicality-m larger than the in-distribution set": (
        "train", lambda run: ["outliers", run, "--ood", "noise", "--n", "200",
                              "--typicality-m", "190", "--background", "none"],
        ("--typicality-m 190", "179 images")),
}


@pytest.mark.parametrize("name", sorted(RUN_CASES))
def test_scoring_training_images_is_refused(name, tmp_path, capsys, tiny_vae_run):
    split, argv, words = RUN_CASES[name]
    case = Case(name, lambda f: argv(trained_on(f, tiny_vae_run, split)), words)
    check_refusal(case, tmp_path, capsys)
