"""What data a run uses and how it is preprocessed: recorded with every result."""

from __future__ import annotations

import dataclasses
from dataclasses import field
from typing import Literal

from ..dataclass_config import SEED, bounds, check_fields

#: the largest image side a run may ask for (a 1024x1024 RGB batch of 64 is already
#: 800 MB of float32; larger sizes are typos or memory bombs)
MAX_IMAGE_SIZE = 1024


@dataclasses.dataclass
class DataConfig:
    """Dataset spec plus preprocessing. Stored in ``run.json`` so numbers carry their protocol.

    ``data`` is a name (``digits``, ``mnist5k``, ``faces``, ``photos``, ``mnist``,
    ``fashion-mnist``, ``cifar10``) or a file source (``idx:DIR``, ``npz:FILE``,
    ``folder:DIR``, ``cifar:DIR``).
    """

    data: str = field(
        default="mnist5k", metadata={"help": "dataset name or idx:/npz:/folder:/cifar: source"})
    split: Literal["train", "val", "test", "all"] = field(
        default="train", metadata={"help": "which split to train on"})
    image_size: int | None = field(
        default=None, metadata={"help": "resize (keeping aspect, then pad) to this square size",
                                **bounds(1, MAX_IMAGE_SIZE)})
    grayscale: bool = field(default=False, metadata={"help": "convert colour images to grey"})
    binarize: Literal["auto", "none", "static", "dynamic"] = field(
        default="auto", metadata={"help": "binarise pixels: dynamic = resample Bernoulli(x) every "
                                          "batch, static = once with --binarize-seed; auto = "
                                          "from the data (binary when nearly every pixel is "
                                          "black or white, for the binarised MNIST protocol "
                                          "sets mnist5k/mnist/digits, or for a binary-only "
                                          "model such as rbm; else the 8-bit levels, for "
                                          "every family); the run's first line says which"})
    binarize_seed: int = field(default=0, metadata={"help": "seed of static binarisation",
                                                            **SEED})
    dequantize: bool = field(
        default=False, metadata={"help": "add uniform noise to 8-bit pixels (continuous models)"})
    split_seed: int = field(default=0, metadata={"help": "seed of the train/val/test split",
                                                         **SEED})
    skip_bad_images: bool = field(
        default=False, metadata={"help": "folder: leave out files that cannot be read "
                                         "(counted in the run's data protocol) instead of "
                                         "stopping at the first"})
    stream: bool = field(
        default=False, metadata={"help": "folder: read training batches from the decoded "
                                         "cache on disk instead of holding the split in "
                                         "memory (for sets larger than memory)"})

    def __post_init__(self) -> None:
        check_fields(self)
