"""MNIST-style IDX files (http://yann.lecun.com/exdb/mnist/), raw or gzip, parsed with NumPy.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian uint32 per dimension, then the payload. We read only unsigned
byte files: magic 2051 (0x0803: 3-D images) and 2049 (0x0801: 1-D labels). The payload
length is checked against the header, so a truncated download fails loudly here rather
than as garbage pixels later.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError
from .base import ImageSet, carve_val, check_split, from_numpy, split_indices

IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
_FIX_REDOWNLOAD = "the file is corrupt or truncated; download it again"


def read_idx(path: Path, expect_magic: int) -> np.ndarray:
    """Read one IDX file of unsigned bytes.

    Args:
        path: the file, gzip-compressed or raw (detected from its first bytes).
        expect_magic: :data:`IMAGES_MAGIC` or :data:`LABELS_MAGIC`.

    Returns:
        uint8 [N, H, W] for images, [N] for labels.
    """
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{path} is not a readable gzip file ({exc})",
                            _FIX_REDOWNLOAD) from None
    if len(raw) < 4:
        raise DataError(f"{path} is too short to be an IDX file ({len(raw)} bytes)",
                        _FIX_REDOWNLOAD)
    magic = int.from_bytes(raw[:4], "big")
    if magic != expect_magic:
        kind = "images" if expect_magic == IMAGES_MAGIC else "labels"
        raise DataError(f"{path} is not an IDX {kind} file (magic {magic}, expected "
                        f"{expect_magic})", f"point idx: at MNIST-style {kind} files")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: header truncated ({len(raw)} of {header} bytes)",
                        _FIX_REDOWNLOAD)
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(raw) != expected:
        raise DataError(f"{path}: header {list(dims)} needs {expected} bytes, file has "
                        f"{len(raw)} (uncompressed)", _FIX_REDOWNLOAD)
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _candidates(folder: Path, prefix: str, kind: str) -> list[Path]:
    """Standard names (``-idx3-`` and the ``.idx3-`` variant of some mirrors), raw or gz."""
    tag = "idx3" if kind == "images" else "idx1"
    stems = [f"{prefix}-{kind}-{tag}-ubyte", f"{prefix}-{kind}.{tag}-ubyte"]
    return [folder / (s + ext) for s in stems for ext in ("", ".gz")]


def _find(folder: Path, prefix: str, kind: str) -> Path | None:
    return next((p for p in _candidates(folder, prefix, kind) if p.is_file()), None)


def _read_pair(images: Path, labels: Path | None) -> tuple[np.ndarray, np.ndarray | None]:
    x = read_idx(images, IMAGES_MAGIC)
    if x.ndim != 3:
        raise DataError(f"{images}: expected [N, H, W] images, header gives {list(x.shape)}",
                        "point idx: at a 3-D images file")
    if labels is None:
        return x[:, None], None
    y = read_idx(labels, LABELS_MAGIC)
    if y.shape != (len(x),):
        raise DataError(f"{labels} holds {y.size} labels but {images} holds {len(x)} images",
                        "use the labels file that belongs to these images")
    return x[:, None], y


def _load_prefix(folder: Path, prefix: str) -> tuple[np.ndarray, np.ndarray | None]:
    images = _find(folder, prefix, "images")
    if images is None:
        names = ", ".join(p.name for p in _candidates(folder, prefix, "images")[::2])
        split = "train/val" if prefix == "train" else "test"
        raise DataError(f"no {prefix} images in {folder} (looked for {names}[.gz])",
                        f"add the {prefix} files for split {split}, or use a split whose "
                        f"files are there")
    return _read_pair(images, _find(folder, prefix, "labels"))


#: where the shared benchmark protocol keeps the official MNIST test files, relative to the
#: repository checkout (the tasks use it when present; nothing requires it)
OFFICIAL_MNIST_TEST = Path("..") / "shared" / "data" / "mnist"


def has_idx_test_split(folder: Path) -> bool:
    """Whether ``folder`` holds an IDX test split (``t10k-images*``, as MNIST ships it)."""
    return folder.is_dir() and any(folder.glob("t10k-images*"))


def load_idx(path: str, split: str, split_seed: int = 0, source: str | None = None) -> ImageSet:
    """Load ``idx:PATH``.

    Args:
        path: a directory with standard MNIST names (split ``train``/``val`` read the train
            files, val being a seeded 10% of them; ``test`` the t10k files; ``all`` both),
            or one images file (labels optional, found by replacing ``images-idx3`` with
            ``labels-idx1``), split 80/10/10 with ``split_seed``.
        split: ``train`` | ``val`` | ``test`` | ``all``.
        split_seed: seed of the val carve-out / 80/10/10 split.
        source: spec recorded in the result (default ``idx:PATH``).

    Returns:
        ImageSet with uint8 [N, 1, H, W] and int64 labels when a labels file exists.
    """
    check_split(split)
    p = Path(path).expanduser()
    source = source or f"idx:{path}"
    names = [str(i) for i in range(10)]
    if p.is_file():
        lab = p.with_name(p.name.replace("images-idx3", "labels-idx1").replace(
            "images.idx3", "labels.idx1"))
        x, y = _read_pair(p, lab if lab != p and lab.is_file() else None)
        idx = split_indices(len(x), split, split_seed)
    elif p.is_dir():
        if split == "test":
            x, y = _load_prefix(p, "t10k")
        else:
            x, y = _load_prefix(p, "train")
        if split in ("train", "val"):
            idx = carve_val(len(x), split, split_seed)
        else:
            idx = np.arange(len(x))
        if split == "all":
            xt, yt = _load_prefix(p, "t10k")
            if (y is None) != (yt is None):
                raise DataError(f"{p}: only one of the train/t10k pairs has a labels file",
                                "add the missing labels file or remove the other")
            x = np.concatenate([x, xt])
            y = None if y is None else np.concatenate([y, yt])
            idx = np.arange(len(x))
    else:
        raise DataError(f"idx source {p} does not exist",
                        "give a folder of MNIST-style files or one images file")
    if y is not None and y.size and int(y.max()) >= 10:
        names = [str(i) for i in range(int(y.max()) + 1)]
    return from_numpy(x[idx], None if y is None else y[idx], source, split,
                      names if y is not None else None)
