"""The image sets an outlier detector is scored on, prepared exactly like the model's inputs.

* **in-distribution** (``--in-data auto``): the official MNIST test digits (``mnist`` split
  ``test``) for a model trained on ``mnist5k``/``mnist`` when the download cache already
  holds them, else the test split of the run's own dataset when it is held out from the
  run's training split; a run that trained on every image (split ``all``, or ``test``) has
  no held-out images there and ``auto`` refuses, naming ``--in-data``. No path relative to
  the working directory is ever searched. An explicit ``--in-data`` that holds training
  images is scored but flagged (``training_images`` in its protocol);
* **training reference**: a seeded random subset of the run's training split, for the
  typicality test's estimate of the model's entropy (mean training NLL);
* **out-of-distribution**: any dataset spec (``faces``, ``digits``, ``idx:PATH``,
  ``folder:PATH``, ...), converted to grey for a grey model and binarised the way the
  run's data protocol binarises (static Bernoulli(x), seed 0, whole set in file order);
  ``noise`` (Bernoulli(0.5) pixels, or ``noise:P`` for Bernoulli(P); uniform levels for
  8-bit models) and ``blank`` (all-black images, the most "likely" image of many models).

Sets of another image size are refused unless ``resize`` is set (keep aspect, pad black:
:func:`genvision.data.transforms.resize_pad`).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ... import dataclass_config as cfg
from ...data import prepare_eval
from ...data.config import DataConfig
from ...data.download import cached_mnist_test
from ...data.sources import is_mnist_test_source, splits_overlap
from ...errors import DataError, UserError

#: sources whose in-distribution test set is the official MNIST test split
MNIST_SOURCES = ("mnist5k", "mnist")
SYNTHETIC = ("noise", "blank")
SYNTHETIC_SEED = 0


@dataclass
class ScoredSet:
    """Model-ready images of one set and how they were made (what a detector scores).

    Not :class:`genvision.data.ImageSet` (a dataset's raw uint8 pixels, labels and
    split): this holds float images already prepared exactly like the model's inputs.

    Attributes:
        name: the name shown in tables (``mnist-test``, ``faces``, ...).
        x: float32 [N, C, H, W] in [0, 1] ({0, 1} for binary models).
        protocol: JSON-ready: source, split, n, binarisation, resize, notes.
    """

    name: str
    x: Tensor
    protocol: dict[str, Any] = field(default_factory=dict)


def run_data_config(info: dict[str, Any]) -> DataConfig:
    """The run's data config (as trained) from its ``run.json``."""
    return cfg.from_dict(DataConfig, info["data_config"], what="data option")


def _kind(info: dict[str, Any]) -> str:
    return info["model_config"].get("data_kind", "binary")


def _prepared(data_cfg: DataConfig, split: str, kind: str, n: int | None,
              name: str) -> ScoredSet:
    prep = prepare_eval(data_cfg, split, model_data_kind=kind, n=n)
    x = prep.x
    if prep.batch_transform is not None:  # dequantisation noise of continuous models
        x = prep.batch_transform(x, torch.Generator().manual_seed(0))
        prep.protocol["dequantize_seed"] = 0
    return ScoredSet(name, x, prep.protocol)


def _auto_in_data(data_cfg: DataConfig, shape: tuple[int, int, int]) -> tuple[str, str, str]:
    """(spec, split, why) of ``--in-data auto``; refuses when nothing held out is known."""
    trained = f"{data_cfg.data} split {data_cfg.split}"
    if data_cfg.data in MNIST_SOURCES and shape == (1, 28, 28) and cached_mnist_test() \
            and not splits_overlap(data_cfg.data, data_cfg.split, "mnist", "test"):
        return "mnist", "test", (f"the run trained on MNIST digits ({trained}) and the "
                                 "download cache holds the official MNIST test split")
    if not splits_overlap(data_cfg.data, data_cfg.split, data_cfg.data, "test",
                          data_cfg.split_seed, data_cfg.split_seed):
        why = f"held out from the run's training split ({trained})"
        if data_cfg.data in MNIST_SOURCES and data_cfg.data != "mnist":
            why += "; the official MNIST test split is not in the download cache"
        return data_cfg.data, "test", why
    hint = " (e.g. --in-data mnist, the official MNIST test split)" \
        if data_cfg.data in MNIST_SOURCES else ""
    raise DataError(f"--in-data auto: the run trained on {trained}, so {data_cfg.data} has "
                    "no held-out in-distribution images", f"pass --in-data SPEC with images "
                    f"the run did not train on{hint}")


def in_distribution(info: dict[str, Any], spec: str = "auto", split: str = "test",
                    n: int | None = None) -> ScoredSet:
    """The in-distribution test images (see the module docstring for ``auto``).

    The protocol's ``chosen_because`` says which images were used and why; images the run
    trained on (an explicit ``spec``/``split`` only) carry ``training_images``.
    """
    data_cfg = run_data_config(info)
    if spec == "auto":
        spec, split, why = _auto_in_data(data_cfg, _shape(info))
    else:
        why = "given by --in-data"
    ds = _prepared(dataclasses.replace(data_cfg, data=spec), split, _kind(info), n, "in-dist")
    official = is_mnist_test_source(spec, split, data_cfg.split_seed)
    if official:
        ds.name = "mnist-test"
    what = "official MNIST test split" if official else f"{spec} split {split}"
    ds.protocol["chosen_because"] = f"{what}: {why}"
    if splits_overlap(data_cfg.data, data_cfg.split, spec, split, data_cfg.split_seed,
                      data_cfg.split_seed):
        ds.protocol["training_images"] = (f"WARNING: the run trained on {data_cfg.data} "
                                          f"split {data_cfg.split}, which holds these images")
    return ds


def training_reference(info: dict[str, Any], n: int, seed: int = 0) -> ScoredSet:
    """A seeded random subset of ``n`` training images (statically binarised), for the
    typicality test's entropy estimate. Random, not the first n: mnist5k is sorted by class."""
    data_cfg = run_data_config(info)
    ds = _prepared(data_cfg, data_cfg.split, _kind(info), None, "train")
    if n < len(ds.x):
        idx = torch.randperm(len(ds.x), generator=torch.Generator().manual_seed(seed))[:n]
        ds.x = ds.x[idx.sort().values]
        ds.protocol.update(n=n, subset=f"random {n} of the split (seed {seed}), after "
                                         "binarisation")
    return ds


def ood_set(name: str, info: dict[str, Any], *, resize: bool, n: int | None) -> ScoredSet:
    """One out-of-distribution set, shaped and binarised like the run's inputs.

    Raises:
        UserError: a set of another image size without ``resize``; a colour model given
            grey images; a non-square model with ``resize``.
    """
    label, name = split_label(name)
    c, h, w = _shape(info)
    if name.split(":")[0] in SYNTHETIC:
        return _labelled(_synthetic(name, _kind(info), (c, h, w), n or 1000), label)
    base = dataclasses.replace(run_data_config(info), data=name, grayscale=c == 1,
                               image_size=None, split="all")
    if resize:
        if h != w:
            raise UserError(f"--resize makes square images but the model takes {h}x{w}",
                            f"drop {name} from --ood")
        base = dataclasses.replace(base, image_size=h)
    ds = _prepared(base, "all", _kind(info), n, name)
    got = tuple(ds.x.shape[1:])
    if got[1:] != (h, w):
        raise UserError(f"OOD set {name} has {got[1]}x{got[2]} images but the model takes "
                        f"{h}x{w}", f"pass --resize to resize it (keep aspect, pad black) to "
                        f"{h}x{w}, or drop {name} from --ood")
    if ds.x.shape[1] != c:
        raise UserError(f"OOD set {name} has {ds.x.shape[1]} channel(s) but the model {c}",
                        "use a set with the model's channels")
    return _labelled(ds, label)


#: a name given to an ``--ood`` set: ``LABEL=SPEC`` (a letter, then letters, digits, . _ -)
_LABEL = re.compile(r"[A-Za-z][A-Za-z0-9._-]*")


def split_label(item: str) -> tuple[str | None, str]:
    """``"mnist-test=idx:DIR"`` -> ``("mnist-test", "idx:DIR")``; an item with no label
    (or whose text before ``=`` is not a plain name, e.g. a path) -> ``(None, item)``."""
    label, eq, spec = item.partition("=")
    if eq and _LABEL.fullmatch(label):
        if not spec:
            raise UserError(f"--ood {item!r} names no set after {label}=",
                            f"write {label}=SPEC, e.g. {label}=idx:DIR")
        return label, spec
    return None, item


def _labelled(ds: ScoredSet, label: str | None) -> ScoredSet:
    """The set shown as ``label`` (its spec kept in the protocol as ``spec``)."""
    if label is not None:
        ds.protocol = {**ds.protocol, "spec": ds.name}
        ds.name = label
    return ds


def _synthetic(name: str, kind: str, shape: tuple[int, int, int], n: int) -> ScoredSet:
    """``noise[:P]`` or ``blank`` images of ``shape``, seeded; binary for binary models."""
    g = torch.Generator().manual_seed(SYNTHETIC_SEED)
    base, _, arg = name.partition(":")
    if base == "blank":
        if arg:
            raise UserError(f"blank takes no parameter, got {name!r}", "write blank")
        return ScoredSet(name, torch.zeros(n, *shape), {"source": "blank", "n": n,
                                                        "description": "all-black images"})
    try:
        p = float(arg) if arg else 0.5
    except ValueError:
        p = -1.0
    if not 0 <= p <= 1:
        raise UserError(f"bad noise level in {name!r}", "write noise or noise:P with P in [0, 1]")
    if kind == "binary":
        x = torch.bernoulli(torch.full((n, *shape), p), generator=g)
        desc = f"Bernoulli({p}) pixels, seed {SYNTHETIC_SEED}"
    else:  # 8-bit models: uniform levels (p is ignored)
        x = torch.randint(0, 256, (n, *shape), generator=g).float() / 255.0
        desc = f"uniform 8-bit levels, seed {SYNTHETIC_SEED}"
    return ScoredSet(name, x, {"source": base, "n": n, "description": desc})


def _shape(info: dict[str, Any]) -> tuple[int, int, int]:
    mc = info["model_config"]
    return int(mc.get("channels", 1)), *(int(s) for s in mc["image_size"])


def check_ood_names(spec: str) -> list[str]:
    """Split ``--ood`` into names; refuse an empty list or duplicates."""
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if not names:
        raise UserError("--ood names no set", "e.g. --ood faces,digits,noise")
    shown = [split_label(s)[0] or s for s in names]
    if len(set(shown)) != len(shown) or len(set(names)) != len(names):
        raise DataError(f"--ood names a set twice: {spec}", "list each set once")
    return names
