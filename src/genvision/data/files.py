"""User files: ``idx:PATH``, ``npz:FILE``, ``folder:DIR``, ``cifar:DIR``.

This module reads ``.npz`` arrays and folders of image files, and dispatches the IDX and
CIFAR prefixes to their readers (:mod:`.idx`, :mod:`.cifar`). Everything a user can get
wrong (missing file, bad shape, corrupt image) becomes a one-line :class:`DataError`.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import DataError
from .base import ImageSet, check_split, from_numpy, split_indices
from .cache import HEADER_BYTES, Decoded, decoded_folder
from .cifar import load_cifar
from .download import cache_root
from .idx import load_idx
from .stream import DiskImages, StreamedImageSet
from .transforms import resize_pad_array, to_grayscale

PREFIXES = ("idx:", "npz:", "folder:", "cifar:")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


# ----- npz ---------------------------------------------------------------------------------
def _npz_images(x: np.ndarray, path: Path) -> np.ndarray:
    """[N,H,W] / [N,H,W,C] / [N,C,H,W], uint8 or float in [0, 1] -> uint8 [N, C, H, W]."""
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[1] in (1, 3):
        pass  # already channels-first
    elif x.ndim == 4 and x.shape[3] in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    else:
        raise DataError(f"{path}: x has shape {list(x.shape)}, expected [N, H, W], "
                        f"[N, H, W, C] or [N, C, H, W] with C = 1 or 3",
                        "reshape x (drop any alpha channel) and save it again")
    if len(x) == 0:
        raise DataError(f"{path}: x holds no images", "save at least one image in x")
    if x.dtype == np.uint8:
        return x
    if x.dtype == np.bool_:
        return x.astype(np.uint8) * 255
    if np.issubdtype(x.dtype, np.floating):
        lo, hi = float(np.min(x)), float(np.max(x))
        if not (np.isfinite(lo) and np.isfinite(hi) and lo >= 0.0 and hi <= 1.0):
            raise DataError(f"{path}: float x must lie in [0, 1], found [{lo:g}, {hi:g}]",
                            "divide 8-bit pixels by 255, or save x as uint8")
        return np.rint(x * 255.0).astype(np.uint8)
    if np.issubdtype(x.dtype, np.integer) and x.min() >= 0 and x.max() <= 255:
        return x.astype(np.uint8)
    raise DataError(f"{path}: x has dtype {x.dtype} with values outside 0..255",
                    "save x as uint8 0..255 or float in [0, 1]")


def load_npz(path: str, split: str, split_seed: int = 0) -> ImageSet:
    """Load ``npz:FILE`` (array ``x``, optional integer ``y``), split 80/10/10 by seed.

    Returns:
        ImageSet with uint8 [N, C, H, W].
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"npz file {p} does not exist", "check the path after npz:")
    try:
        # allow_pickle=False: an .npz from elsewhere must never run code when opened.
        with np.load(p, allow_pickle=False) as f:
            if "x" not in f.files:
                raise DataError(f"{p} has no array 'x' (arrays: {', '.join(f.files) or 'none'})",
                                "save the images as x, e.g. np.savez(path, x=images, y=labels)")
            x = f["x"]
            y = f["y"] if "y" in f.files else None
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{p} is not a readable .npz file ({exc})",
                        "save it with np.savez; object arrays are not accepted") from None
    x = _npz_images(x, p)
    if y is not None:
        if y.ndim != 1 or len(y) != len(x):
            raise DataError(f"{p}: y has shape {list(y.shape)} but x holds {len(x)} images",
                            "save one integer label per image")
        if not np.issubdtype(y.dtype, np.integer) or (y.size and y.min() < 0):
            raise DataError(f"{p}: y must hold non-negative integers (got {y.dtype})",
                            "save labels as integers 0..K-1")
    idx = split_indices(len(x), split, split_seed)
    return from_numpy(x[idx], None if y is None else y[idx], f"npz:{path}", split)


# ----- folder ------------------------------------------------------------------------------
def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


#: PIL modes of one grey channel wider than 8 bits (16-bit PNG/TIFF, 32-bit int, float)
WIDE_GREY_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def to_8bit(im: Image.Image) -> Image.Image:
    """A wide grey image (:data:`WIDE_GREY_MODES`) as 8-bit ``L``, scaled, not clipped.

    PIL's own ``convert`` clips every value >= 256 to 255, which turns a 16-bit PNG white.
    A 16-bit file (or any image with a value above 255) is scaled from 0..65535 to 0..255;
    one whose values all fit in 0..255 (an 8-bit image saved wide) keeps them.
    """
    arr = np.asarray(im, dtype=np.float64)
    top = 65535.0 if im.mode.startswith("I;16") or arr.max() > 255 else 255.0
    return Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")


def image_rgb8(im: Image.Image) -> np.ndarray:
    """A loaded PIL image as uint8 RGB [H, W, 3]: alpha dropped, wide grey scaled to 8 bits."""
    if im.mode in WIDE_GREY_MODES:
        im = to_8bit(im)
    return np.asarray(im.convert("RGB"))


def _read_image(path: Path) -> np.ndarray:
    """One file -> uint8 [H, W, 3] (alpha dropped; first frame of a GIF; 16-bit scaled)."""
    try:
        with Image.open(path) as im:
            im.load()
            return image_rgb8(im)
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError,
            Image.DecompressionBombError) as exc:
        raise DataError(f"cannot read image {path} ({type(exc).__name__})",
                        "delete or replace the corrupt file") from None


def _listing(folder: Path) -> tuple[list[Path], np.ndarray | None, list[str] | None]:
    """Files, labels and class names; sub-folders with images are classes."""
    classes = sorted(d.name for d in folder.iterdir()
                     if d.is_dir() and not d.name.startswith(".") and _image_files(d))
    if not classes:
        return _image_files(folder), None, None
    loose = [p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower()
             in IMAGE_EXTENSIONS]
    if loose:
        raise DataError(f"{folder} mixes class sub-folders with loose images ({loose[0]}, ...)",
                        "move every image into a class sub-folder, or remove the sub-folders")
    files, labels = [], []
    for k, name in enumerate(classes):
        found = _image_files(folder / name)
        files += found
        labels += [k] * len(found)
    return files, np.asarray(labels, dtype=np.int64), classes


def _folder_reader(image_size: int | None, grayscale: bool) -> Callable[[Path], np.ndarray]:
    """``path -> uint8 [H, W, 3]``: read, resize-pad, grey-convert (kept as 3 equal
    channels, so the cache's all-grey check turns it into one channel)."""
    def read(path: Path) -> np.ndarray:
        im = _read_image(path)
        if image_size:
            im = resize_pad_array(im, image_size)
        if grayscale:
            grey = to_grayscale(torch.from_numpy(np.ascontiguousarray(im.transpose(2, 0, 1)))[None])
            im = np.repeat(grey[0].numpy().transpose(1, 2, 0), 3, axis=2)
        return im
    return read


def _cache_writable(cache_dir: str | os.PathLike | None) -> bool:
    root = cache_root(cache_dir) / "decoded"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(root, os.W_OK)


def load_folder(path: str, split: str, split_seed: int = 0, image_size: int | None = None,
                *, grayscale: bool = False, cache_dir: str | os.PathLike | None = None,
                skip_bad_images: bool = False,
                stream: bool = False) -> ImageSet | StreamedImageSet:
    """Load ``folder:DIR`` of png/jpg/jpeg/bmp/gif/webp files, split 80/10/10 by seed.

    Sub-folders of DIR (sorted by name) become class labels; without sub-folders the set
    is unlabelled. Images become grey (C = 1) when every one is grey, else RGB. The folder
    is decoded once into the decoded cache (:mod:`.cache`) and later loads read that.

    Args:
        image_size: resize (keep aspect, pad) each image to this square side; required
            when the images differ in size.
        grayscale: convert to grey (BT.601) while decoding.
        cache_dir: cache root (default ``$GENVISION_CACHE`` or ``~/.cache/genvision``).
        skip_bad_images: leave unreadable files out (counted in ``notes``) instead of
            failing with the first one's name.
        stream: return a :class:`StreamedImageSet` whose pixels stay on disk.

    Returns:
        ImageSet with uint8 [N, C, H, W], or a StreamedImageSet when ``stream``.
    """
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise DataError(f"folder {folder} does not exist", "check the path after folder:")
    files, labels, classes = _listing(folder)
    if not files:
        raise DataError(f"no images found in {folder}",
                        f"put {'/'.join(e[1:] for e in IMAGE_EXTENSIONS)} files in it")
    # Every file is decoded (not just the split) so the grey/RGB decision and the size
    # check do not depend on the split: all splits of one folder share one cache entry.
    read = _folder_reader(image_size, grayscale)
    settings = {"image_size": image_size, "grayscale": grayscale}
    if stream or _cache_writable(cache_dir):
        entry = decoded_folder(folder, files, labels, classes, read, settings, cache_dir)
        return _folder_set(entry, folder, path, split, split_seed, skip_bad_images, stream)
    with tempfile.TemporaryDirectory() as tmp:  # no writable cache: decode, then forget
        entry = decoded_folder(folder, files, labels, classes, read, settings, tmp)
        return _folder_set(entry, folder, path, split, split_seed, skip_bad_images, False)


def _folder_set(entry: Decoded, folder: Path, path: str, split: str, split_seed: int,
                skip_bad_images: bool, stream: bool) -> ImageSet | StreamedImageSet:
    """The split of a decoded folder, after the unreadable-file policy."""
    if entry.bad and not skip_bad_images:
        raise DataError(f"{entry.bad[0][1]}; {len(entry.bad)} of {entry.files} images in "
                        f"{folder} cannot be read",
                        "delete or replace the unreadable files, or pass --skip-bad-images "
                        "to leave them out (the decoded images are cached: the rerun starts "
                        "at once)")
    n = entry.shape[0]
    if n == 0:
        raise DataError(f"none of the {entry.files} images in {folder} can be read",
                        "check the files open in an image viewer")
    notes = None
    if skip_bad_images:
        notes = {"skipped_bad_images": len(entry.bad),
                 "skipped_examples": [rel for rel, _ in entry.bad[:5]]}
    idx = split_indices(n, split, split_seed)
    y = None if entry.labels is None else torch.from_numpy(entry.labels[idx])
    images = DiskImages(entry.x_path, entry.shape, HEADER_BYTES)
    ds = StreamedImageSet(images, idx, y, f"folder:{path}", split, entry.class_names, notes)
    return ds if stream else ds.materialise()


def load_file_source(spec: str, split: str, split_seed: int = 0,
                     image_size: int | None = None,
                     **folder_options: Any) -> ImageSet | StreamedImageSet:
    """Dispatch a ``prefix:PATH`` spec to its reader (``folder_options``: the keyword
    arguments of :func:`load_folder`)."""
    check_split(split)
    prefix, _, path = spec.partition(":")
    if not path:
        raise DataError(f"{spec!r} has no path after {prefix}:",
                        f"write it as {prefix}:/path/to/data")
    if prefix == "idx":
        return load_idx(path, split, split_seed)
    if prefix == "npz":
        return load_npz(path, split, split_seed)
    if prefix == "folder":
        return load_folder(path, split, split_seed, image_size, **folder_options)
    if prefix == "cifar":
        return load_cifar(path, split, split_seed)
    raise DataError(f"unknown data prefix {prefix + ':'!r}", f"use one of {', '.join(PREFIXES)}")
