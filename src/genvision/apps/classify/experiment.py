"""Run the comparison: every classifier on every training-set size, scored on the test set.

The sizes of a learning curve are nested, class-balanced subsets (see
:func:`.data.balanced_order`), all drawn with one seed, so the curve isolates the effect of
the number of labelled images (Ng & Jordan 2002 compare naive Bayes and logistic regression
exactly this way).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor

from ...errors import UserError
from ...progress import display_kind, progress_bar
from .classifiers import Classifier
from .data import TaskData, training_subset
from .metrics import scores


@dataclass
class CurveResult:
    """Rows of (classifier, n_train) scores, and the test predictions at the largest size.

    Attributes:
        rows: one dict per (size, classifier): scores, times and the classifier protocol.
        final_log_proba: classifier -> float32 [N_test, K] log p(y|x) at the largest size.
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    final_log_proba: dict[str, Tensor] = field(default_factory=dict)


def parse_sizes(text: str) -> list[int | None]:
    """``"10,30,all"`` -> [10, 30, None] (None = every training image)."""
    out: list[int | None] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if part == "all":
            out.append(None)
        elif part.isdigit() and int(part) > 0:
            out.append(int(part))
        else:
            raise UserError(f"bad training size {part!r}",
                            "give positive integers and/or 'all', comma-separated")
    if not out:
        raise UserError("no training sizes given", "e.g. --curve 10,30,100,all")
    return out


def _timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, wall seconds, process CPU seconds) of ``fn()``."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def run_curve(data: TaskData, names: list[str], sizes: list[int | None], seed: int,
              make: Callable[[str, int | None], Classifier],
              progress: bool | None = None) -> CurveResult:
    """Fit and score every classifier at every size.

    Args:
        data: the task's train/test images. names: classifier names. sizes: training-set
            sizes (None = all). seed: subset draw and every classifier's training seed.
        make: ``make(name, n) -> Classifier`` builds a fresh classifier.
        progress: show progress (default: a bar in a terminal or notebook; True shows
            plain periodic lines where it is not); without a bar each fit prints a line
            to stderr (unless ``progress`` is False), so a long comparison is never
            silent in a log file or CI.

    Returns:
        :class:`CurveResult`; sizes above the available images are run once as "all".
    """
    n_all = len(data.y_train)
    actual = sorted({n_all if s is None or s >= n_all else s for s in sizes})
    result = CurveResult()
    jobs = [(n, name) for n in actual for name in names]
    # default: a bar where one draws (a terminal, a notebook); per-fit lines elsewhere
    use_bar = display_kind(sys.stderr, True) != "plain" if progress is None else progress
    lines = progress is None and not use_bar
    bar = progress_bar(jobs, disable=not use_bar, unit="fit", dynamic_ncols=True)
    t_start = time.perf_counter()
    for i, (n, name) in enumerate(bar, 1):
        bar.set_description(f"{name} n={n}")
        if lines:
            print(f"classify [{i}/{len(jobs)}]: fitting {name} on {n} images "
                  f"({time.perf_counter() - t_start:.0f} s so far)", file=sys.stderr, flush=True)
        x, y = training_subset(data, n, seed)
        clf = make(name, n)
        _, fit_s, fit_cpu = _timed(lambda: clf.fit(x, y, seed))  # noqa: B023 (called now)
        log_proba, pred_s, pred_cpu = _timed(lambda: clf.predict_log_proba(data.x_test))  # noqa: B023
        if lines:
            print(f"classify [{i}/{len(jobs)}]: {name} n={n} fitted in {fit_s:.1f} s, scored "
                  f"in {pred_s:.1f} s", file=sys.stderr, flush=True)
        result.rows.append({"classifier": name, "kind": clf.kind, "n_train": n,
                            "all_images": n == n_all, **scores(log_proba, data.y_test),
                            "fit_s": round(fit_s, 2), "fit_cpu_s": round(fit_cpu, 2),
                            "predict_s": round(pred_s, 2), "predict_cpu_s": round(pred_cpu, 2),
                            "protocol": clf.protocol()})
        if n == actual[-1]:
            result.final_log_proba[name] = log_proba
    bar.close()
    return result


def keep_dir_for(out: Path | None, name: str, n: int | None) -> Path | None:
    """Where a generative model's training run is kept with --keep-models (None: not kept)."""
    return None if out is None else out / "models" / f"{name}-n{n if n else 'all'}"
