"""Labelled data of a classification task: which classes, which images, which bits.

Protocol (recorded in every result): the training split and the test split are each
binarised once, whole and in file order, with ``binarize_static`` and seed 0 (the
project's evaluation convention, the design guide, section 3), THEN restricted to the
task's classes, so a test image has the same bits in every task and every run. Every
classifier, generative or discriminative, sees the same binary images.

Default sources: train on all 5,000 ``mnist5k`` digits and test on the official MNIST test
split when the download cache already holds it (any earlier use of the ``mnist`` dataset
put it there; never a path relative to the working directory); otherwise train on the
``train`` split of the data and test on its ``test`` split, which never overlap. Whether
the test images ARE the official MNIST test split is checked by content
(:func:`genvision.data.idx.is_mnist_test`), never guessed from a path, and the protocol
says what the test split really is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ...data import load_dataset
from ...data.base import ImageSet
from ...data.download import cached_mnist_test
from ...data.idx import is_mnist_test
from ...data.sources import splits_overlap
from ...data.transforms import binarize_static
from ...errors import DataError, UserError

BINARIZE_SEED = 0


@dataclass
class TaskData:
    """Binary images of the task's classes, labels mapped to 0..K-1.

    Attributes:
        x_train, x_test: float32 [N, C, H, W] in {0, 1}.
        y_train, y_test: int64 [N] in 0..K-1 (index into ``classes``).
        classes: the dataset's labels of the task, in task order (e.g. [0, 1]).
        class_names: display names of ``classes``.
        protocol: JSON-ready description (sources, splits, n, binarisation).
    """

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    classes: list[int]
    class_names: list[str]
    protocol: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def shape(self) -> tuple[int, int, int]:
        c, h, w = self.x_train.shape[1:]
        return int(c), int(h), int(w)


def parse_task(task: str) -> list[int] | None:
    """``"0-vs-1"`` -> [0, 1]; ``"3,5,8"`` -> [3, 5, 8]; ``"all"`` -> None (every class).

    Raises:
        UserError: anything else, or fewer than two distinct classes.
    """
    text = task.strip().lower()
    if text == "all":
        return None
    parts = re.split(r"\s*(?:-vs-|,)\s*", text)
    if not all(p.isdigit() for p in parts):
        raise UserError(f"cannot read task {task!r}",
                        "write it as 0-vs-1, a list of class labels like 3,5,8, or all")
    classes = [int(p) for p in parts]
    if len(set(classes)) != len(classes) or len(classes) < 2:
        raise UserError(f"task {task!r} needs at least two different classes",
                        "name two or more distinct labels, e.g. 0-vs-1")
    return classes


def task_slug(task: str) -> str:
    """File-name form of a task: ``"3,5,8"`` -> ``"3-5-8"``, ``"0-vs-1"`` stays."""
    return re.sub(r"[^0-9a-z-]+", "-", task.strip().lower()).strip("-") or "task"


def resolve_sources(data: str, test_data: str) -> tuple[str, str, str]:
    """(train spec, train split, test spec) for ``--data`` and ``--test-data``.

    ``test_data="auto"``: the official MNIST test split (``mnist``) for mnist5k when the
    download cache holds it, else the data's own test split (then training uses the
    ``train`` split: no overlap). A test source that is the training source (however its
    path is spelled) also trains on ``train`` only.
    """
    if test_data == "auto":
        if data == "mnist5k" and cached_mnist_test():
            return data, "all", "mnist"
        return data, "train", data
    same = splits_overlap(data, "all", test_data, "test")
    return data, ("train" if same else "all"), test_data


def describe_test(spec: str, official: bool) -> str:
    """What the test split is, in words: the official MNIST test split only when verified."""
    if official:
        return "official MNIST test split (verified by content)"
    return f"{spec} split test"


def _binary(ds: ImageSet) -> Tensor:
    """The whole split binarised once, in file order (the project's static convention)."""
    return binarize_static(ds.to_float(), BINARIZE_SEED)


def _select(ds: ImageSet, x: Tensor, classes: list[int]) -> tuple[Tensor, Tensor]:
    """Images of ``classes`` (file order) and their labels remapped to task indices."""
    assert ds.y is not None
    lookup = torch.full((max(int(ds.y.max()), max(classes)) + 1,), -1, dtype=torch.int64)
    lookup[torch.tensor(classes)] = torch.arange(len(classes))
    keep = torch.isin(ds.y, torch.tensor(classes))
    return x[keep], lookup[ds.y[keep]]


def _labelled(spec: str, split: str, role: str) -> ImageSet:
    ds = load_dataset(spec, split)
    if ds.y is None or ds.num_classes == 0:
        raise DataError(f"{spec} ({role}) has no labels, which a classifier task needs",
                        "use a labelled dataset such as mnist5k, digits or idx: with a "
                        "labels file")
    return ds


def load_task_data(task: str, data: str = "mnist5k", test_data: str = "auto",
                   n_test: int | None = None) -> TaskData:
    """Load, binarise and restrict the train and test images to the task's classes.

    Args:
        task: ``0-vs-1``, ``3,5,8`` or ``all``.
        data: training dataset spec. test_data: test spec or ``auto`` (see module doc).
        n_test: keep the first ``n_test`` test images of the task (after binarisation).

    Raises:
        DataError / UserError: unlabelled data, classes the data lacks, shape mismatch.
    """
    train_spec, train_split, test_spec = resolve_sources(data, test_data)
    train = _labelled(train_spec, train_split, "training data")
    test = _labelled(test_spec, "test", "test data")
    if train.shape != test.shape:
        raise DataError(f"training images are {list(train.shape)} but test images "
                        f"{list(test.shape)}", "pass a --test-data of the same image size")
    wanted = parse_task(task)
    available = sorted(set(train.y.tolist()) & set(test.y.tolist()))
    classes = available if wanted is None else wanted
    missing = [c for c in classes if c not in available]
    if missing:
        raise UserError(f"task {task!r} names class(es) {missing} that {train_spec}/"
                        f"{test_spec} lack", f"use labels among {available}")
    if len(classes) < 2:
        raise UserError(f"{train_spec} has fewer than two classes", "use a labelled dataset "
                                                                     "with several classes")
    official = is_mnist_test(test)
    x_train, y_train = _select(train, _binary(train), classes)
    x_test, y_test = _select(test, _binary(test), classes)
    if n_test is not None:
        if n_test < 1:
            raise UserError(f"--n-test must be >= 1, got {n_test}", "pass a positive number")
        x_test, y_test = x_test[:n_test], y_test[:n_test]
    names = train.class_names or [str(c) for c in range(train.num_classes)]
    protocol = {
        "task": task, "classes": classes,
        "train": {"source": train_spec, "split": train_split, "n_available": len(x_train)},
        "test": {"source": test_spec, "split": "test", "n": len(x_test),
                 "what": describe_test(test_spec, official),
                 "subset": None if n_test is None else f"first {n_test} of the task's "
                                                       "test images, after binarisation"},
        # by content: a user's own idx: folder named "mnist" is not the official split
        "official_mnist_test": official,
        "binarize": {"scheme": "static", "seed": BINARIZE_SEED,
                     "how": "whole split in file order, before selecting classes"},
        "shape": list(train.shape),
    }
    return TaskData(x_train, y_train, x_test, y_test, classes,
                    [names[c] if c < len(names) else str(c) for c in classes], protocol)


def balanced_order(y: Tensor, seed: int) -> np.ndarray:
    """A seeded ordering of the training indices that is class-balanced in every prefix.

    Each class's indices are shuffled, then taken round-robin (class 0, 1, ..., K-1, 0,
    ...); a class that runs out is skipped. The first n indices are therefore a balanced
    subset, and the subsets of a learning curve are nested (the 30 contain the 10).

    Returns:
        int64 [N] indices into ``y``.
    """
    rng = np.random.default_rng(seed)
    labels = y.numpy()
    per_class = [rng.permutation(np.flatnonzero(labels == k)) for k in np.unique(labels)]
    longest = max(len(p) for p in per_class)
    rows = [p[i] for i in range(longest) for p in per_class if i < len(p)]
    return np.asarray(rows, dtype=np.int64)


def training_subset(data: TaskData, n: int | None, seed: int) -> tuple[Tensor, Tensor]:
    """The first ``n`` images of :func:`balanced_order` (all of them for ``n=None``)."""
    if n is None or n >= len(data.y_train):
        return data.x_train, data.y_train
    if n < data.num_classes:
        raise UserError(f"{n} training images cannot cover {data.num_classes} classes",
                        f"use sizes of at least {data.num_classes}")
    idx = torch.from_numpy(balanced_order(data.y_train, seed)[:n])
    return data.x_train[idx], data.y_train[idx]
