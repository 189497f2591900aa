"""MNIST-style IDX files (http://yann.lecun.com/exdb/mnist/), raw or gzip, parsed with NumPy.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian uint32 per dimension, then the payload. We read only unsigned
byte files: magic 2051 (0x0803: 3-D images) and 2049 (0x0801: 1-D labels). The payload
length is checked against the header, so a truncated download fails loudly here rather
than as garbage pixels later.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError
from .base import ImageSet, carve_val, check_split, from_numpy, split_indices

IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
#: SHA-256 of the official MNIST test split's content (the uint8 pixels [10000, 28, 28] and
#: labels [10000] in file order, i.e. the IDX payloads after their headers), so a copy is
#: recognised whatever its compression or folder (MD5 of the raw IDX files: 2646ac64...
#: images, 27ae3e4e... labels, as published with the dataset)
MNIST_TEST_CONTENT_SHA256 = {
    "images": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "labels": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5"}
MNIST_TEST_SHAPE = (10_000, 28, 28)
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
    # Python ints: NumPy's int64 product wraps (2**22 * 2**21 * 2**21 == 0), which let a
    # header that asks for 2**64 bytes pass as an empty file
    expected = header + math.prod(dims)
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
        fix = ("add the train files" if prefix == "train" else
               "add the t10k files, or score the held-out split val (a seeded 10% of the "
               "train files that split train leaves out)")
        raise DataError(f"no {prefix} images in {folder} (looked for {names}[.gz])", fix)
    return _read_pair(images, _find(folder, prefix, "labels"))


#: where the shared benchmark protocol keeps the official MNIST test files, relative to the
#: repository checkout. Only apps/latent_features still looks there; classify and outliers
#: use :func:`genvision.data.download.cached_mnist_test` and never a working-directory path.
OFFICIAL_MNIST_TEST = Path("..") / "shared" / "data" / "mnist"


def has_idx_test_split(folder: Path) -> bool:
    """Whether ``folder`` holds an IDX test split (``t10k-images*``, as MNIST ships it)."""
    return folder.is_dir() and _find(folder, "t10k", "images") is not None


def _is_mnist_test_arrays(x: np.ndarray, y: np.ndarray | None) -> bool:
    """Whether uint8 images [N, (1,) 28, 28] and labels [N] are the official MNIST test
    split, by content hash (cheap shape check first)."""
    if y is None or x.size != math.prod(MNIST_TEST_SHAPE) or len(x) != MNIST_TEST_SHAPE[0]:
        return False
    pixels = hashlib.sha256(np.ascontiguousarray(x, dtype=np.uint8).tobytes()).hexdigest()
    labels = hashlib.sha256(np.asarray(y, dtype=np.uint8).tobytes()).hexdigest()
    return (pixels, labels) == (MNIST_TEST_CONTENT_SHA256["images"],
                                MNIST_TEST_CONTENT_SHA256["labels"])


def is_mnist_test(ds: ImageSet) -> bool:
    """Whether ``ds`` holds exactly the official MNIST test split (pixels and labels in file
    order), checked by content, so a user's own ``idx:`` folder is never called official."""
    if ds.y is None or ds.shape != (1, 28, 28):
        return False
    return _is_mnist_test_arrays(ds.x.numpy(), ds.y.numpy())


def is_test_only_folder(folder: Path) -> bool:
    """A folder with ``t10k-*`` images and no ``train-*`` images: one source, split by seed."""
    return has_idx_test_split(folder) and _find(folder, "train", "images") is None


def _folder_split(p: Path, split: str, split_seed: int, official: bool
                  ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """(images, labels, indices of ``split``) of a folder of MNIST-named files
    (``official``: a download's folder, whose t10k files are always its test split)."""
    if not official and is_test_only_folder(p):
        x, y = _load_prefix(p, "t10k")
        if _is_mnist_test_arrays(x, y):
            # the official MNIST test split is a test set as published (the benchmark
            # protocol scores all 10,000): never carved into training images
            if split in ("train", "val"):
                raise DataError(f"{p} holds the official MNIST test split, which is for "
                                f"testing only (split {split} would train on it)",
                                "train on mnist or mnist5k and score on this folder with "
                                "split test")
            return x, y, np.arange(len(x))
        # a user's test-only folder is ONE source: its own seeded 80/10/10 split, so
        # train, val and test never share an image (as for a single images file)
        return x, y, split_indices(len(x), split, split_seed)
    x, y = _load_prefix(p, "t10k" if split == "test" else "train")
    if split in ("train", "val"):
        return x, y, carve_val(len(x), split, split_seed)
    if split == "all":
        xt, yt = _load_prefix(p, "t10k")
        if (y is None) != (yt is None):
            raise DataError(f"{p}: only one of the train/t10k pairs has a labels file",
                            "add the missing labels file or remove the other")
        x = np.concatenate([x, xt])
        y = None if y is None else np.concatenate([y, yt])
    return x, y, np.arange(len(x))


def load_idx(path: str, split: str, split_seed: int = 0, source: str | None = None,
             official_split: bool = False) -> ImageSet:
    """Load ``idx:PATH``.

    Args:
        path: a directory with standard MNIST names (split ``train``/``val`` read the train
            files, val being a seeded 10% of them; ``test`` the t10k files; ``all`` both),
            or one images file (labels optional, found by replacing ``images-idx3`` with
            ``labels-idx1``), split 80/10/10 with ``split_seed``. A directory that holds
            only ``t10k-*`` files is one source split 80/10/10 the same way.
        split: ``train`` | ``val`` | ``test`` | ``all``.
        split_seed: seed of the val carve-out / 80/10/10 split.
        source: spec recorded in the result (default ``idx:PATH``).
        official_split: the folder is a download with an official train/test split (it
            may hold only the files one split needed): never the test-only layout.

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
        x, y, idx = _folder_split(p, split, split_seed, official_split)
    else:
        raise DataError(f"idx source {p} does not exist",
                        "give a folder of MNIST-style files or one images file")
    if y is not None and y.size and int(y.max()) >= 10:
        names = [str(i) for i in range(int(y.max()) + 1)]
    return from_numpy(x[idx], None if y is None else y[idx], source, split,
                      names if y is not None else None)
