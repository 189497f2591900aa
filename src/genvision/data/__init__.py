"""Datasets for genvision: embedded, user files and downloads, as one uint8 ImageSet.

Public API::

    from genvision.data import load_dataset, list_datasets, prepare, prepare_eval
    ds = load_dataset("mnist5k", "all")          # ImageSet, x uint8 [5000, 1, 28, 28]
    prep = prepare(DataConfig(data="digits"), model_data_kind="binary")
    prep.x, prep.batch_transform, prep.protocol  # float32 [N, C, H, W], per-batch fn, dict
"""

from .base import SPLITS, ImageSet, split_indices
from .config import DataConfig
from .download import fetch
from .photos import Photo, load_photos, random_patches
from .prepare import Prepared, prepare, prepare_eval
from .sources import list_datasets, load_dataset

__all__ = [
    "SPLITS", "DataConfig", "ImageSet", "Photo", "Prepared", "fetch", "list_datasets",
    "load_dataset", "load_photos", "prepare", "prepare_eval", "random_patches",
    "split_indices",
]
