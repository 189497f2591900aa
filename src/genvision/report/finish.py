"""Finishing a trained run: its sample grids, then its report.

The run layer (:mod:`genvision.runs.start`) trains and records a run but sits below the
report, so it cannot write ``report.html``; this module, one layer up, does both steps.
``genvision train`` and ``genvision report`` call :func:`finish_run`, ``genvision
evaluate`` the cheap :func:`refresh_report`; the Python API
``genvision.train_run`` is :func:`train_run` here: the run-level one, then the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..data.config import DataConfig
from ..models.base import GenerativeModel
from ..runs import start as runs
from ..train import TrainConfig, TrainData, TrainResult
from ..train.distributed import is_main
from .html import write_report


def finish_run(run_dir: str | Path, n_samples: int = 64) -> Path:
    """Write samples.png, the model's figures and report.html for a trained run.

    A task run has no unconditional sampler: its report is written from its stages.

    Returns:
        The path of report.html.
    """
    runs.write_samples(run_dir, n_samples)
    return write_report(run_dir)


def refresh_report(run_dir: str | Path) -> Path:
    """Re-render ``report.html`` from what the run folder holds now, e.g. after
    ``genvision evaluate`` merged new numbers into metrics.json: no sampling, no training,
    and the loss curves and progress strip on disk are reused (a full rewrite with new
    sample grids is :func:`finish_run`, ``genvision report``).

    Returns:
        The path of report.html.
    """
    return write_report(run_dir, redraw=False)


def train_run(model: GenerativeModel, data: TrainData, train_cfg: TrainConfig,
              out: str | Path, *, data_config: DataConfig | str | None = None,
              protocol: dict[str, Any] | None = None, resume: bool = False,
              report: bool = True) -> TrainResult:
    """Train ``model`` from Python into a run directory with ``run.json`` and a report.

    :func:`genvision.runs.start.train_run` (the loop plus the run record), then, on the
    main process, :func:`finish_run` unless ``report`` is false. The arguments are those
    of the run-level function; ``report``: write samples.png, the figures and report.html
    when done.

    Example:
        >>> genvision.train_run(model, TrainData(x), TrainConfig(steps=100), "runs/mine",
        ...                     data_config="mnist5k")          # doctest: +SKIP
    """
    result = runs.train_run(model, data, train_cfg, out, data_config=data_config,
                            protocol=protocol, resume=resume)
    if is_main() and report:
        finish_run(out)
    return result
