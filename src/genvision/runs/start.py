"""A training run from start to its sample grids: the glue between data, model and loop.

Data flows one way (see the guide): ``DataConfig -> data.prepare -> model config ->
train.train -> checkpoint -> samples/figures``; the report sits a layer above and is
written by :func:`genvision.report.finish.finish_run` (``genvision train`` calls it after
training). This module only wires those pieces; each lives in its own package. The files
of a run directory are named by :mod:`genvision.runs.layout`; ``run.json`` is a
:class:`~genvision.runs.records.RunInfo`.

:func:`train_run` is the loop plus the run record, so a run trained from Python is
evaluated, reported and compared like one of ``genvision train``.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import torch

from .. import dataclass_config as cfg
from ..data import prepare
from ..data.config import DataConfig
from ..errors import UserError
from ..grids import save_grid
from ..models.base import GenerativeModel, get_model_class
from ..models.image_to_image import ImageTaskModel
from ..train import TrainConfig, TrainData, TrainResult, train
from ..train.loop import check_training
from .claim import OnTrainStart, check_new_run, claimed_out, replaceable, say_replacing
from .layout import RunLayout
from .load import load
from .records import RunInfo, read_run_info, write_run_info
from .run_config import write_run_config

SAMPLE_SEED = 1234  # fixed so successive report grids of one run are comparable


@dataclasses.dataclass
class RunSpec:
    """Everything needed to start (or rebuild) a run."""

    model: str
    model_overrides: dict[str, Any]
    train: TrainConfig
    data: DataConfig
    conditional: bool = False


def _build(spec: RunSpec):
    """Prepare the data and the model for ``spec``; returns (model, TrainData, protocol)."""
    model_cls = get_model_class(spec.model)
    if issubclass(model_cls, ImageTaskModel):
        raise UserError(f"{spec.model} is an image-to-image model, trained by its task",
                        "use `genvision superres train` or `genvision colorize train`")
    kind = model_cls.input_kind(spec.model_overrides)
    train_set = prepare(spec.data, kind, supported=model_cls.supported_data_kinds)
    if train_set.data_kind not in model_cls.supported_data_kinds:
        raise UserError(
            f"{spec.model} cannot model {train_set.data_kind} data from {spec.data.data}",
            f"use data of kind {' or '.join(model_cls.supported_data_kinds)} "
            "(e.g. --binarize dynamic) or another model option")
    num_classes = 0
    if spec.conditional:
        if train_set.y is None:
            raise UserError(f"--conditional needs labels but {spec.data.data} has none",
                            "use a labelled dataset (e.g. mnist5k, digits, folder: with "
                            "class sub-folders) or drop --conditional")
        num_classes = train_set.num_classes
    c, h, w = train_set.x.shape[1:]
    model_cfg = cfg.from_dict(model_cls.config_class, {
        **spec.model_overrides, "channels": int(c), "image_size": (int(h), int(w)),
        "num_classes": num_classes, "data_kind": train_set.data_kind,
        "seed": spec.train.seed,
    }, what=f"{spec.model} option")
    torch.manual_seed(model_cfg.seed)
    model = model_cls(model_cfg)
    # the validation images get the kind the training images got (chosen from the pixels)
    val = _validation_set(spec, train_set.data_kind)
    data = TrainData(x=train_set.x, y=train_set.y if num_classes else None,
                     transform=train_set.batch_transform,
                     val_x=None if val is None else val.x,
                     val_y=None if (val is None or not num_classes) else val.y)
    protocol = {**train_set.protocol, "kind_reason": train_set.kind_reason}
    if train_set.train.class_names:  # so `sample --label NAME` can read them back
        protocol["class_names"] = list(train_set.train.class_names)
    return model, data, protocol


def _validation_set(spec: RunSpec, kind: str):
    """The validation split of the same source, when training on the train split."""
    if spec.data.split != "train":
        return None
    try:
        return prepare(dataclasses.replace(spec.data, split="val"), kind, for_eval=True)
    except UserError:
        return None  # sources without a val split (e.g. a lone IDX file) train without one


def _run_info(model: GenerativeModel, train_cfg: TrainConfig, protocol: dict[str, Any], *,
              data_cfg: DataConfig | None = None, overrides: dict[str, Any] | None = None,
              conditional: bool = False, argv: list[str] | None = None,
              labels: torch.Tensor | None = None) -> RunInfo:
    if model.config.num_classes and labels is not None and bool((labels >= 0).all()):
        # (a negative label is refused with the other label checks, when training starts)
        # p(y) of the marginal likelihood log p(x) = log sum_y p(x|y) p(y) that
        # `genvision evaluate` reports beside a conditional model's log p(x|y)
        counts = torch.bincount(labels.reshape(-1).long(), minlength=model.config.num_classes)
        protocol = {**protocol, "label_counts": counts.tolist()}
    return RunInfo(
        model=model.name, family=model.family,
        model_config=cfg.to_dict(model.config), model_overrides=overrides or {},
        conditional=conditional, train_config=cfg.to_dict(train_cfg),
        data_config=cfg.to_dict(data_cfg) if data_cfg is not None else {}, data=protocol,
        num_parameters=model.num_parameters(), likelihood_kind=model.likelihood_kind,
        command=" ".join(argv if argv is not None else sys.argv))


def _train_new(model: GenerativeModel, data: TrainData, train_cfg: TrainConfig, out: Path,
               info: RunInfo, note: str | None = None) -> TrainResult:
    """Train a new run into ``out``: checked (options, data, budget; the directory) before
    anything is written, locked before run.json is, which is written when training really
    starts (see :mod:`.claim`)."""
    check_training(model, data, train_cfg)
    with claimed_out(out, check_new_run) as lock:
        if replaceable(out):
            say_replacing(out)
        def on_start() -> None:
            write_run_info(out, info)
            write_run_config(out, info)
            if note is not None:
                print(note, file=sys.stderr, flush=True)

        record = OnTrainStart(on_start)
        return train(model, data, train_cfg, out, run_info=info.to_dict(), callbacks=[record],
                     lock=lock)


def start(spec: RunSpec, out: str | Path, *, argv: list[str] | None = None):
    """Start a new run in ``out`` and train it. ``out`` must be absent, empty or a run
    without a checkpoint (replaced, in one line); see :mod:`.claim`.

    Writes no samples or report: :func:`genvision.report.finish.finish_run` does, after.
    Started from a command line (``argv`` given), its first line on stderr says which data
    kind the model sees and why (``--binarize auto`` decides it from the pixels).
    """
    out = Path(out)
    check_new_run(out)  # before the data is read: a refused --out fails fast
    model, data, protocol = _build(spec)
    info = _run_info(model, spec.train, protocol, data_cfg=spec.data,
                     overrides=spec.model_overrides, conditional=spec.conditional, argv=argv,
                     labels=data.y)
    # a command's first line once training really starts (a refused start prints only
    # its error): which pixels the model sees, and why
    note = None if argv is None else \
        f"data: {protocol.get('kind_reason') or protocol.get('data_kind')}"
    return _train_new(model, data, spec.train, out, info, note=note)


def train_run(model: GenerativeModel, data: TrainData, train_cfg: TrainConfig,
              out: str | Path, *, data_config: DataConfig | str | None = None,
              protocol: dict[str, Any] | None = None, resume: bool = False) -> TrainResult:
    """Train ``model`` from Python into a run directory that has a ``run.json``.

    The loop (:func:`genvision.train.train`) only writes checkpoints and the training
    log; this adds the run record, so ``genvision evaluate``/``report``/``info``/``compare``
    accept the run. It writes no sample grid or report: ``genvision.train_run``
    (:func:`genvision.report.finish.train_run`) does both, or call
    :func:`genvision.report.finish.finish_run` (or ``genvision.report.write_report(out)``
    for the page alone) afterwards.

    Args:
        model: any registered model, built by the caller.
        data: its training images [N, C, H, W] (and labels), see :class:`TrainData`.
        train_cfg: budgets and optimiser settings.
        out: the run directory; absent, empty or a run without a checkpoint (which is
            replaced) unless ``resume``; never a folder of other files.
        data_config: the dataset the images came from (a DataConfig or a dataset spec
            such as ``"mnist5k"``); ``evaluate`` scores on its test split. Without it the
            run records only the image shape, and ``evaluate`` needs ``--data``.
        protocol: the data protocol to record (default: that of ``data_config``).
        resume: continue the run in ``out`` (its run.json is kept).
    """
    out = Path(out)
    if isinstance(data_config, str):
        data_config = DataConfig(data=data_config)
    if resume:
        info = read_run_info(out)
        return train(model, data, train_cfg, out, resume=True, run_info=info.to_dict())
    check_new_run(out)
    if protocol is None and data_config is not None:
        protocol = prepare(data_config, model.config.data_kind, for_eval=True).protocol
    if protocol is None:
        protocol = {"source": "python", "shape": list(model.config.shape),
                    "num_classes": model.config.num_classes,
                    "data_kind": model.config.data_kind}
    info = _run_info(model, train_cfg, protocol, data_cfg=data_config,
                     conditional=bool(model.config.num_classes), argv=[], labels=data.y)
    return _train_new(model, data, train_cfg, out, info)


def read_run(run_dir: str | Path) -> dict[str, Any]:
    """The run.json of ``run_dir`` as a dict (see :func:`read_run_info` for the record)."""
    return read_run_info(run_dir).to_dict()


def resume(run_dir: str | Path, train_overrides: dict[str, Any], *,
           from_step: int | None = None):
    """Continue the run in ``run_dir`` with a new budget (and any other train options);
    ``from_step``: from that checkpoint (see :func:`genvision.train.rewind.rewind`).

    Like :func:`start`, writes no samples or report.
    """
    run_dir = Path(run_dir)
    info = read_run_info(run_dir)
    if info.is_task:
        raise UserError(f"{run_dir} is a {info.task} run",
                        f"continue it with `genvision {info.task} train --resume --out "
                        f"{run_dir} --method STAGE`")
    train_cfg = cfg.from_dict(TrainConfig, {**info.train_config, "steps": None,
                                            "epochs": None, "minutes": None,
                                            **train_overrides}, what="train option")
    # a field added since the run started keeps the value the run was trained with
    trained = info.model_config
    config_class = get_model_class(str(info.model)).config_class
    run_json = str(RunLayout(run_dir).run_json)
    for name in ("model_config", "model_overrides"):  # a damaged record, named as such
        try:
            cfg.check_values(config_class, getattr(info, name), where=run_json)
        except UserError as err:
            raise UserError(f"{name}: {err.problem}", "restore the file from a backup, or "
                            "train the run again") from None
    full = config_class.with_saved_before(trained)
    overrides = {**{k: full[k] for k in full.keys() - trained.keys()},
                 **info.model_overrides}
    data_cfg = cfg.from_dict(DataConfig, info.data_config, what="data option")
    scheme = (info.data.get("binarize") or {}).get("scheme")
    if data_cfg.binarize == "auto" and scheme in ("none", "static", "dynamic"):
        # the kind `auto` chose when the run started, whatever `auto` decides today
        data_cfg = dataclasses.replace(data_cfg, binarize=scheme)
    spec = RunSpec(model=str(info.model), model_overrides=overrides,
                   train=train_cfg, data=data_cfg, conditional=bool(info.conditional))
    model, data, _ = _build(spec)
    saved = cfg.to_dict(model.config)
    if {k: v for k, v in saved.items() if k in trained} != trained:
        raise UserError(f"the data of {run_dir} no longer matches its model "
                        "(shape or classes changed)", "restore the dataset or start a new run")
    return train(model, data, train_cfg, run_dir, resume=True, run_info=info.to_dict(),
                 from_step=from_step)


def write_samples(run_dir: str | Path, n_samples: int = 64) -> None:
    """Write samples.png and the model's figures (reconstructions, ...) for a trained run.

    A task run has no unconditional sampler: nothing is written (its report is drawn from
    its stages).
    """
    run_dir = Path(run_dir)
    layout = RunLayout(run_dir)
    info = read_run_info(run_dir)
    if info.is_task:
        return
    model = load(run_dir)
    gen = torch.Generator().manual_seed(SAMPLE_SEED)
    y = None
    if model.config.num_classes:
        y = torch.arange(n_samples) % model.config.num_classes
    with torch.no_grad():
        save_grid(model.sample(n_samples, y=y, generator=gen), layout.samples_png,
                  nrow=8 if not model.config.num_classes else model.config.num_classes)
        fig_data = _figure_batch(info)
        if fig_data is not None:
            xb, yb = fig_data
            if not model.config.num_classes:
                yb = None
            figures = model.figures(xb, yb, generator=torch.Generator().manual_seed(SAMPLE_SEED))
            for name, images in figures.items():
                save_grid(images, layout.figure(name), nrow=8)  # rows of 8 by protocol


def _figure_batch(info: RunInfo, n: int = 16):
    """A fixed batch of held-out (or training) images for reconstructions/interpolations."""
    if not info.data_config:
        return None  # a Python-API run trained on tensors of unknown origin
    data_cfg = cfg.from_dict(DataConfig, info.data_config, what="data option")
    kind = info.model_config.get("data_kind", "binary")
    for split in ("val", data_cfg.split):
        try:
            prepared = prepare(dataclasses.replace(data_cfg, split=split), kind, for_eval=True)
        except UserError:
            continue
        # evenly spaced, not the first n: some sources (mnist5k) are sorted by class
        idx = torch.linspace(0, prepared.x.shape[0] - 1, min(n, prepared.x.shape[0])).long()
        y = prepared.y[idx] if prepared.y is not None else None
        return prepared.x[idx], y
    return None
