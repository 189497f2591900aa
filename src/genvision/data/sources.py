"""One entry point for every data source: ``load_dataset(spec, split)``.

A spec is an embedded name (``digits``, ``mnist5k``, ``faces``, ``photos``), a
downloadable name (``mnist``, ``fashion-mnist``, ``cifar10``) or a file source
(``idx:PATH``, ``npz:FILE``, ``folder:DIR``, ``cifar:DIR``). Grey conversion and
resizing are applied here, after loading, so every source behaves the same.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DataError
from .base import ImageSet, check_split
from .download import REMOTES, load_remote, remote_info
from .embedded import EMBEDDED, embedded_info, load_embedded
from .files import PREFIXES, load_file_source
from .idx import is_mnist_test
from .stream import StreamedImageSet
from .transforms import resize_pad, to_grayscale

EMBEDDED_NAMES = (*EMBEDDED, "photos")

_FILE_ROWS = [
    ("idx:", "MNIST-style IDX files (raw or .gz): a folder with train-/t10k- files, or one "
             "images file"),
    ("npz:", "a .npz with uint8 (or float [0,1]) array x [N,H,W(,C)] or [N,C,H,W], optional y"),
    ("folder:", "a folder of png/jpg/bmp/gif/webp images; class sub-folders become labels"),
    ("cifar:", "an extracted CIFAR-10 python-version folder (data_batch_1..5, test_batch)"),
]


def _valid_names() -> str:
    return ", ".join([*EMBEDDED_NAMES, *REMOTES]) + "; or a prefix " + " ".join(PREFIXES)


def load_dataset(spec: str, split: str = "train", *, image_size: int | None = None,
                 grayscale: bool = False, split_seed: int = 0,
                 cache_dir: str | os.PathLike | None = None, skip_bad_images: bool = False,
                 stream: bool = False) -> ImageSet | StreamedImageSet:
    """Load a dataset split as uint8 images.

    Args:
        spec: name or ``prefix:path`` (see module docstring).
        split: ``train`` | ``val`` | ``test`` | ``all`` (``all`` = everything, file order).
        image_size: resize (keep aspect, pad with black) to this square side; for
            ``photos`` it is the patch side instead (default 32).
        grayscale: convert RGB to grey (BT.601).
        split_seed: seed of the train/val(/test) split.
        cache_dir: download cache (default ``$GENVISION_CACHE`` or ``~/.cache/genvision``).
        skip_bad_images: ``folder:`` only: leave unreadable files out (counted in the
            set's ``notes``) instead of failing on the first.
        stream: ``folder:`` only: keep the pixels on disk in the decoded cache
            (:class:`~genvision.data.stream.StreamedImageSet`).

    Returns:
        ImageSet with x uint8 [N, C, H, W] (a StreamedImageSet when ``stream``).
    """
    check_split(split)
    if image_size is not None and (not isinstance(image_size, int) or image_size < 1):
        raise DataError(f"image size must be a positive integer, got {image_size!r}",
                        "pass --image-size N with N >= 1")
    if stream and not spec.startswith("folder:"):
        raise DataError(f"--stream reads folder: sources from their decoded cache, but "
                        f"{spec} is loaded into memory", "drop --stream")
    if spec in EMBEDDED_NAMES:
        ds = load_embedded(spec, split, split_seed, image_size)
    elif spec in REMOTES:
        ds = load_remote(spec, split, split_seed, cache_dir)
    elif spec.startswith("folder:"):  # grey conversion and resizing happen while decoding
        return load_file_source(spec, split, split_seed, image_size, grayscale=grayscale,
                                cache_dir=cache_dir, skip_bad_images=skip_bad_images,
                                stream=stream)
    elif any(spec.startswith(p) for p in PREFIXES):
        ds = load_file_source(spec, split, split_seed, image_size)
    else:
        raise DataError(f"unknown dataset {spec!r}", f"use one of: {_valid_names()}")
    if grayscale and ds.shape[0] == 3:
        ds.x = to_grayscale(ds.x)
    if image_size is not None:
        ds.x = resize_pad(ds.x, image_size)
    return ds


def list_datasets() -> list[dict]:
    """Every dataset name and file prefix: name, kind, description, shape, size, splits.

    ``kind`` is ``"embedded"``, ``"download"`` or ``"file"``; ``splits`` maps split names
    to sizes where they are known without reading data (else it lists the split names).
    """
    rows = embedded_info() + remote_info()
    rows += [{"name": p, "kind": "file", "description": d, "shape": None, "size": None,
              "splits": ["train", "val", "test", "all"]} for p, d in _FILE_ROWS]
    return rows


def _source_key(spec: str) -> str:
    """``spec`` with a file source's path made absolute, so ``idx:./d`` and ``idx:/x/d`` match."""
    prefix = next((p for p in PREFIXES if spec.startswith(p)), None)
    if prefix is None:
        return spec
    return prefix + str(Path(spec[len(prefix):]).expanduser().resolve())


def splits_overlap(train_spec: str, train_split: str, eval_spec: str, eval_split: str,
                   train_seed: int = 0, eval_seed: int = 0) -> bool:
    """Whether ``eval_split`` of ``eval_spec`` may hold images ``train_split`` of
    ``train_spec`` holds.

    Every source's ``train``, ``val`` and ``test`` splits are disjoint for one split seed
    (seeded 80/10/10, a seeded val carve-out of official train files, or official test
    files), and ``all`` holds every image; different sources never share images here (a
    copy of a dataset under another name is not detected). Different split seeds of one
    source are taken to overlap.
    """
    if _source_key(train_spec) != _source_key(eval_spec):
        return False
    if "all" in (train_split, eval_split) or train_split == eval_split:
        return True
    return train_seed != eval_seed


def is_mnist_test_source(spec: str, split: str, split_seed: int = 0) -> bool:
    """Whether ``split`` of ``spec`` is exactly the official MNIST test split: the verified
    ``mnist`` download, or an ``idx:`` source whose images and labels match it by content
    (never guessed from a path or a name)."""
    if spec == "mnist":
        return split == "test"
    if not spec.startswith("idx:") or split not in ("test", "all"):
        return False
    try:
        return is_mnist_test(load_dataset(spec, split, split_seed=split_seed))
    except DataError:
        return False
