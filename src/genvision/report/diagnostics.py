"""Warnings about a finished run, computed from its files when its page or summary is made.

The training loop records the warnings it can see while training (``metrics.jsonl`` lines
with ``split: "warning"``, e.g. a GAN whose discriminator wins). Some problems only show
once the run is evaluated or once its budget is known, so they are computed here, from
``run.json``, ``metrics.jsonl``, ``metrics.json`` and a task's ``compare/compare.json``,
every time the report or ``genvision info`` is written (nothing is stored, so a warning
disappears once the problem is fixed):

- **mode collapse**: recall below :data:`RECALL_COLLAPSE` in a sample evaluation
  (improved precision/recall, Kynkäänniemi et al. 2019, https://arxiv.org/abs/1904.06991:
  recall is the share of real images inside the manifold of the samples);
- **worse than the baseline**: a super-resolution model whose PSNR is below bicubic
  up-sampling's (on validation patches while training, or in ``compare``);
- **budget inside a warm-up**: training stopped before the learning-rate warm-up or a
  VAE's KL warm-up (Bowman et al. 2015, https://arxiv.org/abs/1511.06349) finished, so
  the model was never trained on its full objective.

Every reader tolerates missing or damaged files: a warning that cannot be computed is
simply not raised.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from ..runs.layout import RunLayout
from . import format as fmt
from .run import as_number, read_json_or_none, read_metrics, training_warnings

#: recall below this is reported as mode collapse
RECALL_COLLAPSE = 0.05
#: the baselines a task's ``compare`` scores beside the trained methods
_BASELINES = ("bicubic", "grey")


@dataclasses.dataclass(frozen=True)
class RunWarning:
    """One warning about a run.

    Attributes:
        source: ``training`` (the loop wrote it), ``evaluation`` (from metrics.json or a
            comparison) or ``budget`` (from the training budget and the configs).
        message: one sentence saying what is wrong and, where known, what to do.
        step: the training step it was raised at (training warnings), else None.
    """

    source: str
    message: str
    step: int | None = None


def run_warnings(run_dir: str | Path, run: dict[str, Any] | None = None,
                 records: list[dict] | None = None,
                 evaluations: list[dict] | None = None) -> list[RunWarning]:
    """Every warning about the run in ``run_dir``: training ones first, then budget, then
    evaluation ones. Pieces already read may be passed in (``run``: run.json as a dict,
    ``records``: metrics.jsonl lines, ``evaluations``: metrics.json entries)."""
    layout = RunLayout(run_dir)
    if run is None:
        run = read_json_or_none(layout.run_json)
        run = run if isinstance(run, dict) else {}
    if records is None:
        records = read_metrics(layout.metrics_log)
    if evaluations is None:
        data = read_json_or_none(layout.evaluations)
        found = data.get("evaluations") if isinstance(data, dict) else None
        evaluations = [e for e in found if isinstance(e, dict)] if isinstance(found, list) else []
    out = [RunWarning("training", msg, step) for step, msg in training_warnings(records)]
    out += budget_warnings(run, records)
    out += collapse_warnings(evaluations)
    out += baseline_warnings(run, read_json_or_none(layout.compare_files()["json"]))
    return out


def last_step(records: list[dict]) -> int | None:
    """The last training step logged in ``metrics.jsonl`` records (None: none logged)."""
    steps = [v for r in records if r.get("split", "train") == "train"
             and (v := as_number(r.get("step"))) is not None and math.isfinite(v)]
    return int(max(steps)) if steps else None


def budget_warnings(run: dict[str, Any], records: list[dict]) -> list[RunWarning]:
    """Training that stopped inside the learning-rate warm-up or a VAE's KL warm-up."""
    step = last_step(records)
    if step is None:
        return []
    train = run.get("train_config") if isinstance(run.get("train_config"), dict) else {}
    model = run.get("model_config") if isinstance(run.get("model_config"), dict) else {}
    out = []
    warm = as_number(train.get("warmup_steps"))
    if warm and step < warm:
        out.append(RunWarning("budget", (
            f"training stopped at step {step:,}, inside the {int(warm):,}-step learning-rate "
            f"warm-up: the model never trained at its full learning rate; train longer or "
            f"pass a smaller --warmup-steps")))
    kl_warm, beta = as_number(model.get("kl_warmup_steps")), as_number(model.get("beta"))
    if kl_warm and step < kl_warm and beta != 0:
        weight = (1.0 if beta is None else beta) * step / kl_warm
        out.append(RunWarning("budget", (
            f"training stopped at step {step:,}, inside the {int(kl_warm):,}-step KL warm-up "
            f"(the KL weight only reached {weight:.2g}): the model was trained on a weakened "
            f"bound, so its samples and NLL are not those of a VAE; train at least "
            f"{int(kl_warm):,} steps or pass a smaller --kl-warmup-steps")))
    return out


def collapse_warnings(evaluations: list[dict]) -> list[RunWarning]:
    """Sample evaluations whose recall is below :data:`RECALL_COLLAPSE`."""
    out = []
    for entry in evaluations:
        recall = as_number(entry.get("recall"))
        if recall is None or not recall < RECALL_COLLAPSE:
            continue
        precision = as_number(entry.get("precision"))
        also = f" (precision {fmt.fmt_number(precision)})" if precision is not None else ""
        out.append(RunWarning("evaluation", (
            f"mode collapse: recall {fmt.fmt_number(recall)}{also} is below "
            f"{RECALL_COLLAPSE}: the samples cover almost none of the real images; train "
            f"longer, lower the learning rate or try a conditional or self-conditioned "
            f"model")))
    return out


def baseline_warnings(run: dict[str, Any], comparison: Any) -> list[RunWarning]:
    """A task model that scores below its baseline (PSNR below bicubic up-sampling), on
    validation patches while training (a stage's ``val.psnr_gain``) or in ``compare``."""
    out = []
    stages = run.get("stages") if isinstance(run.get("stages"), dict) else {}
    for name, record in stages.items():
        val = record.get("val") if isinstance(record, dict) else None
        gain = as_number(val.get("psnr_gain")) if isinstance(val, dict) else None
        if gain is not None and gain < 0:
            out.append(RunWarning("evaluation", (
                f"stage {name}: PSNR on validation patches is {-gain:.2f} dB below bicubic "
                f"up-sampling: the model is worse than its baseline; train longer")))
    mean = comparison.get("mean") if isinstance(comparison, dict) else None
    if not isinstance(mean, dict):
        return out
    base_name = next((b for b in _BASELINES if isinstance(mean.get(b), dict)), None)
    if base_name is None:
        return out
    for metric, label in (("psnr_y", "PSNR (Y)"), ("psnr_rgb", "PSNR (RGB)"), ("psnr", "PSNR")):
        base = as_number(mean[base_name].get(metric))
        if base is None:
            continue
        for method, scores in mean.items():
            value = as_number(scores.get(metric)) if isinstance(scores, dict) else None
            if method in _BASELINES or value is None or not value < base:
                continue
            out.append(RunWarning("evaluation", (
                f"{method}: {label} {value:.2f} dB in the comparison is "
                f"{base - value:.2f} dB below the {base_name} baseline ({base:.2f} dB): "
                f"the model is worse than not learning at all; train longer")))
        break  # one PSNR flavour is enough
    return out
