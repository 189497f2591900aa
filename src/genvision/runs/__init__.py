"""Run directories: their one layout, their typed records, and opening their models.

* :mod:`.layout`: :class:`RunLayout`, the only place that knows the file names;
* :mod:`.records`: :class:`RunInfo` (run.json) and :class:`EvalRecord` (metrics.json),
  each with one reader and writer;
* :mod:`.load`: ``genvision.load`` for model runs, task runs and checkpoints;
* :mod:`.start`: starting and resuming a run (``genvision train``), its sample grids,
  and :func:`~.start.train_run` for Python. Not imported here: it pulls in data
  preparation, which the record readers must not need. The report is a layer above
  (:mod:`genvision.report.finish`).
"""

from .layout import RunLayout
from .load import load, trained_stages
from .records import (
    EvalRecord,
    RunInfo,
    entry_kind,
    merge_evaluation,
    protocol_key,
    read_evaluations,
    read_run_info,
    write_run_info,
)

__all__ = ["EvalRecord", "RunInfo", "RunLayout", "entry_kind", "load", "merge_evaluation",
           "protocol_key", "read_evaluations", "read_run_info", "trained_stages",
           "write_run_info"]
