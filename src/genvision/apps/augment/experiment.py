"""The augmentation experiment: one small CNN per (seed, arm), all on the same budget.

Arms (training sets of the classifier), for each seed's class-balanced draw of N real images:

* ``real`` -- the N real images;
* ``classic`` -- the same, with random shifts and rotations of every batch;
* ``generated`` -- the N real plus M samples of a conditional generator trained on them;
* ``generated+classic`` -- both.

Every CNN takes the same number of optimiser steps, so an arm cannot win by training longer;
the seed sets the real subset, the generator, the samples and the CNN alike.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ...progress import progress_bar
from ..classify.data import TaskData, balanced_order
from ..classify.generative import GenBudget
from ..classify.metrics import scores
from ..common.small_cnn import SmallCNN
from .classic import ShiftRotate
from .synthetic import synthetic_set

ARMS = ("real", "classic", "generated", "generated+classic")


@dataclass
class AugmentSettings:
    """What one ``genvision augment`` run does.

    Attributes:
        n: real labelled training images (class-balanced).
        seeds: repetitions (seeds ``seed``, ``seed + 1``, ...). seed: the first seed.
        generated: M synthetic images (default: N, so real and generated weigh the same).
        generator: ``vae`` or ``gated-pixelcnn``. gen_budget: its training budget.
        cnn_steps: optimiser steps of every CNN. arms: which arms to run.
        keep_dir: keep the generators' training runs here (None: temporary).
    """

    n: int
    seeds: int = 3
    seed: int = 0
    generated: int | None = None
    generator: str = "vae"
    gen_budget: GenBudget = field(default_factory=GenBudget)
    cnn_steps: int = 500
    arms: tuple[str, ...] = ARMS
    keep_dir: Path | None = None

    @property
    def m(self) -> int:
        return self.n if self.generated is None else self.generated


@dataclass
class AugmentResult:
    """Per-(seed, arm) rows, per-arm summaries, and the first seed's images for figures."""

    rows: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    real_examples: Tensor
    real_labels: Tensor
    generated_examples: Tensor | None
    generated_labels: Tensor | None


def _fit_score(x: Tensor, y: Tensor, data: TaskData, s: AugmentSettings, seed: int,
               classic: bool) -> dict[str, Any]:
    t0, c0 = time.perf_counter(), time.process_time()
    clf = SmallCNN.build(data.num_classes, data.shape)
    clf.fit(x, y, seed=seed, steps=s.cnn_steps, augment=ShiftRotate() if classic else None)
    out = scores(clf.predict_log_proba(data.x_test), data.y_test)
    return {**out, "train_images": len(x), "wall_s": round(time.perf_counter() - t0, 2),
            "cpu_s": round(time.process_time() - c0, 2)}


def run_augment(data: TaskData, s: AugmentSettings, progress: bool | None = None
                ) -> AugmentResult:
    """Run every arm for every seed and summarise accuracy over seeds.

    ``progress``: show progress over the fits (None: on, a bar on a terminal and plain lines
    in a log, where a run of several minutes would otherwise be silent).
    """
    rows: list[dict[str, Any]] = []
    real_ex = real_y = gen_ex = gen_y = None
    bar = progress_bar(total=s.seeds * len(s.arms), disable=progress is False, unit="fit",
                       dynamic_ncols=True)
    for seed in range(s.seed, s.seed + s.seeds):
        idx = torch.from_numpy(balanced_order(data.y_train, seed)[:s.n])
        x, y = data.x_train[idx], data.y_train[idx]
        gen_row: dict[str, Any] = {}
        if any(a.startswith("generated") for a in s.arms):
            bar.set_description(f"seed {seed}: {s.generator} generator")
            keep = None if s.keep_dir is None else s.keep_dir / f"{s.generator}-seed{seed}"
            t0, c0 = time.perf_counter(), time.process_time()
            xg, yg, _ = synthetic_set(s.generator, x, y, data.num_classes, s.m, s.gen_budget,
                                      seed, keep)
            gen_row = {"generator_wall_s": round(time.perf_counter() - t0, 2),
                       "generator_cpu_s": round(time.process_time() - c0, 2)}
            if gen_ex is None:
                gen_ex, gen_y = xg, yg
        if real_ex is None:
            real_ex, real_y = x, y
        for arm in s.arms:
            bar.set_description(f"seed {seed}: {arm}")
            xt, yt = (torch.cat([x, xg]), torch.cat([y, yg])) if arm.startswith("generated") \
                else (x, y)
            row = _fit_score(xt, yt, data, s, seed, classic=arm.endswith("classic"))
            rows.append({"arm": arm, "seed": seed, "n_real": s.n,
                         "n_generated": s.m if arm.startswith("generated") else 0,
                         **row, **(gen_row if arm.startswith("generated") else {})})
            bar.update(1)
    bar.close()
    return AugmentResult(rows, summarise(rows, s.arms), real_ex, real_y, gen_ex, gen_y)


def summarise(rows: list[dict[str, Any]], arms: tuple[str, ...]) -> list[dict[str, Any]]:
    """Per arm: mean and sample standard deviation (over seeds) of accuracy and log-loss,
    and the mean difference to ``real`` on the same seeds (paired)."""
    base = {r["seed"]: r["accuracy"] for r in rows if r["arm"] == "real"}
    out = []
    for arm in arms:
        rs = [r for r in rows if r["arm"] == arm]
        acc = [r["accuracy"] for r in rs]
        loss = [r["log_loss"] for r in rs]
        diff = [r["accuracy"] - base[r["seed"]] for r in rs if r["seed"] in base]
        out.append({"arm": arm, "seeds": len(rs), "accuracy_mean": statistics.fmean(acc),
                    "accuracy_std": statistics.stdev(acc) if len(acc) > 1 else 0.0,
                    "accuracy_min": min(acc), "accuracy_max": max(acc),
                    "log_loss_mean": statistics.fmean(loss),
                    "vs_real_mean": statistics.fmean(diff) if diff else None,
                    "vs_real_wins": sum(d > 0 for d in diff) if diff else None,
                    "classifier_cpu_s": round(sum(r["cpu_s"] for r in rs), 1)})
    return out
