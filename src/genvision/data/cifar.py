"""CIFAR-10 "python version" batches, read WITHOUT trusting pickle.

The official batches (https://www.cs.toronto.edu/~kriz/cifar.html) are Python pickles, read
with :func:`genvision.data.safe_pickle.safe_unpickle`: no code runs and no array is
allocated before its size has been checked against the bytes in the file. Everything the
batches hold is then checked here (uint8 ``data`` [N, 3072], N integer ``labels``, a meta
dict whose ``label_names`` are strings), so a damaged file is one line naming it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from .base import MAX_CLASSES, ImageSet, carve_val, check_split, from_numpy
from .safe_pickle import RestrictedUnpickler, safe_unpickle

__all__ = ["META", "TEST_BATCH", "TRAIN_BATCHES", "RestrictedUnpickler", "load_cifar",
           "read_batch", "safe_unpickle"]

TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"
_FIX_BATCH = "use the CIFAR-10 python-version batches; download them again"


def _get(d: dict, key: str):
    return d.get(key.encode(), d.get(key))


def _labels(path: Path, labels: object, n: int) -> np.ndarray:
    """The batch's labels as int64 [n] in 0..MAX_CLASSES-1, or a DataError naming the file."""
    if isinstance(labels, np.ndarray):
        ok = labels.ndim == 1 and labels.dtype.kind in "iu"
        values = labels.tolist() if ok else []
    else:
        ok = isinstance(labels, list | tuple)
        values = list(labels) if ok else []
    if not ok:
        raise DataError(f"{path}: 'labels' must be a list of integers, got "
                        f"{type(labels).__name__}", _FIX_BATCH)
    if len(values) != n:
        raise DataError(f"{path}: {len(values)} labels for {n} images",
                        "the batch is corrupt; download it again")
    bad = next((v for v in values if type(v) is not int or not 0 <= v < MAX_CLASSES), None)
    if bad is not None:
        raise DataError(f"{path}: label {bad!r} is not an integer class 0..{MAX_CLASSES - 1}",
                        _FIX_BATCH)
    return np.asarray(values, dtype=np.int64)


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch -> (uint8 [N, 3, 32, 32], int64 [N])."""
    if not path.is_file():
        raise DataError(f"CIFAR batch {path} is missing",
                        "point cifar: at the extracted cifar-10-batches-py folder")
    d = safe_unpickle(path)
    if not isinstance(d, dict):
        raise DataError(f"{path}: a CIFAR batch is a dict, this file holds a "
                        f"{type(d).__name__}", _FIX_BATCH)
    data, labels = _get(d, "data"), _get(d, "labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3072:
        got = f"{data.dtype} {list(data.shape)}" if isinstance(data, np.ndarray) else \
            type(data).__name__
        raise DataError(f"{path}: 'data' must be uint8 [N, 3072], got {got}", _FIX_BATCH)
    if labels is None:
        raise DataError(f"{path}: no labels for {len(data)} images",
                        "the batch is corrupt; download it again")
    return data.reshape(-1, 3, 32, 32), _labels(path, labels, len(data))


def _class_names(folder: Path) -> list[str] | None:
    """``label_names`` of ``batches.meta`` (None without the file); refuses a malformed one."""
    meta = folder / META
    if not meta.is_file():
        return None
    d = safe_unpickle(meta, "CIFAR meta file")
    if not isinstance(d, dict):
        raise DataError(f"{meta}: the CIFAR meta file is a dict, this one holds a "
                        f"{type(d).__name__}", f"delete {meta.name} or download it again")
    names = _get(d, "label_names")
    if not isinstance(names, list | tuple) or not names or not all(
            isinstance(n, str | bytes) for n in names) or len(names) > MAX_CLASSES:
        got = type(names).__name__ if not isinstance(names, list | tuple) else \
            f"{len(names)} entries of types {sorted({type(n).__name__ for n in names})}"
        raise DataError(f"{meta}: 'label_names' must be a list of class names (strings), "
                        f"got {got}", f"delete {meta.name} or download it again")
    try:
        return [n.decode() if isinstance(n, bytes) else n for n in names]
    except UnicodeDecodeError:
        raise DataError(f"{meta}: 'label_names' are not UTF-8 text",
                        f"delete {meta.name} or download it again") from None


def _read_many(folder: Path, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    parts = [read_batch(folder / n) for n in names]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def load_cifar(path: str, split: str, split_seed: int = 0, source: str | None = None) -> ImageSet:
    """Load ``cifar:DIR`` (``data_batch_1..5``, ``test_batch``, optional ``batches.meta``).

    ``train``/``val`` read the training batches (val = a seeded 10% of them), ``test`` the
    test batch, ``all`` training then test.

    Returns:
        ImageSet with uint8 [N, 3, 32, 32] and int64 labels 0..9.
    """
    check_split(split)
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise DataError(f"cifar source {folder} is not a folder",
                        "point cifar: at the extracted cifar-10-batches-py folder")
    if split == "test":
        x, y = read_batch(folder / TEST_BATCH)
    else:
        x, y = _read_many(folder, TRAIN_BATCHES)
        if split == "all":
            xt, yt = read_batch(folder / TEST_BATCH)
            x, y = np.concatenate([x, xt]), np.concatenate([y, yt])
        else:
            idx = carve_val(len(x), split, split_seed)
            x, y = x[idx], y[idx]
    names = _class_names(folder)
    if names is not None and len(y) and int(y.max()) >= len(names):
        raise DataError(f"{folder}: label {int(y.max())} but {folder / META} names only "
                        f"{len(names)} classes", f"delete {META} or download it again")
    return from_numpy(x, y, source or f"cifar:{path}", split, names)
