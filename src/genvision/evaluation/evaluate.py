"""``genvision evaluate``: score a trained model on a dataset split, stamped with its protocol.

Two kinds of result entry, each written with every setting that changes its numbers:

* ``likelihood`` (models with a density): test negative log-likelihood in nats per image and
  bits/dim, with the estimator (exact, ELBO, IWAE-k), the dataset, split, number of images
  and the binarisation used, and what it is of (``quantity``): a class-conditional model
  gets two entries, -log p(x|y) given each image's label and -log p(x) = -log sum_y
  p(x|y) p(y) over its labels (p(y): the training label frequencies); a model whose NLL
  has named parts (``likelihood_terms``: a VQ-VAE's distortion and rate) adds their means
  as ``terms_nats``;
* ``samples`` (every model): FID, KID, precision/recall, density/coverage, CAS and the
  memorisation check on generated images (:mod:`genvision.evaluate_samples`).

Results are merged into ``RUN/metrics.json`` keyed by kind, protocol, seed and checkpoint
step, so re-running the same evaluation updates its entry and a different protocol adds one.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch

from .. import dataclass_config as cfg
from ..data import prepare_eval
from ..data.config import DataConfig
from ..data.sources import splits_overlap
from ..errors import UserError
from ..metrics.likelihood import (
    CONDITIONAL,
    MARGINAL,
    UNCONDITIONAL,
    conditioning_protocol,
    estimator_kwargs,
    label_log_prior,
    log_prob_kwargs,
    marginal_log_prob,
    nll_summary,
)
from ..models.base import GenerativeModel, load
from ..models.sampling import (
    SampleRNG,
    SamplerOptions,
    make_sampler,
    resolve_sampler,
    sampler_protocol,
)
from ..progress import progress_bar
from ..runs.layout import RunLayout
from ..runs.records import entry_kind, merge_evaluation, read_run_info
from ..storage import refuse_link
from ..train.checkpoint import latest_checkpoint, list_checkpoints
from ..train.device import resolve_device
from .samples import SAMPLE_METRICS, SampleEvalSettings, describe_samples, evaluate_samples

#: every name ``--metrics`` accepts
ALL_METRICS = ("nll", *SAMPLE_METRICS)


@dataclasses.dataclass
class EvalOptions:
    metrics: str = dataclasses.field(
        default="auto", metadata={"help": "comma list of nll,fid,kid,pr,dc,cas,mem, or all; "
                                          "auto = every one that applies to the model"})
    data: str | None = dataclasses.field(
        default=None, metadata={"help": "dataset to score on (default: the run's own)"})
    split: str = dataclasses.field(default="test", metadata={"help": "split to score"})
    n: int | None = dataclasses.field(
        default=None, metadata={"help": "use only the first N images of the split"})
    samples: int | None = dataclasses.field(
        default=None, metadata={"help": "generated images for sample metrics (default: as "
                                        "many as real images)"})
    k: int | None = dataclasses.field(
        default=None, metadata={"help": "size of the likelihood estimator: importance "
                                        "samples (vae IWAE-k, flow noise samples), timesteps "
                                        "(diffusion bound), AIS runs (rbm)"})
    ais_betas: int | None = dataclasses.field(
        default=None, metadata={"help": "intermediate distributions of an AIS estimate "
                                        "(rbm; default: the run's --ais-betas)"})
    marginal: bool = dataclasses.field(
        default=True, metadata={"help": "class-conditional models: also -log p(x) = -log "
                                        "sum_y p(x|y) p(y) (one more pass per class)"})
    features: str = dataclasses.field(
        default="auto", metadata={"help": "feature network: auto (genvision's classifier of the "
                                          "run's data, trained once and cached), a directory "
                                          "from `genvision features train`, or inception:PATH"})
    pr_k: int = dataclasses.field(
        default=3, metadata={"help": "nearest neighbour k of precision/recall, density/coverage"})
    kid_subsets: int = dataclasses.field(default=100, metadata={"help": "KID subsets"})
    kid_subset_size: int | None = dataclasses.field(
        default=None, metadata={"help": "images per KID subset (default min(1000, n/2))"})
    batch_size: int = dataclasses.field(default=100, metadata={"help": "images per batch"})
    seed: int = dataclasses.field(default=0, metadata={
        "help": "seed of the estimator noise; generated image i uses seed SEED + i"})
    sampler: str | None = dataclasses.field(
        default=None, metadata={"help": "the model's sampler for sample metrics (default: its "
                                        "first; an unknown name lists them)"})
    #: ``key=value`` sampler options; the CLI fills it from repeated --sampler-opt flags
    sampler_opts: tuple[str, ...] = dataclasses.field(default=(), metadata={"cli": False})
    device: str = dataclasses.field(default="auto", metadata={"help": "auto, cpu, cuda"})


def _eval_config(info: dict[str, Any], opts: EvalOptions) -> DataConfig:
    """The run's data config, pointed at ``--data`` when given."""
    data_cfg = cfg.from_dict(DataConfig, info["data_config"], what="data option")
    return dataclasses.replace(data_cfg, data=opts.data) if opts.data else data_cfg


def _eval_data(info: dict[str, Any], opts: EvalOptions, kind: str):
    """The evaluation images [N, C, H, W], labels and their protocol.

    Binary models get the split statically binarised (whole split, file order) before the
    first ``n`` are kept; continuous models get dequantisation noise seeded by ``--seed``.
    """
    data_cfg = _eval_config(info, opts)
    prepared = prepare_eval(data_cfg, opts.split, model_data_kind=kind, n=opts.n)
    x = prepared.x
    if prepared.batch_transform is not None:
        x = prepared.batch_transform(x, torch.Generator().manual_seed(opts.seed))
        prepared.protocol["dequantize_seed"] = opts.seed
    return x, prepared.y, prepared.protocol


def evaluate_nll(model: GenerativeModel, x: torch.Tensor, y: torch.Tensor | None,
                 opts: EvalOptions, *, device: torch.device, progress: bool = True
                 ) -> torch.Tensor:
    """log p(x) in nats for every image, [N], computed in batches (showing progress)."""
    kwargs = log_prob_kwargs(model, opts.k, opts.seed, device, betas=opts.ais_betas)
    if "generator" not in kwargs:
        torch.manual_seed(opts.seed)
    out = []
    with torch.no_grad():
        for i in progress_bar(range(0, x.shape[0], opts.batch_size), desc="log-likelihood",
                              unit="batch", leave=False, disable=not progress):
            xb = x[i:i + opts.batch_size].to(device)
            yb = None if y is None else y[i:i + opts.batch_size].to(device)
            out.append(model.log_prob(xb, yb, **kwargs).double().cpu())
    return torch.cat(out)


def evaluate_terms(model: GenerativeModel, x: torch.Tensor, y: torch.Tensor | None,
                   opts: EvalOptions, *, device: torch.device) -> dict[str, float]:
    """Means over the images of the model's ``likelihood_terms`` (nats per image)."""
    sums: dict[str, float] = {}
    with torch.no_grad():
        for i in range(0, x.shape[0], opts.batch_size):
            xb = x[i:i + opts.batch_size].to(device)
            yb = None if y is None else y[i:i + opts.batch_size].to(device)
            for name, value in model.likelihood_terms(xb, yb).items():
                sums[name] = sums.get(name, 0.0) + float(value.double().sum())
    return {name: total / x.shape[0] for name, total in sums.items()}


def sampling_speed(model: GenerativeModel, n: int = 64, *, device: torch.device,
                   sampler: SamplerOptions | None = None) -> float:
    """Images per second of ``model.sample`` for one batch of ``n`` (after a warm-up)."""
    y = torch.arange(n, device=device) % model.config.num_classes \
        if model.config.num_classes else None
    with torch.no_grad():
        model.sample(min(n, 4), y=None if y is None else y[:4],
                     generator=SampleRNG(range(min(n, 4))), sampler=sampler)
        t0 = time.perf_counter()
        model.sample(n, y=y, generator=SampleRNG(range(n)), sampler=sampler)
        if device.type == "cuda":
            torch.cuda.synchronize()
    return n / (time.perf_counter() - t0)


def parse_metrics(spec: str, model: GenerativeModel) -> list[str]:
    """The metric names ``--metrics`` asks for, in canonical order.

    ``auto`` = NLL when the model has a likelihood, the four sample-quality metrics and the
    memorisation check, and CAS for class-conditional models; ``all`` asks for every one
    (and so refuses a model that cannot provide one).
    """
    conditional = bool(model.config.num_classes)
    has_nll = model.likelihood_kind != "none"
    if spec == "auto":
        wanted = [m for m in ALL_METRICS
                  if (m != "nll" or has_nll) and (m != "cas" or conditional)]
        return wanted
    names = list(ALL_METRICS) if spec == "all" else [
        m.strip().lower() for m in spec.split(",") if m.strip()]
    unknown = [m for m in names if m not in ALL_METRICS]
    if unknown or not names:
        raise UserError(f"unknown metric(s) {', '.join(unknown) or repr(spec)}",
                        f"choose from {','.join(ALL_METRICS)} (or all, auto)")
    if "nll" in names and not has_nll:
        raise UserError(f"{model.name} has no likelihood, so nll cannot be evaluated",
                        "use sample metrics: --metrics fid,kid,pr,dc")
    if "cas" in names and not conditional:
        raise UserError("cas (classification accuracy score) needs a class-conditional model",
                        "train with --conditional or drop cas from --metrics")
    return [m for m in ALL_METRICS if m in names]


def training_overlap(info: dict[str, Any], opts: EvalOptions) -> str | None:
    """Why the images ``opts`` scores may be images the run trained on, or None.

    Overlap is decided by the data layer (:func:`genvision.data.sources.splits_overlap`):
    the same source and overlapping splits, e.g. a run trained on split ``all`` (or on
    ``test``) scored on split ``test``.
    """
    trained = _eval_config(info, EvalOptions())
    scored = _eval_config(info, opts)
    if not splits_overlap(trained.data, trained.split, scored.data, opts.split,
                          trained.split_seed, scored.split_seed):
        return None
    return f"the run trained on {trained.data} split {trained.split}"


def evaluate_run(run_dir: str | Path, opts: EvalOptions, *, progress: bool = True,
                 allow_training_images: bool = False) -> list[dict[str, Any]]:
    """Score the run's model and merge every result into ``run_dir/metrics.json``.

    Scoring images the run trained on is refused unless ``allow_training_images`` (the CLI
    sets it when ``--split`` is given explicitly); such results carry
    ``data.training_images`` (so they never merge with, or compare beside, held-out ones).

    Returns:
        The new entries: a ``likelihood`` one when ``nll`` was asked for (two for a
        class-conditional model: -log p(x|y), then -log p(x) unless ``marginal`` is off), a
        ``samples`` one when any sample metric was.
    """
    run_dir = Path(run_dir)
    run = read_run_info(run_dir)
    if run.is_task:
        raise UserError(f"{run_dir} is a {run.task} run: its models map images to images, "
                        "so likelihood and sample metrics do not apply",
                        f"score it with `genvision {run.task} compare {run_dir}`")
    refuse_link(RunLayout(run_dir).evaluations)  # before the work, not only when merging
    info = run.to_dict()
    device = resolve_device(opts.device)
    model = load(run_dir, device=device)
    sampler = resolve_sampler(model, make_sampler(model, opts.sampler, opts.sampler_opts))
    metrics = parse_metrics(opts.metrics, model)
    if opts.metrics == "auto" and opts.features == "auto" and not _labelled(info):
        # genvision's feature network is a classifier of the run's data: without labels
        # there is no feature space, so `auto` leaves the sample metrics out and says so
        metrics = [m for m in metrics if m == "nll"]
        print(f"note: sample metrics skipped: {info['data_config'].get('data')} has no labels "
              "to train a feature network on; pass --features inception:PATH or a feature "
              "network directory to get them", file=sys.stderr)
        if not metrics:
            raise UserError(f"nothing to evaluate for {model.name} on unlabelled data",
                            "pass --features inception:PATH (or a directory from `genvision "
                            "features train` on labelled data of the same size)")
    if opts.n is not None and opts.n < 1:
        raise UserError(f"--n must be positive, got {opts.n}", "pass --n 1 or more")
    if opts.samples is not None and opts.samples < 1:
        raise UserError(f"--samples must be positive, got {opts.samples}",
                        "pass --samples 1 or more")
    overlap = training_overlap(info, opts)
    if overlap and not allow_training_images:
        raise UserError(f"split {opts.split} of {_eval_config(info, opts).data} holds images "
                        f"{run_dir} trained on (it trained on split "
                        f"{info['data_config'].get('split')})",
                        f"score held-out images with --data SPEC, or pass --split {opts.split} "
                        "explicitly to score the training images knowingly")
    steps = _trained_steps(run_dir)
    results = []
    if "nll" in metrics:
        for result in _evaluate_likelihood(model, info, opts, device, sampler, progress):
            result["steps"] = steps
            _flag_training_images(result, overlap)
            merge_evaluation(run_dir, result)
            results.append(result)
    sample_metrics = [m for m in metrics if m in SAMPLE_METRICS]
    if sample_metrics:
        settings = SampleEvalSettings(
            metrics=sample_metrics, samples=opts.samples, features=opts.features,
            pr_k=opts.pr_k, kid_subsets=opts.kid_subsets, kid_subset_size=opts.kid_subset_size,
            batch_size=opts.batch_size, seed=opts.seed, sampler=sampler)
        result = evaluate_samples(model, info, _eval_config(info, opts), opts.split, opts.n,
                                  settings, device=device, progress=progress)
        result["steps"] = steps
        _flag_training_images(result, overlap)
        merge_evaluation(run_dir, result)
        results.append(result)
    return results


def evaluate_marginal_nll(model: GenerativeModel, x: torch.Tensor, log_prior: torch.Tensor,
                          opts: EvalOptions, *, device: torch.device,
                          progress: bool = True) -> torch.Tensor:
    """log p(x) = log sum_y p(x|y) p(y) of a class-conditional model, [N] float64.

    One pass of :func:`evaluate_nll` per label with p(y) > 0, every image given that label;
    each pass reseeds the estimator noise with ``opts.seed`` (common random numbers), which
    leaves each per-label estimate, and so the mixture, unbiased.
    """
    columns = torch.full((x.shape[0], log_prior.numel()), -math.inf, dtype=torch.float64)
    for label in range(log_prior.numel()):
        if math.isfinite(float(log_prior[label])):  # p(y) = 0 adds nothing: skip the pass
            y = torch.full((x.shape[0],), label, dtype=torch.int64)
            columns[:, label] = evaluate_nll(model, x, y, opts, device=device,
                                             progress=progress)
    return marginal_log_prob(columns, log_prior)


def _label_prior(info: dict[str, Any], num_classes: int, kind: str
                 ) -> tuple[torch.Tensor, dict[str, Any]]:
    """log p(y) [K] of a conditional run and its protocol: the training label counts
    recorded in run.json, else counted again from the run's training split (runs trained
    before the counts were recorded), else uniform (a run from Python without a dataset)."""
    counts = info.get("data", {}).get("label_counts")
    if counts is not None:
        try:
            return label_log_prior(counts, num_classes, "training labels, counted at train time")
        except (TypeError, ValueError):  # a damaged record: count them again below
            pass
    try:
        run_cfg = cfg.from_dict(DataConfig, info["data_config"], what="data option")
        y = prepare_eval(run_cfg, run_cfg.split, model_data_kind=kind).y
        return label_log_prior(torch.bincount(y, minlength=num_classes).tolist(), num_classes,
                               "training labels, counted at evaluation (the run did not "
                               "record them)")
    except (KeyError, TypeError, ValueError, RuntimeError, UserError):
        # no data config (a run from Python), its data gone, unlabelled or other labels
        return label_log_prior(None, num_classes, "uniform: the run recorded no training "
                                                  "labels and they could not be counted")


def _likelihood_entry(model: GenerativeModel, logp: torch.Tensor, lp_protocol: dict[str, Any],
                      protocol: dict[str, Any], opts: EvalOptions, seconds: float,
                      device: torch.device) -> dict[str, Any]:
    if protocol.get("dequantize"):
        # A density of y = (x*255 + u)/256 on [0, 1)^D becomes a bound on the 8-bit
        # likelihood: log P(x) >= E_u[log p(y)] - D ln 256 (Theis et al. 2016,
        # https://arxiv.org/abs/1511.01844), so it compares with discrete models' nats.
        logp = logp - model.config.dims * math.log(256)
        lp_protocol["dequantized"] = "log p(y) - D ln 256: a bound on the 8-bit likelihood"
    return {"kind": "likelihood"} | nll_summary(logp, model.config.dims, lp_protocol) | {
        "data": protocol, "split": opts.split, "time_s": round(seconds, 2),
        "seed": opts.seed, "device": str(device)}


def _evaluate_likelihood(model: GenerativeModel, info: dict[str, Any], opts: EvalOptions,
                         device: torch.device, sampler: SamplerOptions,
                         progress: bool = True) -> list[dict[str, Any]]:
    """The ``likelihood`` entries: NLL in nats/image and bits/dim with its protocol; for a
    class-conditional model -log p(x|y), then (unless ``--no-marginal``) -log p(x)."""
    kind = model.config.data_kind
    x, y, protocol = _eval_data(info, opts, kind)
    conditional = bool(model.config.num_classes)
    if not conditional:
        y = None
    model.check_input(x[:1], None if y is None else y[:1])
    base = model.likelihood_protocol(**estimator_kwargs(model, opts.k, opts.ais_betas))
    t0 = time.perf_counter()
    logp = evaluate_nll(model, x, y, opts, device=device, progress=progress)
    entries = [_likelihood_entry(
        model, logp, base | conditioning_protocol(CONDITIONAL if conditional else UNCONDITIONAL),
        protocol, opts, time.perf_counter() - t0, device)]
    if model.supports("likelihood_terms") and not protocol.get("dequantize"):
        entries[0]["terms_nats"] = evaluate_terms(model, x, y, opts, device=device)
    if conditional and opts.marginal:
        log_prior, prior = _label_prior(info, model.config.num_classes, kind)
        t0 = time.perf_counter()
        logp = evaluate_marginal_nll(model, x, log_prior, opts, device=device,
                                     progress=progress)
        marginal = base | conditioning_protocol(MARGINAL) | {
            "label_prior": prior,
            "marginal": f"log sum_y p(x|y) p(y) over {model.config.num_classes} labels"}
        if base.get("kind") == "bound":
            marginal["bound"] = ("per-label IWAE estimates mixed by p(y): an unbiased estimate "
                                 "of p(x), so a lower bound on log p(x) in expectation")
        elif base.get("kind") == "estimate":
            marginal["estimate"] = ("per-label estimates (one log Z_y each) mixed by p(y): "
                                    "still an estimate, not a bound")
        entries.append(_likelihood_entry(model, logp, marginal, protocol, opts,
                                         time.perf_counter() - t0, device))
    speed = round(sampling_speed(model, device=device, sampler=sampler), 1)
    for entry in entries:
        # the sampler only affects the speed, not the NLL: beside, not in, the protocol
        entry |= {"sampling_images_per_s": speed, "sampler": sampler_protocol(sampler)}
    return entries


def _flag_training_images(result: dict[str, Any], overlap: str | None) -> None:
    """Record in the data protocol that these numbers are on training images."""
    if overlap:
        result["data"] = {**result.get("data", {}), "training_images": overlap}


def _labelled(info: dict[str, Any]) -> bool:
    return bool(info.get("data", {}).get("num_classes"))


def _trained_steps(run_dir: Path) -> int | None:
    latest = latest_checkpoint(run_dir)
    return next((step for step, path in list_checkpoints(run_dir) if path == latest), None)


def describe(result: dict[str, Any]) -> str:
    """One human line: the numbers and their protocol."""
    if entry_kind(result) == "samples":
        return describe_samples(result)
    proto = result["protocol"]
    data = result["data"]
    quantity = proto.get("quantity", "-log p(x)")
    if proto.get("conditioning") == "marginal over labels":
        quantity += " (summed over labels)"
    binar = data.get("binarize") or "none"
    if isinstance(binar, dict):  # {"scheme": "static", "seed": 0}
        binar = " seed ".join(str(v) for v in binar.values() if v is not None)
    return (f"{data.get('source', '?')} {result['split']} split (n={result['n']}): "
            f"NLL {quantity} {result['nll_nats']:.2f} ± {result['nll_nats_stderr']:.2f} "
            f"nats/image{_terms_note(result)}, "
            f"{result['bits_per_dim']:.4f} bits/dim "
            f"[{proto.get('estimator', proto.get('kind'))}, binarisation: {binar}, "
            f"seed {result['seed']}, {result['time_s']:.0f} s]"
            + (f"\nwarning: {proto['warning']}" if proto.get("warning") else ""))


def _terms_note(result: dict[str, Any]) -> str:
    """`` (distortion 60.12 + rate 30.40)`` for an entry with named NLL terms."""
    terms = result.get("terms_nats") or {}
    return (" (" + " + ".join(f"{k} {v:.2f}" for k, v in terms.items()) + ")") if terms else ""
