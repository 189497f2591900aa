"""The one place that knows the file names of a run directory.

A run directory (``runs/NAME``) written by ``genvision train``, by ``genvision.train_run``
from Python or by a task's ``train`` (``genvision superres train``) holds::

    run.json          what was trained on what (a RunInfo, see records.py)
    config.toml       the resolved options, re-launchable (see run_config.py)
    metrics.jsonl     one line per logged training step (written by the loop)
    metrics.json      evaluations, each with its kind and protocol (EvalRecord)
    checkpoints/      step-NNNNNNNN/ checkpoints and the ``latest`` pointer
    samples/          sample grids written during training (step-NNNNNNNN.png)
    tensorboard/      TensorBoard event files of the training log (train/tracking.py)
    samples.png       the final sample grid; NAME.png: the model's other figures
    loss.png          the loss curves of the report
    report.html       the report page
    compare/          a task run's comparison (compare.md, compare.json, compare.png)
    STAGE/            a task run's stages (srresnet/, srgan/, regression/, gan/), each
                      laid out as a run of its own (metrics.jsonl, checkpoints/, ...)
    task.json         the run record of task runs written before run.json (read only)
    .lock             the training lock (train/lock.py); created before anything else

A directory *is a genvision run* (:func:`is_run_dir`) when it holds run.json or task.json,
or when it is absent or empty but for ``.lock``: only such a directory is ever written
as ``--out``, so a folder of the user's own files is never touched.

Every module above the training loop takes these names from here. The loop (one layer
below, which must not import upward) keeps its own constants for what it writes
(``checkpoints``, ``latest``, ``metrics.jsonl``, ``samples/`` in train/checkpoint.py and
train/loop.py), as does ``models.base.resolve_model_dir``; ``tests/test_runs_layout.py``
checks they equal the ones here and keeps the literal names out of the rest of ``src``.
"""

from __future__ import annotations

import os
from pathlib import Path

RUN_JSON = "run.json"
RUN_TOML = "config.toml"
TENSORBOARD_DIR = "tensorboard"  # train/tracking.py's own constant must equal it
LOCK_FILE = ".lock"  # train/lock.py's own constant must equal it
TASK_JSON = "task.json"  # the record of task runs written before run.json; read only
METRICS_LOG = "metrics.jsonl"
CHECKPOINTS = "checkpoints"
LATEST = "latest"
EVALUATIONS = "metrics.json"
SAMPLES_DIR = "samples"
SAMPLES_PNG = "samples.png"
PROGRESS_STRIP = "progress_strip.png"  # under samples/
LOSS_PNG = "loss.png"
REPORT_HTML = "report.html"
COMPARE_DIR = "compare"
COMPARE_MD, COMPARE_JSON, COMPARE_PNG = "compare.md", "compare.json", "compare.png"
#: top-level PNGs that are not model figures (the report shows them in their own sections)
NOT_FIGURES = (SAMPLES_PNG, LOSS_PNG)


class RunLayout:
    """Paths of one run directory. Nothing is created or read here.

    Example:
        >>> RunLayout("runs/vae").evaluations        # doctest: +SKIP
        PosixPath('runs/vae/metrics.json')
    """

    def __init__(self, path: str | os.PathLike):
        self.root = Path(path)

    def __repr__(self) -> str:
        return f"RunLayout({str(self.root)!r})"

    @property
    def run_json(self) -> Path:
        return self.root / RUN_JSON

    @property
    def config_toml(self) -> Path:
        """``config.toml``: the run's resolved options (``genvision train --config``)."""
        return self.root / RUN_TOML

    @property
    def tensorboard_dir(self) -> Path:
        return self.root / TENSORBOARD_DIR

    @property
    def task_json(self) -> Path:
        return self.root / TASK_JSON

    @property
    def metrics_log(self) -> Path:
        """``metrics.jsonl``: the training log."""
        return self.root / METRICS_LOG

    @property
    def evaluations(self) -> Path:
        """``metrics.json``: the evaluation records."""
        return self.root / EVALUATIONS

    @property
    def checkpoints(self) -> Path:
        return self.root / CHECKPOINTS

    @property
    def latest(self) -> Path:
        """``checkpoints/latest``: a text file naming the newest complete checkpoint."""
        return self.root / CHECKPOINTS / LATEST

    @property
    def samples_dir(self) -> Path:
        return self.root / SAMPLES_DIR

    @property
    def progress_strip(self) -> Path:
        return self.root / SAMPLES_DIR / PROGRESS_STRIP

    @property
    def samples_png(self) -> Path:
        return self.root / SAMPLES_PNG

    @property
    def loss_png(self) -> Path:
        return self.root / LOSS_PNG

    @property
    def report_html(self) -> Path:
        return self.root / REPORT_HTML

    @property
    def compare_dir(self) -> Path:
        return self.root / COMPARE_DIR

    def compare_files(self, directory: str | os.PathLike | None = None) -> dict[str, Path]:
        """A comparison's ``table`` (.md), ``json`` and ``figure`` (.png) paths."""
        folder = Path(directory) if directory is not None else self.compare_dir
        return {"table": folder / COMPARE_MD, "json": folder / COMPARE_JSON,
                "figure": folder / COMPARE_PNG}

    def figure(self, name: str) -> Path:
        """``NAME.png``: a figure of the model (``reconstructions``, ``interpolations``)."""
        return self.root / f"{name}.png"

    def stage(self, name: str) -> RunLayout:
        """The layout of a task run's stage sub-directory (itself laid out as a run)."""
        return RunLayout(self.root / name)

    def has_checkpoint(self) -> bool:
        """True when a checkpoint has been written (``latest`` or a step directory)."""
        return self.latest.exists() or (
            self.checkpoints.is_dir() and any(p.is_dir() for p in self.checkpoints.iterdir()))

    def has_any_checkpoint(self) -> bool:
        """True when the run or one of its stage sub-directories holds a checkpoint: a new
        start must not replace it (a run without one may be replaced, see start.py)."""
        if self.has_checkpoint():
            return True
        subdirs = [p for p in self.root.iterdir() if p.is_dir()] if self.root.is_dir() else []
        return any(RunLayout(p).has_checkpoint() for p in subdirs)


def is_run_dir(path: str | os.PathLike) -> bool:
    """True when ``path`` may be written as a run directory: it holds a run record
    (run.json, or task.json of an older task run), or it is absent or empty (a ``.lock``
    alone is what a refused or killed start leaves). Anything else is the user's folder."""
    layout = RunLayout(path)
    if not layout.root.is_dir():
        return not layout.root.exists()
    if layout.run_json.is_file() or layout.task_json.is_file():
        return True
    return all(p.name == LOCK_FILE for p in layout.root.iterdir())
