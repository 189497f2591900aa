"""Which images a probe trains and scores on, prepared as the run's model sees them.

* **Labelled pool** (the probe's training images): the run's own training data, with its
  preprocessing (static binarisation, seed 0, for binary models, as in evaluation). When
  the run trained on a split that contains the evaluation split (``all``), the pool is
  the source's ``train`` split instead, so no evaluation image is ever a probe label.
* **Evaluation set**: ``--data SPEC --split S`` when given; else, for a run trained on
  MNIST digits (``mnist5k``, ``mnist``, ``idx:``) the official 10,000 MNIST test digits
  from a folder beside the project when there is one (the shared benchmark protocol of
  the design guide); else the run's dataset's ``test`` split.

Both sets carry their protocol dict (source, split, n, binarisation), which goes into
every output, with a sentence saying why that evaluation set was chosen.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ... import dataclass_config as cfg
from ...data import DataConfig, prepare_eval
from ...data.idx import OFFICIAL_MNIST_TEST, has_idx_test_split
from ...errors import DataError, UserError

#: specs whose images are MNIST digits, so the official test split is the right yardstick
MNIST_SPECS = ("mnist5k", "mnist")
MNIST_SHAPE = (1, 28, 28)
_LABELLED_FIX = ("probe a run trained on a labelled dataset (mnist5k, digits, mnist, idx:, "
                 "folder: with class sub-folders)")


@dataclass
class ProbeData:
    """Images for a probe, float32 [N, C, H, W] in the model's input range, with labels.

    Attributes:
        train_x, train_y: the labelled pool ([N] int64 labels) the probe's labels come from.
        eval_x, eval_y: the evaluation images and labels.
        train_protocol, eval_protocol: JSON-ready descriptions (source, split, n, ...).
        eval_reason: why this evaluation set was chosen (one sentence).
    """

    train_x: Tensor
    train_y: Tensor
    eval_x: Tensor
    eval_y: Tensor
    train_protocol: dict[str, Any]
    eval_protocol: dict[str, Any]
    eval_reason: str


def shared_mnist_test() -> Path | None:
    """The official MNIST test folder (``t10k-*`` IDX files) beside the repository, or None.

    Looked for in the shared data folder beside the working directory and from the source
    checkout (an editable install), the layout of the project's shared data.
    """
    here = Path(__file__).resolve()
    candidates = [Path.cwd() / OFFICIAL_MNIST_TEST]
    if len(here.parents) > 5:  # the checkout: src/genvision/tasks/features/data.py
        candidates.append(here.parents[4] / OFFICIAL_MNIST_TEST)
    for path in candidates:
        if has_idx_test_split(path) and any(path.glob("t10k-labels*")):
            return path.resolve()
    return None


def _is_mnist(data_cfg: DataConfig, shape: tuple[int, ...]) -> bool:
    spec = data_cfg.data
    mnist_like = spec in MNIST_SPECS or spec.startswith("idx:")
    return mnist_like and tuple(shape) == MNIST_SHAPE and not data_cfg.image_size


def eval_config(data_cfg: DataConfig, shape: tuple[int, ...], data: str | None = None,
                split: str = "test") -> tuple[DataConfig, str]:
    """The evaluation data config (the run's preprocessing kept) and why it was chosen."""
    if data:
        return (dataclasses.replace(data_cfg, data=data, split=split),
                f"{data} {split} split, as asked (--data)")
    mnist = shared_mnist_test() if _is_mnist(data_cfg, shape) and split == "test" else None
    if mnist is not None:
        return (dataclasses.replace(data_cfg, data=f"idx:{mnist}", split="test"),
                "the official MNIST test split (shared benchmark protocol), found at "
                f"{mnist}")
    return (dataclasses.replace(data_cfg, split=split),
            f"the {split} split of the run's dataset {data_cfg.data}"
            + (" (no official MNIST test folder found beside the project; pass --data idx:DIR)"
               if _is_mnist(data_cfg, shape) and split == "test" else ""))


def pool_config(data_cfg: DataConfig, eval_cfg: DataConfig) -> DataConfig:
    """The run's training split, or its ``train`` split when that one holds the eval set."""
    same_source = (eval_cfg.data == data_cfg.data and eval_cfg.split_seed == data_cfg.split_seed)
    if not same_source:
        return data_cfg
    if eval_cfg.split in ("train", "all"):
        raise UserError(f"evaluating on the {eval_cfg.split} split of {eval_cfg.data} would "
                        "score the probe on its own training images",
                        "evaluate on --split test (or val), or pass --data ANOTHER_SPEC")
    if data_cfg.split in ("all", eval_cfg.split):
        return dataclasses.replace(data_cfg, split="train")
    return data_cfg


def _prepared(data_cfg: DataConfig, kind: str, seed: int) -> tuple[Tensor, Tensor | None, dict]:
    prep = prepare_eval(data_cfg, data_cfg.split, model_data_kind=kind)
    x = prep.x
    if prep.batch_transform is not None:  # dequantisation noise, seeded as in evaluation
        x = prep.batch_transform(x, torch.Generator().manual_seed(seed))
        prep.protocol["dequantize_seed"] = seed
    return x, prep.y, prep.protocol


def load_probe_data(info: dict[str, Any], *, data: str | None = None, split: str = "test",
                    n_eval: int | None = None, seed: int = 0) -> ProbeData:
    """The labelled pool and the evaluation set of the run described by ``info`` (run.json).

    Args:
        info: the run's ``run.json`` dict (``data_config`` and ``model_config`` are used).
        data, split: evaluation dataset spec and split (default: see the module docstring).
        n_eval: keep only the first ``n_eval`` evaluation images.
        seed: seed of dequantisation noise (continuous models only).

    Raises:
        UserError: the data has no labels, or the evaluation split overlaps the pool.
    """
    data_cfg = cfg.from_dict(DataConfig, info["data_config"], what="data option")
    model_cfg = info.get("model_config", {})
    kind = model_cfg.get("data_kind", "binary")
    shape = (model_cfg.get("channels", 1), *model_cfg.get("image_size", (0, 0)))
    ev_cfg, reason = eval_config(data_cfg, shape, data, split)
    pool_cfg = pool_config(data_cfg, ev_cfg)
    train_x, train_y, train_proto = _prepared(pool_cfg, kind, seed)
    if train_y is None:
        raise DataError(f"the run's dataset {pool_cfg.data} has no labels to probe with",
                        _LABELLED_FIX)
    eval_x, eval_y, eval_proto = _prepared(ev_cfg, kind, seed)
    if eval_y is None:
        raise DataError(f"evaluation data {ev_cfg.data} ({ev_cfg.split}) has no labels",
                        "pass --data with a labelled dataset")
    if tuple(eval_x.shape[1:]) != tuple(train_x.shape[1:]):
        raise DataError(f"evaluation images are {list(eval_x.shape[1:])} but the run's are "
                        f"{list(train_x.shape[1:])}", "pass --data with images of the run's "
                                                      "shape")
    if n_eval is not None and n_eval < len(eval_x):
        eval_x, eval_y = eval_x[:n_eval], eval_y[:n_eval]
        eval_proto = {**eval_proto, "n": n_eval, "subset": f"first {n_eval} of the split"}
    return ProbeData(train_x, train_y, eval_x, eval_y, train_proto, eval_proto, reason)
