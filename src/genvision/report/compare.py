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

Numbers of different protocols are refused with the first field that differs, because a
table that silently mixes them is the commonest way results stop meaning anything; with
``--mixed`` they are shown anyway, marked ``[a]``, ``[b]``, ... with the protocols as
footnotes. A run without a number (a GAN has no likelihood) shows "—".

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
from .compare_table import (
    COLUMNS,
    GROUP_LABELS,
    GROUP_RESULTS,
    GROUPS,
    Board,
    Column,
    Row,
    describe_data,
    estimator,
    features_text,
    likelihood_cells,
    protocol_words,
    render_markdown,
    sample_cells,
    task_cells,
)
from .format import fmt_duration, fmt_number, fmt_value
from .run import as_number, model_family, read_metrics, summarise

__all__ = ["Board", "Column", "Row", "collect", "describe_data", "estimator", "first_difference",
           "render_markdown"]

REFUSE_FIX = ("re-run `genvision evaluate` with the same --data/--split/--n (and "
              "--metrics/--samples/--features/--sampler/--sampler-opt), or pass --mixed to "
              "show them marked")

#: fields looked at first when naming the first difference between two protocols
_FIELD_ORDER = ("data", "split", "n", "protocol", "source", "shape", "features", "name", "key",
                "n_real", "n_fake", "k", "pr_k", "binarize")


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


def _conditioning_marked(entry: dict[str, Any], info: RunInfo) -> dict[str, Any]:
    """A likelihood entry of a conditional run written before entries recorded their
    conditioning is -log p(x|y) (evaluate gave log_prob each image's label): say so, so
    it is not put in one column with -log p(x)."""
    protocol = entry.get("protocol")
    conditional = info.conditional or bool(info.model_config.get("num_classes"))
    if (entry_kind(entry) != LIKELIHOOD or not conditional or not isinstance(protocol, dict)
            or "conditioning" in protocol or "quantity" in protocol):
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
    """Refuse duplicates and runs trained on different data; returns the shared dataset."""
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


def _key_dict(entry: dict[str, Any], group: str) -> dict[str, Any]:
    """What must be equal for two entries' numbers to be comparable (the one definition:
    :func:`genvision.runs.records.comparable`)."""
    return comparable(entry)


def _key(entry: dict[str, Any], group: str) -> str:
    return json.dumps(_key_dict(entry, group), sort_keys=True, default=str)


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


def _select(runs: list[_Run], group: str, mixed: bool) -> dict[int, dict[str, Any]]:
    """One entry of ``group`` per run that has any (run index -> entry).

    Without ``mixed`` all chosen entries share one comparability key: among the keys every
    such run has, the one that lets most runs show their latest evaluation, then the one
    whose oldest chosen entry is most recent. No shared key raises :class:`UserError`.
    """
    candidates = {i: found for i, run in enumerate(runs) if (found := _entries(run, group))}
    latest = {i: max(found, key=_recency) for i, found in candidates.items()}
    if mixed or not candidates:
        return {i: entry for i, (_, entry) in latest.items()}
    common = set.intersection(*({_key(e, group) for _, e in found}
                                for found in candidates.values()))
    if not common:
        raise _conflict(runs, group, {i: e for i, (_, e) in latest.items()})

    def chosen(key: str) -> dict[int, tuple[int, dict[str, Any]]]:
        return {i: max((it for it in found if _key(it[1], group) == key), key=_recency)
                for i, found in candidates.items()}

    def score(key: str) -> tuple[int, tuple[float, float, int], str]:
        picks = chosen(key)
        at_latest = sum(picks[i] is latest[i] for i in picks)
        return at_latest, min(_recency(it) for it in picks.values()), key

    best = max(common, key=score)
    picks = {i: entry for i, (_, entry) in chosen(best).items()}
    _check_samplers(runs, group, picks)
    return picks


def _check_samplers(runs: list[_Run], group: str, picks: dict[int, dict[str, Any]]) -> None:
    """Runs of one model must have drawn their samples with the same sampler (a truncated
    GAN's FID beside an untruncated one of the same model is not one protocol); runs of
    different models each use their own, named in the notes."""
    seen: dict[str, tuple[int, Any]] = {}
    for i, entry in sorted(picks.items()):
        model = runs[i].info.model
        first = seen.setdefault(model, (i, sampler_of(entry)))
        if sampler_of(entry) != first[1]:
            raise UserError(
                f"{GROUP_LABELS[group]} of {runs[first[0]].arg} and {runs[i].arg} (both "
                f"{model}) were drawn with different samplers ({_short(first[1])} vs "
                f"{_short(sampler_of(entry))})", REFUSE_FIX)


def _ordered(keys: set[str]) -> list[str]:
    order = {k: i for i, k in enumerate(_FIELD_ORDER)}
    return sorted(keys, key=lambda k: (order.get(k, len(order)), k))


def first_difference(a: Any, b: Any, prefix: str = "") -> tuple[str, Any, Any] | None:
    """The first (dotted field, value in a, value in b) where two protocols differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        for name in _ordered(set(a) | set(b)):
            found = first_difference(a.get(name), b.get(name), f"{prefix}{name}.")
            if found:
                return found
        return None
    return None if a == b else (prefix.rstrip(".") or "value", a, b)


def _short(value: Any, limit: int = 60) -> str:
    text = fmt_value(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _where(entry: dict[str, Any], group: str) -> str:
    """Short words for where an entry's numbers come from: ``mnist5k test n=500``."""
    data = entry.get("data")
    if isinstance(data, dict):
        source, split, n = data.get("source"), data.get("split", entry.get("split")), data.get("n")
    else:
        source, split, n = data, entry.get("split"), entry.get("n")
    text = f"{source or '?'} {split or '?'} n={fmt_number(n) if n is not None else '?'}"
    features = features_text(entry)
    if group == SAMPLES and features:
        text += f" in {features}"
    return text


def _weights_hash(entry: dict[str, Any]) -> str | None:
    """The SHA-256 of the feature network a samples entry was computed with (None: not
    recorded, e.g. Inception, whose key holds its file's hash, or an old entry)."""
    protocol = entry.get("protocol")
    feats = protocol.get("features") if isinstance(protocol, dict) else None
    digest = feats.get("weights_sha256") if isinstance(feats, dict) else None
    return digest if isinstance(digest, str) else None


def _network_conflict(runs: list[_Run], latest: dict[int, dict[str, Any]]
                      ) -> UserError | None:
    """Sample metrics made with different feature networks (by their weights' hash)."""
    first, *others = sorted(latest)
    want = _weights_hash(latest[first])
    for i in others:
        have = _weights_hash(latest[i])
        if have != want and (have or want):
            return UserError(
                f"sample metrics of {runs[first].arg} and {runs[i].arg} were computed with "
                f"different feature networks (weights SHA-256 {(want or 'not recorded')[:16]} "
                f"vs {(have or 'not recorded')[:16]})",
                "evaluate both with one network: `genvision features train --out DIR`, then "
                "`genvision evaluate RUN --features DIR` for each run (or --mixed to show "
                "them marked)")
    return None


def _conflict(runs: list[_Run], group: str, latest: dict[int, dict[str, Any]]) -> UserError:
    """The refusal for ``group``: the first run pair whose latest entries differ, and how;
    sample metrics of different feature networks are named by the networks' hashes."""
    if group == SAMPLES and (refusal := _network_conflict(runs, latest)):
        return refusal
    first, *others = sorted(latest)
    a = latest[first]
    for i in others:
        diff = first_difference(_key_dict(a, group), _key_dict(latest[i], group))
        if diff:
            break
    else:  # unreachable: equal latest keys would have been a common key
        raise AssertionError("no differing protocol found")
    field, va, vb = diff
    label = GROUP_LABELS[group]
    verb = "is" if group == LIKELIHOOD else "are"
    return UserError(
        f"{label} of {runs[first].arg} {verb} on {_where(a, group)} but {runs[i].arg} on "
        f"{_where(latest[i], group)} ({field} differs: {_short(va)} vs {_short(vb)}); no "
        f"{label} protocol is shared by all runs", REFUSE_FIX)


# ----- run-level cells ----------------------------------------------------------------------
def _run_cells(run: _Run, name: str, chosen: list[dict[str, Any]]) -> dict[str, str]:
    """Run-level cells: model, family, parameters, training time and steps."""
    info = run.info.to_dict()
    model = info.get("model")
    cells = {"run": name}
    if isinstance(model, str):
        cells["model"] = model
    family = model_family(model if isinstance(model, str) else None, info)
    if family:
        cells["family"] = family
    if as_number(info.get("num_parameters")) is not None:
        cells["params"] = fmt_number(int(info["num_parameters"]))
    if "time_s" in run.stats:
        cells["train_time"] = fmt_duration(run.stats["time_s"])
    steps = run.stats.get("step")
    if steps is None:  # no training log: the checkpoint the evaluations were made at
        steps = max((s for e in chosen if (s := as_number(e.get("steps"))) is not None),
                    default=None)
    if steps is not None:
        cells["steps"] = fmt_number(int(steps))
    return cells


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
        text = fmt_number(round(speed, 1))
        rows[i].cells["speed"] = f"{text} ({device})" if len(devices) > 1 and device else text
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


def _annotate(group: str, runs_names: list[str], rows: list[Row],
              picked: dict[int, dict[str, Any]], markers: Iterator[str]
              ) -> tuple[list[str], list[str]]:
    """Notes and footnotes of one group; under several protocols (``--mixed``) each cell of
    the group gets the marker of its protocol."""
    if not picked:
        return [], []
    by_key: dict[str, list[int]] = {}
    for i, entry in sorted(picked.items()):
        by_key.setdefault(_key(entry, group), []).append(i)
    columns = [c.key for c in COLUMNS if c.group == group]
    title = _group_columns(group, rows)
    if len(by_key) == 1:
        pairs = [(runs_names[i], picked[i]) for i in sorted(picked)]
        return [f"{title}: {protocol_words(group, pairs)}"], []
    footnotes, used = [], []
    for indices in by_key.values():
        marker = next(markers)
        used.append(marker)
        pairs = [(runs_names[i], picked[i]) for i in indices]
        footnotes.append(f"{marker} {GROUP_LABELS[group]}: {protocol_words(group, pairs)} "
                         f"(runs: {', '.join(runs_names[i] for i in indices)})")
        for i in indices:
            for col in columns:
                if col in rows[i].cells:
                    rows[i].cells[col] += f" {marker}"
    note = (f"{title}: {len(by_key)} different protocols (--mixed), marked "
            f"{', '.join(used)}; numbers under different "
            "markers are not comparable")
    return [note], footnotes


def collect(run_dirs: list[Path], mixed: bool = False) -> Board:
    """Read the runs and build the comparison.

    Args:
        run_dirs: run directories (``runs/NAME``), at least one, each once.
        mixed: allow entries of different protocols in one column group; each run's
            latest entry is shown and its cells marked ``[a]``, ``[b]``, ...

    Returns:
        The :class:`Board`.

    Raises:
        UserError: a missing run or unreadable run.json / metrics.json, a run given twice,
            runs trained on different data or image sizes, or (without ``mixed``) no
            evaluation protocol shared by all runs that have numbers of a group.
    """
    if not run_dirs:
        raise UserError("genvision compare needs at least one run directory",
                        "e.g. `genvision compare runs/vae runs/pixelcnn`")
    runs = [_load_run(p) for p in run_dirs]
    dataset = _check_runs(runs)
    picks = {group: _select(runs, group, mixed) for group in GROUPS}
    names = _names(runs)
    rows = []
    for i, (run, name) in enumerate(zip(runs, names, strict=True)):
        chosen = [picks[g][i] for g in picks if i in picks[g]]
        cells = _run_cells(run, name, chosen)
        if i in picks[LIKELIHOOD]:
            cells.update(likelihood_cells(picks[LIKELIHOOD][i]))
        if i in picks[SAMPLES]:
            cells.update(sample_cells(picks[SAMPLES][i]))
        if i in picks[IMAGE_TO_IMAGE]:
            cells.update(task_cells(picks[IMAGE_TO_IMAGE][i]))
        png = RunLayout(run.path).samples_png
        rows.append(Row(name, run.path, cells.get("model"), cells,
                        png if png.is_file() else None))
    notes, footnotes = [], []
    markers = _markers()  # one sequence over both groups: every marker means one protocol
    for group in GROUPS:
        group_notes, group_foot = _annotate(group, names, rows, picks[group], markers)
        notes += group_notes
        footnotes += group_foot
    notes += _speed(rows, picks)
    columns = [c for c in COLUMNS if c.key == "run" or any(c.key in r.cells for r in rows)]
    return Board(columns, rows, notes, footnotes, dataset, mixed)
