"""The decoded cache: a folder of image files decoded once into a uint8 ``.npy`` on disk.

Decoding 200,000 PNGs takes minutes; reading their pixels back from one flat file takes
seconds. :func:`decoded_folder` decodes a ``folder:`` source once per content and
preprocessing into ``<cache root>/decoded/<key>/``:

* ``x.npy``: uint8 [N, C, H, W], every readable image of the folder in file order (all
  splits: a split is an index set into it, so one decode serves train, val and test);
* ``y.npy``: int64 [N] labels (class sub-folders only);
* ``meta.json``: shape, class names, the unreadable files and why.

The key is a SHA-256 of the folder's path, the sorted relative paths, sizes and
modification times of its files, and the preprocessing (image size, grey conversion), so
an edited, added or removed file gives a new key and the next run decodes again. The
cache is built in a temporary folder and renamed into place (a crash leaves no half
cache), under a file lock so DDP ranks and concurrent runs decode once and the others
wait. Before use, the file sizes and the ``.npy`` header are checked against
``meta.json``; a damaged entry is decoded again, never trusted (a flipped bit inside the
pixels is not detected: that would mean hashing gigabytes on every start).

Pixels are written with plain file writes (not a writable memory map) so decoding keeps
only one image in memory: dirty pages of a mapped file would count towards the process's
resident memory until the kernel writes them back.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from ..progress import progress_bar
from .download import cache_root

try:  # POSIX; elsewhere concurrent builders each build and the first rename wins
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

#: bumped whenever the layout or the decoding changes, so old entries are never reused
FORMAT = 1
#: fixed size of the ``.npy`` header, so the final image count can be written in place
#: after decoding (bad files are only known then); a multiple of 64 as NumPy recommends
HEADER_BYTES = 256
#: folders with fewer files decode in about a second: no progress output for them
PROGRESS_MIN = 1000
#: rows copied at once when dropping the two redundant channels of an all-grey folder
_CHUNK_ROWS = 4096


@dataclass
class Decoded:
    """A finished cache entry.

    Attributes:
        path: the entry's folder.
        shape: (N, C, H, W) of ``x.npy``.
        labels: int64 [N] or None.
        class_names: class sub-folder names, or None.
        bad: ``[relative path, reason]`` of every file that could not be read.
        files: how many image files the folder listed (readable or not).
    """

    path: Path
    shape: tuple[int, int, int, int]
    labels: np.ndarray | None
    class_names: list[str] | None
    bad: list[list[str]]
    files: int

    @property
    def x_path(self) -> Path:
        return self.path / "x.npy"


def folder_key(folder: Path, files: list[Path], settings: dict[str, Any]) -> str:
    """SHA-256 (hex, 32 chars) of the folder's absolute path, the sorted relative paths,
    sizes and modification times of ``files``, and ``settings`` (the preprocessing).

    The path is part of it because sizes and times alone can coincide for different
    data (archives unpacked with fixed times, fixed-size formats such as BMP).
    """
    h = hashlib.sha256(json.dumps({"format": FORMAT, "folder": str(folder.resolve()),
                                   **settings}, sort_keys=True).encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(folder).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n"
                 .encode())
    return h.hexdigest()[:32]


def npy_header(shape: tuple[int, ...]) -> bytes:
    """A version-1.0 ``.npy`` header for C-order uint8 ``shape``, padded to HEADER_BYTES."""
    text = repr({"descr": "|u1", "fortran_order": False,
                 "shape": tuple(int(s) for s in shape)})
    body = HEADER_BYTES - 10
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", body) + (text.ljust(body - 1) + "\n"
                                                             ).encode("latin1")


def read_header(path: Path) -> tuple[tuple[int, ...], int]:
    """(shape, data offset) of a uint8 C-order ``.npy``; ValueError if it is anything else."""
    with open(path, "rb") as fh:
        if np.lib.format.read_magic(fh) != (1, 0):
            raise ValueError(f"{path} is not a version-1.0 .npy file")
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        if fortran or dtype != np.uint8:
            raise ValueError(f"{path} is not a C-order uint8 array")
        return tuple(shape), fh.tell()


def _check_entry(path: Path) -> Decoded | None:
    """The entry at ``path`` if every file is whole and consistent, else None."""
    try:
        meta = json.loads((path / "meta.json").read_text())
        shape = tuple(int(s) for s in meta["shape"])
        x_path = path / "x.npy"
        got, offset = read_header(x_path)
        if (meta.get("format") != FORMAT or got != shape or offset != HEADER_BYTES
                or x_path.stat().st_size != HEADER_BYTES + int(np.prod(shape))):
            return None
        labels = None
        if meta["labelled"]:
            labels = np.load(path / "y.npy", allow_pickle=False)
            if labels.shape != (shape[0],) or labels.dtype != np.int64:
                return None
        return Decoded(path, shape, labels, meta["class_names"], meta["bad"], meta["files"])
    except (OSError, ValueError, KeyError, TypeError, EOFError):
        return None


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` (other builders of the same key wait)."""
    with open(lock_path, "a+b") as fh:
        if fcntl is not None:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def progress(items: list[Path], label: str) -> Iterable[Path]:
    """``items`` with a progress bar on a terminal, or plain lines at every tenth and every
    few seconds otherwise (logs of batch jobs); silent for fewer than PROGRESS_MIN items."""
    if len(items) < PROGRESS_MIN:
        return items
    return progress_bar(items, desc=label, unit="image", mininterval=0.5)


def _decode(tmp: Path, folder: Path, files: list[Path], labels: np.ndarray | None,
            read: Callable[[Path], np.ndarray], label: str) -> dict[str, Any]:
    """Decode ``files`` into ``tmp/x.npy`` (+ ``y.npy``); returns the meta dict.

    ``read(path) -> uint8 [H, W, 3]`` raises DataError for an unreadable file, which is
    recorded and skipped here (the caller decides whether skipping is allowed).
    """
    x_path = tmp / "x.npy"
    good: list[int] = []
    bad: list[list[str]] = []
    hw: tuple[int, int] | None = None
    first = ""
    grey = True
    with open(x_path, "wb") as fh:
        fh.write(npy_header((len(files), 3, 1, 1)))  # rewritten once N is known
        for i, f in enumerate(progress(files, label)):
            rel = f.relative_to(folder).as_posix()
            try:
                im = read(f)
            except DataError as err:
                bad.append([rel, err.problem])
                continue
            if hw is None:
                hw, first = im.shape[:2], rel
            elif im.shape[:2] != hw:
                raise DataError(f"images in {folder} have at least 2 different sizes "
                                f"(e.g. {tuple(hw)} in {first} and {tuple(im.shape[:2])} "
                                f"in {rel})", "pass --image-size N to resize them to N x N")
            grey = grey and bool((im[..., 0] == im[..., 1]).all()
                                 and (im[..., 1] == im[..., 2]).all())
            fh.write(np.ascontiguousarray(im.transpose(2, 0, 1)).tobytes())
            good.append(i)
        h, w = hw if hw is not None else (1, 1)
        shape = (len(good), 3, h, w)
        fh.seek(0)
        fh.write(npy_header(shape))
        fh.flush()
        os.fsync(fh.fileno())
    if grey and good:
        shape = _drop_channels(x_path, shape)
    if labels is not None:
        np.save(tmp / "y.npy", labels[np.asarray(good, dtype=np.int64)].astype(np.int64))
    return {"format": FORMAT, "shape": list(shape), "labelled": labels is not None,
            "bad": bad, "files": len(files)}


def _drop_channels(x_path: Path, shape: tuple[int, int, int, int]) -> tuple[int, ...]:
    """Rewrite an all-grey [N, 3, H, W] ``x.npy`` as [N, 1, H, W], a chunk at a time."""
    n, _, h, w = shape
    out_shape = (n, 1, h, w)
    tmp = x_path.with_name("x1.npy")
    with open(x_path, "rb") as src, open(tmp, "wb") as dst:
        dst.write(npy_header(out_shape))
        for lo in range(0, n, _CHUNK_ROWS):
            k = min(_CHUNK_ROWS, n - lo)
            src.seek(HEADER_BYTES + lo * 3 * h * w)
            rows = np.frombuffer(src.read(k * 3 * h * w), np.uint8).reshape(k, 3, h, w)
            dst.write(np.ascontiguousarray(rows[:, :1]).tobytes())
        dst.flush()
        os.fsync(dst.fileno())
    os.replace(tmp, x_path)
    return out_shape


def decoded_folder(folder: Path, files: list[Path], labels: np.ndarray | None,
                   class_names: list[str] | None, read: Callable[[Path], np.ndarray],
                   settings: dict[str, Any], cache_dir: str | os.PathLike | None = None
                   ) -> Decoded:
    """The cache entry of ``files`` under ``settings``: reused when whole, else decoded.

    Args:
        folder: the ``folder:`` root (paths in the key and in ``bad`` are relative to it).
        files: the image files in label order, [N_files].
        labels: int64 [N_files] or None.
        class_names: recorded with the entry.
        read: ``path -> uint8 [H, W, 3]`` (already resized / grey-converted), raising
            DataError for a file it cannot read.
        settings: the preprocessing, part of the key (e.g. image size, grayscale).
        cache_dir: cache root (default ``$GENVISION_CACHE`` or ``~/.cache/genvision``).

    Returns:
        :class:`Decoded` (images of unreadable files are left out and listed in ``bad``).
    """
    base = cache_root(cache_dir) / "decoded"
    key = folder_key(folder, files, settings)
    final = base / key
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the decoded-image cache {base} ({exc.strerror})",
                        "set GENVISION_CACHE to a writable folder") from None
    entry = _check_entry(final)
    if entry is not None:
        return entry
    with _locked(base / f"{key}.lock"):
        entry = _check_entry(final)  # another process may have built it while we waited
        if entry is not None:
            return entry
        if final.exists():
            print(f"the decoded cache {final} is damaged; decoding {folder} again",
                  file=sys.stderr)
            shutil.rmtree(final, ignore_errors=True)
        for stale in base.glob(f"{key}.tmp-*"):  # a crashed build's leftovers (we hold the lock)
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{key}.tmp-", dir=base))
        try:
            meta = _decode(tmp, folder, files, labels, read, f"decoding {folder.name}")
            meta["class_names"] = class_names
            meta["settings"] = settings
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
            try:
                os.rename(tmp, final)
            except OSError:  # without file locks another builder may have won the race
                if _check_entry(final) is None:
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    entry = _check_entry(final)
    if entry is None:  # pragma: no cover - the disk changed under us
        raise DataError(f"the decoded cache {final} could not be read back",
                        f"delete {final} and run again")
    return entry
