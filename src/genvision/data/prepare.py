"""Turn a :class:`DataConfig` into model-ready float tensors plus the protocol they obey.

The protocol dict travels with every number (the design guide: numbers without their
protocol are not comparable). Per-batch randomness (dynamic binarisation, dequantisation
noise) is a ``batch_transform(x, generator)`` drawing everything from the generator the
training loop passes in, so a run is exactly reproducible from its seed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import DataError
from .base import ImageSet
from .config import DataConfig
from .sources import load_dataset
from .stream import StreamedImages, StreamedImageSet
from .transforms import binarize_dynamic, binarize_static, dequantize

DATA_KINDS = ("binary", "grey8", "rgb8", "continuous")
#: named datasets whose documented default is the binarised MNIST benchmark protocol (the
#: design guide's MNIST-5k protocol): likelihood models binarise them unless told otherwise
BINARY_PROTOCOL_SOURCES = ("mnist5k", "mnist", "digits")
#: a pixel this many levels (of 255) from black or white counts as binary
NEAR_BINARY_LEVELS = 8
#: the share of near-binary pixels above which a source counts as binary data
NEARLY_BINARY_SHARE = 0.95


@dataclass
class Prepared:
    """Model-ready data.

    Attributes:
        train: the chosen split as uint8 images (what ``x`` was made from).
        x: float32 [N, C, H, W] in [0, 1] (static binarisation already applied if asked);
            with ``stream``, a :class:`~genvision.data.stream.StreamedImages` indexed the
            same way that reads each batch from disk.
        y: int64 [N] labels or None.
        batch_transform: ``f(x_batch, generator) -> x_batch`` applied per batch (dynamic
            binarisation / dequantisation), or None.
        data_kind: what ``x`` (after the batch transform) holds: ``binary`` | ``grey8`` |
            ``rgb8`` | ``continuous``.
        protocol: JSON-ready description of the data and preprocessing.
    """

    train: ImageSet
    x: Tensor
    y: Tensor | None
    batch_transform: Callable[..., Tensor] | None
    data_kind: str
    protocol: dict[str, Any]
    #: why ``data_kind`` was chosen, in words (set when ``--binarize auto`` decided it)
    kind_reason: str = ""

    @property
    def num_classes(self) -> int:
        """Number of classes of the source (0 when unlabelled)."""
        return self.train.num_classes

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return self.train.shape


def resolve_binarize(binarize: str, model_data_kind: str, *, evaluation: bool = False) -> str:
    """``auto`` -> ``dynamic`` (training) / ``static`` (evaluation) for binary models, else
    ``none``; at evaluation any binarisation is static so every model sees the same bits."""
    if model_data_kind not in DATA_KINDS:
        raise ValueError(f"model data kind must be one of {DATA_KINDS}, got {model_data_kind!r}")
    if binarize == "auto":
        binarize = "dynamic" if model_data_kind == "binary" else "none"
    if binarize not in ("none", "static", "dynamic"):
        raise DataError(f"unknown binarisation {binarize!r}", "use auto, none, static or dynamic")
    return "static" if evaluation and binarize == "dynamic" else binarize


def near_binary_share(x: Tensor) -> float:
    """The share of pixels of uint8 images x [N, C, H, W] within
    :data:`NEAR_BINARY_LEVELS` of black or white (1.0 for pure black-and-white images)."""
    near = (x <= NEAR_BINARY_LEVELS) | (x >= 255 - NEAR_BINARY_LEVELS)
    return float(near.float().mean()) if x.numel() else 1.0


#: images whose pixels decide --binarize auto (a seeded sample: a streamed folder of
#: millions of images is never read whole for it)
KIND_SAMPLE = 4096


def _pixel_sample(ds: Any) -> Tensor:
    """uint8 [n, C, H, W]: up to KIND_SAMPLE seeded images of an in-memory or streamed set."""
    idx = np.sort(np.random.default_rng(0).permutation(len(ds))[:KIND_SAMPLE])
    x = getattr(ds, "x", None)
    return x[torch.from_numpy(idx)] if x is not None else ds.batch(idx)


def choose_binarize(ds: ImageSet, cfg: DataConfig, model_data_kind: str,
                    supported: tuple[str, ...]) -> tuple[str, str]:
    """Resolve ``--binarize auto`` for training from the data itself.

    Binary only when the model models binary pixels alone, when the source is a named
    binarised-MNIST protocol set (:data:`BINARY_PROTOCOL_SOURCES`), or when the pixels are
    nearly binary (:data:`NEARLY_BINARY_SHARE` of them near black or white); otherwise the
    8-bit levels are kept, so a grey dataset is grey for every family and their sample
    metrics share one reference set.

    Args:
        ds: the training images (uint8).
        cfg: the data config (``binarize``, ``data``).
        model_data_kind: the kind the model's options ask for (``binary`` = its default).
        supported: the data kinds the model accepts.

    Returns:
        (scheme ``none`` | ``static`` | ``dynamic``, the reason in words).
    """
    grey = "grey8" if ds.shape[0] == 1 else "rgb8"
    if cfg.binarize != "auto":
        scheme = resolve_binarize(cfg.binarize, model_data_kind)
        return scheme, f"{'binary' if scheme != 'none' else grey}: as asked (--binarize " \
                       f"{cfg.binarize})"
    if model_data_kind != "binary":
        reason = f"{grey} (8-bit levels): the model and its options model grey levels"
        if cfg.data in BINARY_PROTOCOL_SOURCES:
            reason += (f"; likelihood models binarise {cfg.data} by default (the MNIST "
                       "protocol): train them with --binarize none to compare samples")
        return "none", reason
    if grey not in supported:
        return "dynamic", ("binary (Bernoulli each batch): the model models binary pixels "
                           "only")
    if cfg.data in BINARY_PROTOCOL_SOURCES:
        return "dynamic", (f"binary (Bernoulli each batch): {cfg.data} follows the binarised "
                           "MNIST benchmark protocol; --binarize none keeps its 8-bit levels, "
                           "as GANs use")
    share = near_binary_share(_pixel_sample(ds))
    pct = f"{100 * share:.1f}% of pixels within {NEAR_BINARY_LEVELS} levels of black or white"
    if share >= NEARLY_BINARY_SHARE:
        return "dynamic", f"binary (Bernoulli each batch): the pixels are nearly binary ({pct})"
    return "none", (f"{grey} (8-bit levels): the pixels have grey levels ({pct}); "
                    "--binarize dynamic binarises them")


def _prepare(ds: ImageSet, cfg: DataConfig, scheme: str) -> Prepared:
    if scheme != "none" and cfg.dequantize:
        raise DataError("binarisation and dequantisation cannot both be on",
                        "use --binarize none with --dequantize, or drop --dequantize")
    if isinstance(ds, StreamedImageSet):  # batches are read from disk as the loop asks
        if scheme == "static":
            raise DataError("--stream cannot binarise statically (the bits of an image "
                            "depend on the whole split in memory)",
                            "use --binarize dynamic, or drop --stream")
        x = StreamedImages(ds)
    else:
        x = ds.to_float()
    transform = None
    if scheme == "static":
        x = binarize_static(x, cfg.binarize_seed)  # whole split, file order: see transforms
    elif scheme == "dynamic":
        transform = binarize_dynamic
    elif cfg.dequantize:
        transform = dequantize
    if scheme != "none":
        kind = "binary"
    elif cfg.dequantize:
        kind = "continuous"
    else:
        kind = "grey8" if ds.shape[0] == 1 else "rgb8"
    protocol = {
        "source": ds.source, "split": ds.split, "n": len(ds), "shape": list(ds.shape),
        "num_classes": ds.num_classes, "split_seed": cfg.split_seed,
        "binarize": {"scheme": scheme,
                     "seed": cfg.binarize_seed if scheme == "static" else None},
        "dequantize": ({"kind": "uniform", "formula": "(x*255+u)/256"} if cfg.dequantize
                       else None),
        "resize": cfg.image_size, "grayscale": cfg.grayscale, "data_kind": kind,
        **(getattr(ds, "notes", None) or {}),
    }
    return Prepared(ds, x, ds.y, transform, kind, protocol)


def _load(cfg: DataConfig, cache_dir) -> ImageSet:
    return load_dataset(cfg.data, cfg.split, image_size=cfg.image_size,
                        grayscale=cfg.grayscale, split_seed=cfg.split_seed, cache_dir=cache_dir,
                        skip_bad_images=cfg.skip_bad_images, stream=cfg.stream)


def prepare(cfg: DataConfig, model_data_kind: str, *, for_eval: bool = False,
            cache_dir=None, supported: tuple[str, ...] | None = None) -> Prepared:
    """Load ``cfg.split`` of ``cfg.data`` and preprocess it for training.

    Args:
        cfg: the data config.
        model_data_kind: the model's ``data_kind`` (``binary`` | ``grey8`` | ``rgb8`` |
            ``continuous``); decides what ``binarize="auto"`` means.
        for_eval: prepare ``cfg.split`` as an evaluation set instead (same as
            :func:`prepare_eval`: static binarisation, no per-batch bits).
        supported: the model's supported data kinds; given, ``binarize="auto"`` is decided
            from the pixels (:func:`choose_binarize`) and the reason is kept in
            ``kind_reason``; without it ``auto`` follows ``model_data_kind`` alone.

    Returns:
        :class:`Prepared`.
    """
    if for_eval:
        return prepare_eval(cfg, cfg.split, model_data_kind=model_data_kind, cache_dir=cache_dir,
                            stream=True)
    ds = _load(cfg, cache_dir)
    if supported is None:
        return _prepare(ds, cfg, resolve_binarize(cfg.binarize, model_data_kind))
    scheme, reason = choose_binarize(ds, cfg, model_data_kind, supported)
    prep = _prepare(ds, cfg, scheme)
    prep.kind_reason = reason
    return prep


def prepare_eval(source: DataConfig | str, split: str = "test", *,
                 model_data_kind: str = "binary", binarize: str | None = None,
                 binarize_seed: int | None = None, n: int | None = None,
                 cache_dir=None, stream: bool = False) -> Prepared:
    """Prepare an evaluation set: static binarisation for binary models, never per-batch bits.

    The whole split is binarised in file order with ``binarize_seed`` (default: the
    config's, i.e. 0), THEN the first ``n`` images are kept, so a subset is a prefix of the
    full benchmark set.

    Args:
        source: a :class:`DataConfig` (its ``split`` is replaced) or a dataset spec.
        split: split to evaluate on.
        model_data_kind: the model's data kind.
        binarize: override the config's binarisation (``auto`` | ``none`` | ``static``).
        binarize_seed: override the static seed.
        n: keep only the first ``n`` images.
        stream: keep the config's ``stream`` (the set stays on disk) unless the
            binarisation is static; by default evaluation sets are held in memory.

    Returns:
        :class:`Prepared` whose ``batch_transform`` is only ever dequantisation noise.
    """
    cfg = DataConfig(data=source) if isinstance(source, str) else source
    changes: dict[str, Any] = {"split": split}
    if binarize is not None:
        changes["binarize"] = binarize
    if binarize_seed is not None:
        changes["binarize_seed"] = binarize_seed
    cfg = dataclasses.replace(cfg, **changes)
    scheme = resolve_binarize(cfg.binarize, model_data_kind, evaluation=True)
    if not stream or scheme == "static":  # static bits need the whole split in memory
        cfg = dataclasses.replace(cfg, stream=False)
    prep = _prepare(_load(cfg, cache_dir), cfg, scheme)
    if n is not None and n < len(prep.x):
        keep = list(range(n))
        prep.train = prep.train.subset(keep)
        prep.x, prep.y = prep.x[:n], None if prep.y is None else prep.y[:n]
        prep.protocol["n"] = n
        prep.protocol["subset"] = f"first {n} of the split, after binarisation"
    return prep
