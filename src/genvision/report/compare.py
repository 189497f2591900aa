"""``genvision compare``: several runs in one table, each number beside its protocol.

    genvision compare runs/vae runs/pixelcnn runs/dcgan [-o board.html] [--mixed]

One row per run: model, family, parameters, training time and steps from ``run.json`` and
``metrics.jsonl``, then the evaluation numbers of ``metrics.json`` in two column groups:

* likelihood (NLL in nats with its standard error and estimator, bits/dim): comparable
  when the entries were computed on the same data (source, split, n, binarisation, ...)
  and are of the same quantity: a conditional model's -log p(x|y) never shares a column
  with -log p(x) (its marginal over labels does). The estimator may differ and is shown in
  each cell: a bound (ELBO, IWAE-k) next to an exact likelihood is labelled, not refused;
  a stochastic estimate (an RBM's AIS, kind ``estimate``) is neither, so it shares a
  column only with other estimates (``--mixed`` shows it beside the others, marked);
* samples (FID, KID, precision/recall, density/coverage, CAS, memorisation): comparable
  when the reference data and the protocol (feature space, sample counts, k, ...) are
  equal; the sampling seed is randomness, not protocol, and is ignored;
* image-to-image (task runs: ``genvision superres``/``colorize compare`` record the final
  stage's PSNR/SSIM and colourfulness): comparable under the same images and protocol.

Task runs and model runs are never mixed in one table, nor runs of different tasks.

Numbers of different protocols are shown side by side, never silently mixed: when a
column group holds several protocols, every cell of the group carries its protocol's
marker (``[a]``, ``[b]``, ...) and a footnote per marker says how it differs from the
protocol most runs share and the command that would measure the runs alike (an
``evaluate`` flag, or a ``train`` flag for what training fixed, such as binarisation).
``--strict`` refuses them instead, with that command. Only what cannot share one table is
always refused: runs on different datasets or image sizes, task runs beside model runs.
A run without a number (a GAN has no likelihood) shows "—".

This module reads the runs and chooses what to compare (:func:`collect`); the table's
columns, cells, protocol words and Markdown are in :mod:`genvision.report.compare_table`, and
the page (``-o board.html``) is drawn by :mod:`genvision.report.board`.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..runs.layout import RunLayout
from ..runs.load import trained_stages
from ..runs.records import (
    IMAGE_TO_IMAGE,
    LIKELIHOOD,
    SAMPLES,
    RunInfo,
    comparable,
    entry_kind,
    read_evaluations,
    read_run_info,
    sampler_of,
)
from .compare_protocols import (
    SIDE_BY_SIDE,
    conflict,
    differences,
    fix_words,
    short,
    why_words,
)
from .compare_table import (
    COLUMNS,
    GROUP_LABELS,
    GROUP_RESULTS,
    GROUPS,
    Board,
    Column,
    Marker,
    Row,
    describe_data,
    estimator,
    fill_likelihood,
    fill_samples,
    fill_task,
    protocol_words,
    render_markdown,
)
from .format import fmt_duration, fmt_number
from .run import as_number, model_family, read_metrics, summarise

__all__ = ["Board", "Column", "Row", "collect", "describe_data", "estimator", "first_difference",
           "render_markdown"]

@dataclasses.dataclass
class _Run:
    """A run directory as read: ``arg`` is the path as the user wrote it (for messages)."""

    arg: str
    path: Path
    info: RunInfo
    evaluations: list[dict[str, Any]]
    stats: dict[str, float]


# ----- reading runs -----------------------------------------------------------------------
def _load_run(arg: str | Path) -> _Run:
    """Read one run directory; a missing folder or unreadable run.json is a UserError, a
    missing metrics.json means "not evaluated" (cells show "—")."""
    path = Path(arg)
    if not path.is_dir():
        raise UserError(f"run directory {arg} does not exist",
                        "pass folders written by `genvision train`")
    info = read_run_info(path)
    evaluations = [_conditioning_marked(e.fields, info) for e in read_evaluations(path)]
    return _Run(str(arg), path, info, evaluations, _training_stats(path, info))


def _conditional(info: RunInfo) -> bool:
    return info.conditional or bool(info.model_config.get("num_classes"))


def _conditioning_marked(entry: dict[str, Any], info: RunInfo) -> dict[str, Any]:
    """A likelihood entry of a conditional run written before entries recorded their
    conditioning is -log p(x|y) (evaluate gave log_prob each image's label): say so, so
    it is not put in one column with -log p(x)."""
    protocol = entry.get("protocol")
    if (entry_kind(entry) != LIKELIHOOD or not _conditional(info)
            or not isinstance(protocol, dict) or "conditioning" in protocol
            or "quantity" in protocol):
        return entry
    return entry | {"protocol": protocol | {"conditioning": "label", "quantity": "-log p(x|y)"}}


def _training_stats(path: Path, info: RunInfo) -> dict[str, float]:
    """Training time and steps from the log; a task run's stages add up."""
    if not info.is_task:
        return summarise(read_metrics(RunLayout(path).metrics_log))
    total: dict[str, float] = {}
    for stage in trained_stages(path, info):
        stats = summarise(read_metrics(RunLayout(path).stage(stage).metrics_log))
        for key in ("time_s", "step"):
            if key in stats:
                total[key] = total.get(key, 0.0) + stats[key]
    return total


def _dataset(run: _Run) -> tuple[str, tuple[int, ...]]:
    """(source, shape) the run was trained on, from run.json's data protocol."""
    data = run.info.data
    source, shape = data.get("source"), data.get("shape")
    if run.info.is_task and isinstance(data.get("patch"), int):
        shape = [3, data["patch"], data["patch"]]  # a task run trains on patches
    if not isinstance(source, str) or not isinstance(shape, list):
        raise UserError(f"{run.arg}/{RunLayout(run.path).run_json.name} does not record the "
                        "dataset and image shape it was trained on",
                        "compare runs written by `genvision train`")
    return source, tuple(int(s) for s in shape)


def _dataset_text(source: str, shape: tuple[int, ...]) -> str:
    return f"{source} {'x'.join(map(str, shape))}"


def _check_runs(runs: list[_Run]) -> str:
    """Refuse what cannot share one table -- duplicates, task runs beside model runs, runs
    trained on different data -- and return the shared dataset."""
    seen: dict[Path, str] = {}
    for run in runs:
        key = run.path.resolve()
        if key in seen:
            raise UserError(f"{run.arg} is given twice (also as {seen[key]})",
                            "list each run once")
        seen[key] = run.arg
    what = [f"a {r.info.task} run" if r.info.is_task else "a model run" for r in runs]
    for run, kind in zip(runs[1:], what[1:], strict=True):
        if kind != what[0]:
            raise UserError(f"{runs[0].arg} is {what[0]} but {run.arg} is {kind}",
                            "compare runs of one kind (models, or runs of one task)")
    first = _dataset(runs[0])
    for run in runs[1:]:
        other = _dataset(run)
        if other != first:
            raise UserError(f"{runs[0].arg} was trained on {_dataset_text(*first)} but "
                            f"{run.arg} on {_dataset_text(*other)}",
                            "compare runs trained on the same dataset and image size")
    return _dataset_text(*first)


# ----- evaluation entries and their protocols ---------------------------------------------
def _entries(run: _Run, group: str) -> list[tuple[int, dict[str, Any]]]:
    """(position in metrics.json, entry) of ``group`` that hold at least one result."""
    wanted = GROUP_RESULTS[group]
    return [(i, e) for i, e in enumerate(run.evaluations) if entry_kind(e) == group
            and any(as_number(e.get(k)) is not None for k in wanted)]


def _key_dict(entry: dict[str, Any]) -> dict[str, Any]:
    """What must be equal for two entries' numbers to share a column without a marker:
    :func:`genvision.runs.records.comparable`, less the sample labels. A class-conditional
    generator drawing balanced labels and an unconditional one are scored against the same
    real images, so their FIDs share a column; the run column says which is conditional."""
    key = comparable(entry)
    protocol = key.get("protocol")
    if isinstance(protocol, dict) and "labels" in protocol:
        key["protocol"] = {k: v for k, v in protocol.items() if k != "labels"}
    return key


def _key(entry: dict[str, Any]) -> str:
    return json.dumps(_key_dict(entry), sort_keys=True, default=str)


def _entry_n(entry: dict[str, Any]) -> float:
    data, protocol = entry.get("data"), entry.get("protocol")
    for value in (entry.get("n"), data.get("n") if isinstance(data, dict) else None,
                  protocol.get("n_fake") if isinstance(protocol, dict) else None):
        if as_number(value) is not None:
            return float(value)
    return -1.0


def _recency(item: tuple[int, dict[str, Any]]) -> tuple[float, float, int]:
    """Preference among a run's entries: latest checkpoint, then most images, then the
    one written last."""
    index, entry = item
    steps = as_number(entry.get("steps"))
    return (-1.0 if steps is None else steps, _entry_n(entry), index)


def _select(runs: list[_Run], group: str, strict: bool) -> dict[int, dict[str, Any]]:
    """One entry of ``group`` per run that has any (run index -> entry).

    The chosen entries share as few protocols as the runs allow: the protocol held by most
    runs is chosen (ties: the one that lets most runs show their latest evaluation, then
    the one whose oldest chosen entry is most recent); a run without it shows its latest
    entry. With ``strict``, no protocol shared by all runs raises :class:`UserError`.
    """
    candidates = {i: found for i, run in enumerate(runs) if (found := _entries(run, group))}
    if not candidates:
        return {}
    latest = {i: max(found, key=_recency) for i, found in candidates.items()}
    held = {i: {_key(e) for _, e in found} for i, found in candidates.items()}

    def chosen(key: str) -> dict[int, tuple[int, dict[str, Any]]]:
        return {i: max((it for it in found if _key(it[1]) == key), key=_recency)
                for i, found in candidates.items() if key in held[i]}

    def score(key: str) -> tuple[int, int, tuple[float, float, int], str]:
        picks = chosen(key)
        at_latest = sum(picks[i] is latest[i] for i in picks)
        return len(picks), at_latest, min(_recency(it) for it in picks.values()), key

    best = max(set().union(*held.values()), key=score)
    if strict and len(chosen(best)) < len(candidates):
        raise conflict([r.arg for r in runs], group,
                       {i: e for i, (_, e) in latest.items()}, _key_dict)
    picks = {i: entry for i, (_, entry) in latest.items()}
    picks |= {i: entry for i, (_, entry) in chosen(best).items()}
    if strict:
        _check_samplers(runs, group, picks)
    return picks


def _sampler_splits(runs: list[_Run], picks: dict[int, dict[str, Any]]) -> set[int]:
    """Runs whose model appears with more than one sampler among ``picks``: a truncated
    GAN's FID beside an untruncated one of the same model is not one protocol (runs of
    different models each use their own sampler, named in the notes)."""
    by_model: dict[str, set[str]] = {}
    for i, entry in picks.items():
        by_model.setdefault(str(runs[i].info.model), set()).add(
            json.dumps(sampler_of(entry), sort_keys=True, default=str))
    return {i for i in picks if len(by_model[str(runs[i].info.model)]) > 1}


def _check_samplers(runs: list[_Run], group: str, picks: dict[int, dict[str, Any]]) -> None:
    """``--strict``: refuse runs of one model whose samples were drawn by different
    samplers."""
    split = sorted(_sampler_splits(runs, picks))
    for i in split:
        j = next(j for j in split if j != i and runs[j].info.model == runs[i].info.model)
        a, b = sampler_of(picks[i]), sampler_of(picks[j])
        diffs = [("protocol.sampler", a, b)]
        raise UserError(
            f"{GROUP_LABELS[group]} of {runs[i].arg} and {runs[j].arg} (both "
            f"{runs[i].info.model}) were drawn with different samplers ({short(a)} vs "
            f"{short(b)})", f"{fix_words(diffs, [runs[i].arg], [runs[j].arg])}, "
                             f"{SIDE_BY_SIDE}")


def first_difference(a: Any, b: Any) -> tuple[str, Any, Any] | None:
    """The first (dotted field, value in a, value in b) where two protocols differ."""
    found = differences(a, b)
    return found[0] if found else None


# ----- run-level cells ----------------------------------------------------------------------
def _run_row(run: _Run, name: str, chosen: list[dict[str, Any]]) -> Row:
    """A row with the run-level cells: model, family, parameters, training time, steps."""
    info = run.info.to_dict()
    model = info.get("model")
    layout = RunLayout(run.path)
    row = Row(name, run.path, model if isinstance(model, str) else None, {"run": name},
              layout.samples_png if layout.samples_png.is_file() else None,
              family=model_family(model if isinstance(model, str) else None, info),
              conditional=_conditional(run.info),
              report=layout.report_html if layout.report_html.is_file() else None)
    if row.model:
        row.cells["model"] = row.model
    if row.family:
        row.cells["family"] = row.family
    if as_number(info.get("num_parameters")) is not None:
        row.cells["params"] = fmt_number(int(info["num_parameters"]))
        row.values["params"] = float(info["num_parameters"])
    if "time_s" in run.stats:
        row.cells["train_time"] = fmt_duration(run.stats["time_s"])
        row.values["train_time"] = run.stats["time_s"]
    steps = run.stats.get("step")
    if steps is None:  # no training log: the checkpoint the evaluations were made at
        steps = max((s for e in chosen if (s := as_number(e.get("steps"))) is not None),
                    default=None)
    if steps is not None:
        row.cells["steps"] = fmt_number(int(steps))
        row.values["steps"] = float(steps)
    return row


def _names(runs: list[_Run]) -> list[str]:
    """Directory names; the path as given where two runs share a name."""
    names = [run.path.resolve().name or run.arg for run in runs]
    return [run.arg if names.count(n) > 1 else n for run, n in zip(runs, names, strict=True)]


# ----- the board --------------------------------------------------------------------------
def _speed(rows: list[Row], picks: dict[str, dict[int, dict[str, Any]]]) -> list[str]:
    """Fill the sampling-speed cells (samples entry first: it drew more images) and return
    its note; the device goes into the cells when runs were timed on different ones."""
    found: dict[int, tuple[float, str | None]] = {}
    for i in range(len(rows)):
        for group in (SAMPLES, LIKELIHOOD):
            entry = picks[group].get(i)
            speed = as_number(entry.get("sampling_images_per_s")) if entry else None
            if speed is not None:
                found[i] = (speed, entry.get("device"))
                break
    devices = {str(d) for _, d in found.values() if d}
    for i, (speed, device) in found.items():
        rows[i].cells["speed"] = fmt_number(round(speed, 1))
        rows[i].values["speed"] = speed
        if len(devices) > 1 and device:
            rows[i].details["speed"] = str(device)
    if not found:
        return []
    if len(devices) > 1:
        return ["sampling images/s: measured on different devices (shown in each cell), so "
                "these speeds are not comparable"]
    where = f" on {next(iter(devices))}" if devices else ""
    return [f"sampling images/s: images drawn per second during `genvision evaluate`{where}"]


def _group_columns(group: str, rows: list[Row]) -> str:
    labels = [c.label for c in COLUMNS if c.group == group
              and any(c.key in r.cells for r in rows)]
    return ", ".join(labels)


def _markers() -> Iterator[str]:
    """``[a]``, ``[b]``, ... ``[z]``, then ``[a2]``, ``[b2]``, ..."""
    for lap in itertools.count(1):
        for letter in string.ascii_lowercase:
            yield f"[{letter}{lap if lap > 1 else ''}]"


def _protocol_groups(runs: list[_Run], group: str, picked: dict[int, dict[str, Any]]
                     ) -> dict[str, list[int]]:
    """Run indices by protocol key, in order of first appearance; runs of one model drawn
    with different samplers are told apart by their sampler."""
    split = _sampler_splits(runs, picked) if group == SAMPLES else set()
    by_key: dict[str, list[int]] = {}
    for i, entry in sorted(picked.items()):
        key = _key(entry)
        if i in split:
            key += json.dumps(sampler_of(entry), sort_keys=True, default=str)
        by_key.setdefault(key, []).append(i)
    return by_key


def _annotate(group: str, runs: list[_Run], names: list[str], rows: list[Row],
              picked: dict[int, dict[str, Any]], markers: Iterator[str]
              ) -> tuple[list[str], list[Marker]]:
    """Notes and protocol markers of one group; under several protocols each cell of the
    group gets the marker of its protocol, and each marker says how it differs from the
    main protocol (the one most runs share) and how to measure the runs alike."""
    if not picked:
        return [], []
    by_key = _protocol_groups(runs, group, picked)
    title = _group_columns(group, rows)
    if len(by_key) == 1:
        pairs = [(names[i], picked[i]) for i in sorted(picked)]
        return [f"{title}: {protocol_words(group, pairs)}"], []
    main = max(by_key.values(), key=len)  # ties: the first run's protocol
    found: list[Marker] = []
    for indices in by_key.values():
        marker = next(markers)
        pairs = [(names[i], picked[i]) for i in indices]
        why = fix = ""
        if indices is not main:
            first, other = picked[main[0]], picked[indices[0]]
            diffs = differences(_key_dict(first), _key_dict(other))
            if (group == SAMPLES and sampler_of(first) != sampler_of(other)
                    and runs[main[0]].info.model == runs[indices[0]].info.model):
                diffs.append(("protocol.sampler", sampler_of(first), sampler_of(other)))
            why = why_words(diffs)
            fix = fix_words(diffs, [runs[i].arg for i in main], [runs[i].arg for i in indices])
        found.append(Marker(marker, group, tuple(names[i] for i in indices),
                            protocol_words(group, pairs), why, fix))
        for i in indices:
            for col in (c.key for c in COLUMNS if c.group == group):
                if col in rows[i].cells:
                    rows[i].marks[col] = marker
    main_marker = found[list(by_key.values()).index(main)].marker
    note = (f"{title}: {len(by_key)} different protocols, marked "
            f"{', '.join(m.marker for m in found)}; numbers under different markers are not "
            f"comparable ({main_marker} is the protocol most runs share)")
    return [note], found


def footnote(marker: Marker, main: str) -> str:
    """A marker as one line: ``[b] NLL: <protocol> (runs: ...). Not comparable with
    [a]: <why>. To compare: <fix>.``"""
    text = (f"{marker.marker} {GROUP_LABELS[marker.group]}: {marker.protocol} "
            f"(runs: {', '.join(marker.runs)})")
    if marker.why:
        text += f". Not comparable with {main}: {marker.why}"
    if marker.fix:
        text += f". To compare: {marker.fix}"
    elif marker.why:
        text += ". No command makes them one protocol"
    return text


def collect(run_dirs: list[Path], mixed: bool = False, strict: bool = False) -> Board:
    """Read the runs and build the comparison.

    Args:
        run_dirs: run directories (``runs/NAME``), at least one, each once.
        mixed: accepted for old callers; numbers of different protocols are always shown
            side by side, marked.
        strict: refuse a column group whose runs were measured under different protocols
            (the error names the field and the command that measures them alike).

    Returns:
        The :class:`Board`.

    Raises:
        UserError: a missing run or unreadable run.json / metrics.json, a run given twice,
            runs trained on different data or image sizes, task runs beside model runs or
            (with ``strict``) no evaluation protocol shared by all runs that have numbers.
    """
    del mixed  # the default now: kept so `compare --mixed` and old callers still work
    if not run_dirs:
        raise UserError("genvision compare needs at least one run directory",
                        "e.g. `genvision compare runs/vae runs/pixelcnn`")
    runs = [_load_run(p) for p in run_dirs]
    dataset = _check_runs(runs)
    picks = {group: _select(runs, group, strict) for group in GROUPS}
    names = _names(runs)
    rows = []
    for i, (run, name) in enumerate(zip(runs, names, strict=True)):
        row = _run_row(run, name, [picks[g][i] for g in picks if i in picks[g]])
        for group, fill in ((LIKELIHOOD, fill_likelihood), (SAMPLES, fill_samples),
                            (IMAGE_TO_IMAGE, fill_task)):
            if i in picks[group]:
                fill(row, picks[group][i])
        rows.append(row)
    notes: list[str] = []
    found: list[Marker] = []
    markers = _markers()  # one sequence over all groups: every marker means one protocol
    for group in GROUPS:
        group_notes, group_markers = _annotate(group, runs, names, rows, picks[group], markers)
        notes += group_notes
        found += group_markers
    notes += _speed(rows, picks)
    footnotes = [footnote(m, _main_marker(found, m.group)) for m in found]
    columns = [c for c in COLUMNS if c.key == "run" or any(c.key in r.cells for r in rows)]
    return Board(columns, rows, notes, footnotes, dataset, bool(found), found)


def _main_marker(found: list[Marker], group: str) -> str:
    """The marker of the group's main protocol (the one with no ``why``)."""
    return next(m.marker for m in found if m.group == group and not m.why)
