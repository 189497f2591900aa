"""CIFAR-10 "python version" batches, read WITHOUT trusting pickle.

The official batches (https://www.cs.toronto.edu/~kriz/cifar.html) are Python pickles,
and ``pickle.load`` on a file from the internet runs whatever code the file names. We use
a restricted unpickler whose ``find_class`` allows exactly the three NumPy globals the real
batches need to rebuild their ``data`` array, and refuses every other global (``os.system``,
``builtins.eval``, ...). Dicts, lists, bytes, strings and numbers need no global at all.
"""

from __future__ import annotations

import importlib
import io
import pickle
from pathlib import Path

import numpy as np

from ..errors import DataError
from .base import ImageSet, carve_val, check_split, from_numpy

TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"


def _multiarray():
    # NumPy 2 moved numpy.core to numpy._core; old pickles still name numpy.core.
    try:
        return importlib.import_module("numpy._core.multiarray")
    except ImportError:  # NumPy < 2
        return importlib.import_module("numpy.core.multiarray")


_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): lambda: _multiarray()._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): lambda: _multiarray()._reconstruct,
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that can build plain containers and NumPy arrays, and nothing else."""

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]()
        raise pickle.UnpicklingError(f"refusing global {module}.{name}")


def safe_unpickle(path: Path) -> object:
    """Load a pickle with :class:`RestrictedUnpickler`; anything else is a DataError."""
    try:
        # encoding="bytes": the batches were written by Python 2, whose str must stay bytes
        # (their dict keys are b"data", b"labels").
        return RestrictedUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except pickle.UnpicklingError as exc:
        raise DataError(f"{path} is not a plain CIFAR batch: {exc}",
                        "only load CIFAR batches from a trusted download") from None
    except (EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError) as exc:
        raise DataError(f"{path} is not a readable CIFAR batch ({type(exc).__name__}: {exc})",
                        "the file is corrupt or truncated; download it again") from None


def _get(d: dict, key: str):
    return d.get(key.encode(), d.get(key))


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch -> (uint8 [N, 3, 32, 32], int64 [N])."""
    if not path.is_file():
        raise DataError(f"CIFAR batch {path} is missing",
                        "point cifar: at the extracted cifar-10-batches-py folder")
    d = safe_unpickle(path)
    data = _get(d, "data") if isinstance(d, dict) else None
    labels = _get(d, "labels") if isinstance(d, dict) else None
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3072:
        got = f"{data.dtype} {list(data.shape)}" if isinstance(data, np.ndarray) else type(data)
        raise DataError(f"{path}: 'data' must be uint8 [N, 3072], got {got}",
                        "use the CIFAR-10 python-version batches")
    if labels is None or len(labels) != len(data):
        n = "no" if labels is None else len(labels)
        raise DataError(f"{path}: {n} labels for {len(data)} images",
                        "the batch is corrupt; download it again")
    y = np.asarray(labels, dtype=np.int64)
    return data.reshape(-1, 3, 32, 32), y


def _class_names(folder: Path) -> list[str] | None:
    meta = folder / META
    if not meta.is_file():
        return None
    names = _get(safe_unpickle(meta), "label_names")
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names] if names else None


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
    return from_numpy(x, y, source or f"cifar:{path}", split, _class_names(folder))
