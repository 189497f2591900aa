"""A run in a few readable lines: what ``genvision info RUN`` prints.

The model and its family, the parameter count, the data protocol in one line, the
training budget actually spent (steps, epochs, time, speed), the headline number of each
evaluation next to its protocol, every warning (report.diagnostics) and where the run's
files are. ``genvision info RUN --json`` prints the raw records instead, for scripts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..runs.layout import RunLayout
from ..runs.records import RunInfo
from . import format as fmt
from .diagnostics import RunWarning, run_warnings
from .evaluation import data_kind_text, headline_line, kind_of, protocol_summary
from .run import model_family, read_metrics, summarise

_INDENT = " " * 14


def _row(label: str, text: str) -> str:
    return f"  {label:<11} {text}"


def data_line(data: dict[str, Any]) -> str:
    """The training data protocol in one line, e.g. ``digits train, 1,437 images 1x8x8,
    static binarisation (seed 0), 10 classes``."""
    if not data:
        return "not recorded"
    parts = [" ".join(str(p) for p in (data.get("source"), data.get("split")) if p)]
    shape = data.get("shape")
    size = "x".join(map(str, shape)) if isinstance(shape, list) else None
    if data.get("n") is not None:
        parts.append(f"{fmt.fmt_number(data['n'])} images" + (f" {size}" if size else ""))
    elif size:
        parts.append(size)
    kind = data_kind_text(data)
    if kind:
        parts.append(kind)
    if data.get("num_classes"):
        parts.append(f"{data['num_classes']} classes")
    return ", ".join(p for p in parts if p)


def training_line(run: dict[str, Any], records: list[dict]) -> str:
    """Steps, epochs, time and speed actually spent, then the budget and settings asked for."""
    stats = summarise(records)
    text = ""
    if "step" in stats:
        text = f"{fmt.fmt_number(int(stats['step']))} steps"
        if "epoch" in stats:
            text += f" ({stats['epoch']:.3g} epochs)"
    if "time_s" in stats:
        text += f" in {fmt.fmt_duration(stats['time_s'])}"
    if "images_per_s" in stats:
        text += f", {fmt.fmt_number(round(stats['images_per_s']))} images/s"
    train = run.get("train_config") if isinstance(run.get("train_config"), dict) else {}
    model = run.get("model_config") if isinstance(run.get("model_config"), dict) else {}
    asked = [f"{k.replace('_', ' ')} {fmt.fmt_value(train[k])}"
             for k in ("steps", "epochs", "minutes", "batch_size") if train.get(k) is not None]
    # a GAN's optimisers take their own rates (lr_g, lr_d): the shared lr is not used
    rates = ((model, ("lr_g", "lr_d")) if model.get("lr_g") is not None else (train, ("lr",)))
    asked += [f"{k.replace('_', ' ')} {fmt.fmt_value(rates[0][k])}" for k in rates[1]
              if rates[0].get(k) is not None]
    text = text.strip() or "no training logged"
    return text + (f" (asked: {', '.join(asked)})" if asked else "")


def summary_lines(run_dir: str | Path, info: RunInfo, evaluations: list[dict[str, Any]]
                  ) -> list[str]:
    """The lines of ``genvision info RUN`` (no trailing newlines)."""
    layout = RunLayout(run_dir)
    run = info.to_dict()
    records = read_metrics(layout.metrics_log)
    family = model_family(info.model, run)
    head = f"{layout.root}: {info.task + ' task, ' if info.task else ''}{info.model or '?'}"
    head += f" ({family})" if family else ""
    if fmt.is_result("num_parameters", info.num_parameters):
        head += f", {fmt.fmt_number(info.num_parameters)} parameters"
    lines = [head, _row("data", data_line(info.data))]
    if info.is_task:
        for name in info.stage_names:
            stage = info.stages[name]
            steps = stage.get("steps")
            lines.append(_row(f"stage {name}" if len(name) < 6 else name, (
                f"{stage.get('model', '?')}, "
                f"{fmt.fmt_number(steps) + ' steps' if steps is not None else 'not trained'}")))
    else:
        lines.append(_row("training", training_line(run, records)))
    if info.likelihood_kind:
        lines.append(_row("likelihood", str(info.likelihood_kind)))
    lines += _evaluation_lines(evaluations)
    lines += _warning_lines(run_warnings(run_dir, run, records, evaluations))
    lines += ["files", _row("report", str(layout.report_html)
                            + ("" if layout.report_html.is_file() else " (not written yet)"))]
    if layout.evaluations.is_file():
        lines.append(_row("metrics", str(layout.evaluations)))
    if layout.latest.is_file():
        latest = layout.latest.read_text(encoding="utf-8", errors="replace").strip()
        lines.append(_row("checkpoint", str(layout.checkpoints / latest)))
    lines.append(_row("created", f"{info.created} with genvision {info.genvision_version}"))
    lines.append(f"(raw records: genvision info {layout.root} --json)")
    return lines


def _evaluation_lines(evaluations: list[dict[str, Any]]) -> list[str]:
    if not evaluations:
        return ["evaluations none yet (run `genvision evaluate` on this run)"]
    lines = [f"evaluations ({len(evaluations)})"]
    for entry in evaluations:
        lines.append(_row(kind_of(entry), headline_line(entry) or "no numbers"))
        lines.append(f"{_INDENT}{protocol_summary(entry)}")
    return lines


def _warning_lines(found: list[RunWarning]) -> list[str]:
    if not found:
        return ["warnings    none"]
    lines = [f"warnings ({len(found)})"]
    for w in found:
        where = w.source + (f" step {w.step:,}" if w.step is not None else "")
        lines.append(f"  ! [{where}] {w.message}")
    return lines
