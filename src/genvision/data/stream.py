"""Images read from the decoded cache a batch at a time, for sets larger than memory.

:class:`DiskImages` reads rows of a cache's ``x.npy`` with positional reads (``os.preadv``
straight into the output array), so only the batch asked for is ever in this process's
memory. A read-only memory map would serve the same bytes, but every page it touches
stays counted in the process's resident memory until the mapping goes away, so after one
epoch a mapped 2.4 GB file reads as 2.4 GB of RSS; positional reads leave those pages to
the kernel's page cache, shared and reclaimable.

:class:`StreamedImageSet` is the split of a decoded folder (an index set into the file,
labels in memory) with :class:`~genvision.data.base.ImageSet`'s interface minus the ``x``
tensor; :class:`StreamedImages` is its float view, what training reads batches from:
``images[idx]`` -> float32 [B, C, H, W] in [0, 1], exactly ``ImageSet.to_float()[idx]``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import DataError
from .base import ImageSet

#: images a data-dependent initialisation sees from a streamed set (a seeded sample)
INIT_SAMPLE = 10_000


class DiskImages:
    """uint8 rows [C, H, W] of a C-order ``.npy`` file, read on demand.

    Safe to pickle and to use after ``fork``: the file is (re)opened lazily per process.
    """

    def __init__(self, path: str | os.PathLike, shape: Sequence[int], offset: int):
        self.path, self.shape, self.offset = Path(path), tuple(int(s) for s in shape), offset
        self.row = int(np.prod(self.shape[1:]))
        self._fd: int | None = None
        self._pid = -1

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_fd": None, "_pid": -1}

    def __del__(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)

    def _file(self) -> int:
        if self._fd is None or self._pid != os.getpid():
            self._fd, self._pid = os.open(self.path, os.O_RDONLY), os.getpid()
        return self._fd

    def read(self, idx: np.ndarray) -> np.ndarray:
        """Rows ``idx`` (any order, repeats allowed) as uint8 [len(idx), C, H, W].

        Runs of consecutive indices are read with one call each, so reading a whole
        sorted split costs few system calls.
        """
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.shape[0]):
            raise IndexError(f"image index out of range 0..{self.shape[0] - 1}")
        out = np.empty((len(idx), *self.shape[1:]), dtype=np.uint8)
        flat = out.reshape(len(idx), self.row)
        fd = self._file()
        # break where the next index is not the previous plus one
        breaks = np.flatnonzero(np.diff(idx) != 1) + 1
        for lo, hi in zip(np.r_[0, breaks], np.r_[breaks, len(idx)], strict=True):
            view = memoryview(flat[lo:hi]).cast("B")
            got = os.preadv(fd, [view], self.offset + int(idx[lo]) * self.row)
            if got != view.nbytes:
                raise DataError(f"the decoded cache {self.path} is shorter than its header "
                                "says", f"delete {self.path.parent} and run again")
        return out


@dataclass
class StreamedImageSet:
    """A split of a decoded folder whose pixels stay on disk.

    Attributes:
        images: the cache file (all images of the folder).
        index: int64 [N] rows of ``images`` in this set, in order.
        y, source, split, class_names, notes: as in :class:`ImageSet`.
    """

    images: DiskImages
    index: np.ndarray
    y: Tensor | None
    source: str
    split: str
    class_names: list[str] | None = None
    notes: dict[str, Any] | None = field(default=None)

    def __len__(self) -> int:
        return len(self.index)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

    @property
    def num_classes(self) -> int:
        """As :attr:`ImageSet.num_classes` (depends on labels and class names only)."""
        return ImageSet.num_classes.fget(self)  # type: ignore[attr-defined]

    def subset(self, indices: Sequence[int] | np.ndarray | Tensor) -> StreamedImageSet:
        """The images at ``indices`` of this set (in that order), still on disk."""
        idx = np.asarray(indices, dtype=np.int64)
        y = None if self.y is None else self.y[torch.from_numpy(idx)]
        return StreamedImageSet(self.images, self.index[idx], y, self.source, self.split,
                                self.class_names, self.notes)

    def batch(self, indices: Sequence[int] | np.ndarray | Tensor) -> Tensor:
        """uint8 [B, C, H, W] of the images at ``indices`` of this set."""
        return torch.from_numpy(self.images.read(self.index[np.asarray(indices, np.int64)]))

    def materialise(self) -> ImageSet:
        """The whole set in memory as a plain :class:`ImageSet`."""
        return ImageSet(self.batch(np.arange(len(self))), self.y, self.source, self.split,
                        self.class_names, self.notes)

    def to_float(self) -> Tensor:
        """float32 [N, C, H, W] in [0, 1]: reads every image (see :class:`StreamedImages`
        for batches)."""
        return self.materialise().to_float()


class StreamedImages:
    """Float view of a :class:`StreamedImageSet`, indexed like a float32 [N, C, H, W]
    tensor: ``x[idx]`` reads those images from disk and returns pixel / 255."""

    dtype = torch.float32

    def __init__(self, images: StreamedImageSet):
        self.set = images

    def __len__(self) -> int:
        return len(self.set)

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.set), *self.set.shape))

    def size(self, dim: int | None = None) -> torch.Size | int:
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> int:
        return 4

    def is_floating_point(self) -> bool:
        return True

    def __getitem__(self, key: int | slice | Sequence[int] | np.ndarray | Tensor) -> Tensor:
        if isinstance(key, int):
            return self[[key]][0]
        if isinstance(key, slice):
            key = np.arange(len(self))[key]
        if isinstance(key, Tensor):
            key = key.cpu().numpy()
        return self.set.batch(key).to(torch.float32) / 255.0

    def init_sample(self, n: int = INIT_SAMPLE, seed: int = 0) -> Tensor:
        """A seeded sample of at most ``n`` images, float32 [min(n, N), C, H, W] in file
        order: what a model's data-dependent initialisation sees of a streamed set."""
        if len(self) <= n:
            return self[:]
        pick = np.sort(np.random.default_rng(seed).choice(len(self), n, replace=False))
        return self[pick]


def init_images(x: Tensor | StreamedImages) -> Tensor:
    """``x`` itself, or for a streamed set its :meth:`StreamedImages.init_sample`."""
    return x.init_sample() if isinstance(x, StreamedImages) else x
