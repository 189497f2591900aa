"""Score in-distribution test images and outlier sets under a likelihood run.

Data flows one way: sets (:mod:`.data`) -> log p(x) under the run and the background
(:mod:`.likelihood`) -> scores (:mod:`.scores`) -> AUROC / FPR@95%TPR (:mod:`.metrics`).
Every input is validated (sets loaded, sizes checked) before any model is trained or run.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor

from ...errors import UserError
from ...models.base import GenerativeModel, load
from ...runs.start import read_run
from ...train.device import resolve_device
from . import data as sets
from .background import DEFAULT_STEPS, auto_background, run_background
from .likelihood import log_prob_kwargs, log_probs, protocol, refuse_without_likelihood
from .metrics import detection_metrics
from .per_image import background_strength, independent_pixel_nll, ratio_vs_nll
from .scores import batch_typicality, nll_bits, ratio_score, typicality_score

SCORES = {
    "nll": "NLL in bits/dim (higher = outlier)",
    "ratio": "-(log p_model - log p_background) in bits/dim (Ren et al. 2019)",
    "typicality": "|NLL - mean training NLL| per image, M = 1 (Nalisnick et al. 2019)",
    "typicality_batch": "|mean NLL of a batch of M - mean training NLL|, disjoint batches",
}


@dataclass
class OutlierOptions:
    """Options of ``genvision outliers`` (the CLI flags are derived from these fields)."""

    ood: str = field(default="faces,digits,noise", metadata={
        "help": "comma list of outlier sets: faces, digits, noise, noise:P, blank, any dataset "
                "spec (idx:PATH, folder:PATH, ...); LABEL=SPEC names a set in the table and "
                "figures (e.g. mnist-test=idx:DIR)"})
    background: str = field(default="auto", metadata={
        "help": "background model of the likelihood ratio: auto (train a local PixelCNN into "
                "OUT/background, reused later), a run directory, or none"})
    background_steps: int = field(default=DEFAULT_STEPS, metadata={
        "help": "training steps of the auto background (trained once into OUT/background "
                "and reused; a few minutes for 8-bit 28x28 images on a CPU); the result warns "
                "when the background is too weak for the ratio (then raise this, or pass a "
                "trained likelihood run with --background RUN)"})
    resize: bool = field(default=False, metadata={
        "help": "resize outlier sets of another size (keep aspect, pad black)"})
    n: int = field(default=2000, metadata={
        "help": "images per set: the first n (in-distribution and OOD sets)"})
    n_train: int | None = field(default=None, metadata={
        "help": "training images for the typicality entropy estimate (default: n)"})
    typicality_m: int = field(default=10, metadata={
        "help": "batch size M of the batch typicality test"})
    k: int | None = field(default=None, metadata={
        "help": "importance samples of bound models (IWAE-k; default the model's, 1000 for "
                "a VAE). The cost grows with k: every image takes k decoder passes, so a "
                "VAE at k=1000 on the default sets takes tens of minutes on a CPU; --k 100 "
                "is about 10x faster for a slightly looser bound, and a smaller --n is "
                "faster still"})
    in_data: str = field(default="auto", metadata={
        "help": "in-distribution images: auto (the official MNIST test split for mnist5k/"
                "mnist runs when the download cache holds it, else the run's own test split "
                "when held out from training; refused when there is none) or a spec such as "
                "mnist or idx:DIR"})
    in_split: str = field(default="test", metadata={"help": "split of --in-data"})
    batch_size: int = field(default=100, metadata={"help": "images per log p(x) batch"})
    seed: int = field(default=0, metadata={"help": "seed of estimator noise and batching"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda"})


@dataclass
class Scored:
    """One set with its per-image scores (float64 [N]) and per-batch typicality, its
    images x [N, C, H, W] (for the gallery) and, with a background, the background's
    log p(x) in nats [N]."""

    name: str
    protocol: dict[str, Any]
    scores: dict[str, Tensor]
    nll_bits: Tensor
    x: Tensor | None = None
    log_p_background: Tensor | None = None


def check_options(opts: OutlierOptions) -> None:
    if opts.n < 1 or (opts.n_train is not None and opts.n_train < 1):
        raise UserError("--n and --n-train must be >= 1", "pass positive counts")
    if opts.typicality_m < 1 or opts.batch_size < 1 or opts.background_steps < 1:
        raise UserError("--typicality-m, --batch-size and --background-steps must be >= 1",
                        "pass positive values")
    if opts.typicality_m > opts.n:
        raise UserError(f"--typicality-m {opts.typicality_m} is larger than --n {opts.n}: "
                        "the batch typicality test would have no batch of that size",
                        f"pass --typicality-m {opts.n} or less, or a larger --n")


def check_batches(sets_: list[sets.ScoredSet], m: int) -> None:
    """Every scored set must fill at least one typicality batch of ``m`` images."""
    small = min(sets_, key=lambda ds: len(ds.x))
    if len(small.x) < m:
        raise UserError(f"--typicality-m {m} is larger than the {len(small.x)} images of set "
                        f"{small.name}", f"pass --typicality-m {len(small.x)} or less, or "
                                         f"drop {small.name}")


def _load_sets(info: dict[str, Any], opts: OutlierOptions):
    names = sets.check_ood_names(opts.ood)
    in_dist = sets.in_distribution(info, opts.in_data, opts.in_split, opts.n)
    train = sets.training_reference(info, opts.n_train or opts.n, opts.seed)
    ood = [sets.ood_set(name, info, resize=opts.resize, n=opts.n) for name in names]
    return in_dist, train, ood


def _background(opts: OutlierOptions, info: dict[str, Any], model: GenerativeModel,
                out: Path):
    if opts.background == "none":
        return None, None
    if opts.background == "auto":
        bg, proto = auto_background(info, out, opts.background_steps)
    else:
        bg, proto = run_background(opts.background, model)
    return bg.to(model.device), proto


def _score(ds: sets.ScoredSet, model: GenerativeModel, bg: GenerativeModel | None,
           train_mean: float, opts: OutlierOptions) -> Scored:
    dims = model.config.dims
    lp = log_probs(model, ds.x, k=opts.k, seed=opts.seed, batch_size=opts.batch_size,
                   desc=f"log p(x) {ds.name}")
    nll = nll_bits(lp, dims)
    scores = {"nll": nll, "typicality": typicality_score(nll, train_mean),
              "typicality_batch": batch_typicality(nll, train_mean, opts.typicality_m,
                                                   opts.seed)}
    lp_bg = None
    if bg is not None:
        lp_bg = log_probs(bg, ds.x, seed=opts.seed, batch_size=opts.batch_size,
                          desc=f"background {ds.name}")
        scores["ratio"] = ratio_score(lp, lp_bg, dims)
    return Scored(ds.name, ds.protocol, scores, nll, ds.x, lp_bg)


def _strength(model: GenerativeModel, ref: Scored, train: sets.ScoredSet
              ) -> dict[str, Any] | None:
    """The background check on the in-distribution images (discrete data only: an
    independent-pixel mass and a density are not comparable)."""
    kind = model.config.data_kind
    if ref.log_p_background is None or kind not in ("binary", "grey8", "rgb8"):
        return None
    dims = model.config.dims
    nll_model = ref.nll_bits * dims * math.log(2)
    indep = independent_pixel_nll(train.x, ref.x, 2 if kind == "binary" else 256)
    return background_strength(nll_model, -ref.log_p_background, indep)


def _summary(s: Scored) -> dict[str, Any]:
    out = {"n": len(s.nll_bits), "nll_bits_mean": float(s.nll_bits.mean()),
           "nll_bits_std": float(s.nll_bits.std()) if len(s.nll_bits) > 1 else 0.0}
    if "ratio" in s.scores:
        out["ratio_bits_mean"] = float(s.scores["ratio"].mean())
    return out


def detect_outliers(run_dir: str | Path, opts: OutlierOptions, out: Path,
                    say: Callable[[str], None] | None = None
                    ) -> tuple[dict[str, Any], list[Scored]]:
    """Score the sets and compute every metric.

    ``say`` (e.g. ``print``) is told, before any model runs, which in-distribution images
    are used and why.

    Returns:
        (result, scored): ``result`` is the JSON-ready record (every number with its
        protocol); ``scored`` holds [in-distribution, training reference, *OOD sets].
    """
    check_options(opts)
    info = read_run(run_dir)
    model = load(run_dir, device=resolve_device(opts.device))
    refuse_without_likelihood(model)
    log_prob_kwargs(model, opts.k, opts.seed, model.device)  # refuses --k early
    in_dist, train, ood = _load_sets(info, opts)  # every input error before any work
    check_batches([in_dist, *ood], opts.typicality_m)
    if say is not None:
        warn = in_dist.protocol.get("training_images")
        say(f"in-distribution: {in_dist.protocol['chosen_because']} "
            f"({len(in_dist.x)} images)" + (f"; {warn}" if warn else ""))
    bg, bg_proto = _background(opts, info, model, out)
    train_nll = nll_bits(log_probs(model, train.x, k=opts.k, seed=opts.seed,
                                   batch_size=opts.batch_size, desc="log p(x) train"),
                         model.config.dims)
    train_scored = Scored(train.name, train.protocol, {}, train_nll, train.x)
    train_mean = float(train_nll.mean())
    scored = [_score(ds, model, bg, train_mean, opts) for ds in (in_dist, *ood)]
    scored.insert(1, train_scored)
    ref = scored[0]
    median_in = float(ref.nll_bits.median())
    result: dict[str, Any] = {
        "run": str(run_dir), "model": model.name,
        "likelihood": protocol(model, opts.k),
        "options": dataclasses.asdict(opts),
        "scores": {k: v for k, v in SCORES.items() if k != "ratio" or bg is not None},
        "typicality_m": opts.typicality_m,
        "train_mean_nll_bits": train_mean,
        "background": bg_proto,
        "convention": "outliers are the positive class; every score is higher = more "
                      "anomalous; FPR@95%TPR = share of in-distribution images flagged at "
                      "the threshold that flags 95% of the outliers",
        "in_distribution": {"name": ref.name, "protocol": ref.protocol, **_summary(ref)},
        "train_reference": {"protocol": train.protocol, **_summary(train_scored)},
        "ood": {},
    }
    for s in scored[2:]:
        metrics = {name: detection_metrics(ref.scores[name], s.scores[name])
                   for name in s.scores}
        result["ood"][s.name] = {
            "protocol": s.protocol, **_summary(s),
            # the known failure: outliers the model finds MORE likely than typical test data
            "share_more_likely_than_median_in": float((s.nll_bits < median_in).double().mean()),
            "metrics": metrics}
    strength = _strength(model, ref, train)
    result["background_strength"] = strength
    result["warnings"] = [w for w in (strength and strength["warning"],
                                      ratio_vs_nll(result["ood"], strength and
                                                   strength["share"])) if w]
    return result, scored
