"""``genvision compare``: several runs in one table, each number beside its protocol.

    genvision compare runs/vae runs/pixelcnn runs/dcgan [-o board.html] [--mixed]

One row per run: model, family, parameters, training time and steps from ``run.json`` and
``metrics.jsonl``, then the evaluation numbers of ``metrics.json`` in two column groups:

* likelihood (NLL in nats with its standard error and estimator, bits/dim): comparable
  when the entries were computed on the same data (source, split, n, binarisation, ...).
  The estimator may differ and is shown in each cell: a bound (ELBO, IWAE-k) next to an
  exact likelihood is labelled, not refused;
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

The page (``-o board.html``) is drawn by :mod:`genvision.report.board`.
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
)
from .format import fmt_duration, fmt_number, fmt_value
from .run import as_number, model_family, read_metrics, summarise

MISSING = "—"
REFUSE_FIX = ("re-run `genvision evaluate` with the same --data/--split/--n (and "
              "--metrics/--samples/--features/--sampler/--sampler-opt), or pass --mixed to "
              "show them marked")

GROUPS = (LIKELIHOOD, SAMPLES, IMAGE_TO_IMAGE)
#: how each evaluation group is named in notes and errors
GROUP_LABELS = {LIKELIHOOD: "NLL", SAMPLES: "sample metrics",
                IMAGE_TO_IMAGE: "image-to-image scores"}
#: image-to-image columns: column key -> (entry key, decimals)
_TASK_VALUES = {"psnr_y": ("psnr_y", 2), "ssim_y": ("ssim_y", 4), "psnr_rgb": ("psnr_rgb", 2),
                "ssim_rgb": ("ssim_rgb", 4), "colourfulness": ("colourfulness", 1)}
#: sample-metric columns: column key -> (entry key, decimals); KID is special (mean ± std)
_SAMPLE_VALUES = {"fid": ("fid", 2), "precision": ("precision", 3), "recall": ("recall", 3),
                  "density": ("density", 3), "coverage": ("coverage", 3),
                  "cas": ("cas_accuracy", 3), "memorisation": ("memorisation_score", 3),
                  "near_copies": ("near_copy_share", 3)}
#: entry keys that make an entry count as a result of its group
_GROUP_RESULTS = {LIKELIHOOD: ("nll_nats", "bits_per_dim"),
                  SAMPLES: ("kid_mean", *(k for k, _ in _SAMPLE_VALUES.values())),
                  IMAGE_TO_IMAGE: tuple(k for k, _ in _TASK_VALUES.values())}
#: fields looked at first when naming the first difference between two protocols
_FIELD_ORDER = ("data", "split", "n", "protocol", "source", "shape", "features", "name", "key",
                "n_real", "n_fake", "k", "pr_k", "binarize")


@dataclasses.dataclass(frozen=True)
class Column:
    """One table column: ``key`` into :attr:`Row.cells`, its header and its group
    (``run``, ``likelihood``, ``samples`` or ``speed``)."""

    key: str
    label: str
    group: str
    numeric: bool = True


COLUMNS = (
    Column("run", "run", "run", numeric=False),
    Column("model", "model", "run", numeric=False),
    Column("family", "family", "run", numeric=False),
    Column("params", "params", "run"),
    Column("train_time", "training time", "run"),
    Column("steps", "steps", "run"),
    Column("nll", "NLL (nats)", LIKELIHOOD),
    Column("bpd", "bits/dim", LIKELIHOOD),
    Column("fid", "FID", SAMPLES),
    Column("kid", "KID", SAMPLES),
    Column("precision", "precision", SAMPLES),
    Column("recall", "recall", SAMPLES),
    Column("density", "density", SAMPLES),
    Column("coverage", "coverage", SAMPLES),
    Column("cas", "CAS", SAMPLES),
    Column("memorisation", "memorisation score", SAMPLES),
    Column("near_copies", "near copies", SAMPLES),
    Column("psnr_y", "PSNR-Y (dB)", IMAGE_TO_IMAGE),
    Column("ssim_y", "SSIM-Y", IMAGE_TO_IMAGE),
    Column("psnr_rgb", "PSNR-RGB (dB)", IMAGE_TO_IMAGE),
    Column("ssim_rgb", "SSIM-RGB", IMAGE_TO_IMAGE),
    Column("colourfulness", "colourfulness", IMAGE_TO_IMAGE),
    Column("speed", "sampling images/s", "speed"),
)


@dataclasses.dataclass
class Row:
    """One run: its name (directory name), folder, model and cell texts by column key
    (``"—"`` where the run has no number; ``--mixed`` markers are part of the text)."""

    name: str
    path: Path
    model: str | None
    cells: dict[str, str]
    samples_png: Path | None


@dataclasses.dataclass
class Board:
    """Everything the Markdown table and the HTML page show.

    Attributes:
        columns: columns some run has a value for, in display order.
        rows: one per run, in the order given.
        notes: one line per column group stating its protocol in words.
        footnotes: ``[a] ...`` lines describing each protocol of a ``--mixed`` group.
        dataset: the shared training data, e.g. ``"mnist5k 1x28x28"``.
        mixed: whether different protocols were allowed (``--mixed``).
    """

    columns: list[Column]
    rows: list[Row]
    notes: list[str]
    footnotes: list[str]
    dataset: str
    mixed: bool = False

    def table(self) -> list[list[str]]:
        """The cell texts, one list per row, in column order."""
        return [[row.cells.get(c.key, MISSING) for c in self.columns] for row in self.rows]


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
    evaluations = [e.fields for e in read_evaluations(path)]
    return _Run(str(arg), path, info, evaluations, _training_stats(path, info))


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
    wanted = _GROUP_RESULTS[group]
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
    return {i: entry for i, (_, entry) in chosen(best).items()}


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
    features = _features(entry)
    if group == SAMPLES and features:
        text += f" in {features}"
    return text


def _conflict(runs: list[_Run], group: str, latest: dict[int, dict[str, Any]]) -> UserError:
    """The refusal for ``group``: the first run pair whose latest entries differ, and how."""
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


# ----- protocol in words ------------------------------------------------------------------
def describe_data(data: Any, split: Any = None, n: Any = None) -> str:
    """An evaluation set in words: ``mnist5k test split, n=500, static binarisation seed 0``."""
    if not isinstance(data, dict):
        return f"{data or '?'} {split or '?'} split, n={fmt_number(n) if n else '?'}"
    n = data.get("n", n)
    parts = [f"{data.get('source', '?')} {data.get('split', split) or '?'} split",
             f"n={fmt_number(n) if n is not None else '?'}"]
    binar = data.get("binarize")
    if isinstance(binar, dict) and binar.get("scheme") not in (None, "none"):
        seed = binar.get("seed")
        parts.append(f"{binar['scheme']} binarisation" + ("" if seed is None else f" seed {seed}"))
    elif isinstance(binar, str) and binar != "none":
        parts.append(f"{binar} binarisation")
    if data.get("dequantize"):
        parts.append("dequantised")
    if data.get("resize"):
        parts.append(f"resized to {fmt_value(data['resize'])}")
    if data.get("grayscale"):
        parts.append("greyscale")
    return ", ".join(parts)


def estimator(entry: dict[str, Any]) -> str:
    """The likelihood estimator of an entry (``IWAE-100``, ``ELBO``, ``exact``)."""
    protocol = entry.get("protocol")
    protocol = protocol if isinstance(protocol, dict) else {}
    return str(protocol.get("estimator") or protocol.get("kind") or "estimator not recorded")


def _is_bound(entry: dict[str, Any]) -> bool:
    protocol = entry.get("protocol")
    return isinstance(protocol, dict) and protocol.get("kind") == "bound"


def _features(entry: dict[str, Any]) -> str:
    """``genvision-classifier features ab12cd (128-d)``, or "" when not recorded."""
    protocol = entry.get("protocol")
    feats = protocol.get("features") if isinstance(protocol, dict) else None
    if not isinstance(feats, dict):
        return ""
    text = f"{feats.get('name', '?')} features"
    if feats.get("key"):
        text += f" {feats['key']}"
    return text + (f" ({feats['dim']}-d)" if feats.get("dim") else "")


def _likelihood_words(entries: list[tuple[str, dict[str, Any]]]) -> str:
    """Data and estimators of likelihood entries ((run name, entry) pairs, one protocol)."""
    by_est: dict[str, list[str]] = {}
    for name, entry in entries:
        by_est.setdefault(estimator(entry), []).append(name)
    if len(by_est) == 1:
        est = f"estimator {next(iter(by_est))}"
    else:
        est = "estimators " + "; ".join(f"{e} ({', '.join(names)})" for e, names in by_est.items())
    entry = entries[0][1]
    text = f"{describe_data(entry.get('data'), entry.get('split'), entry.get('n'))}; {est}"
    bounds = sorted({estimator(e) for _, e in entries if _is_bound(e)})
    if bounds:  # say which numbers are upper bounds, so a bound is not read as exact
        verb = "are bounds" if len(bounds) > 1 else "is a bound"
        text += f"; {', '.join(bounds)} {verb}: the true NLL is at most the value shown"
    return text


def _samples_words(entry: dict[str, Any]) -> str:
    """Feature space, sample counts and settings of one samples entry."""
    protocol = entry.get("protocol")
    protocol = protocol if isinstance(protocol, dict) else {}
    data = describe_data(entry.get("data"), entry.get("split"))
    parts = [_features(entry) or "features not recorded",
             f"{fmt_number(protocol.get('n_fake'))} generated vs "
             f"{fmt_number(protocol.get('n_real'))} real images of {data}"]
    k = protocol.get("k", protocol.get("pr_k"))
    if k is not None:
        parts.append(f"k={k}")
    if protocol.get("kid_subsets") is not None:
        parts.append(f"KID {protocol['kid_subsets']} subsets of "
                     f"{fmt_number(protocol.get('kid_subset_size'))}")
    if protocol.get("labels"):
        parts.append(f"labels {protocol['labels']}")
    sampler = protocol.get("sampler")
    if isinstance(sampler, dict):  # part of the comparability key like any protocol field
        opts = ", ".join(f"{k}={v}" for k, v in sampler.items() if k != "name")
        parts.append(f"sampler {sampler.get('name', '?')}" + (f" ({opts})" if opts else ""))
    elif "sampler" not in protocol:
        parts.append("sampler not recorded (batch-seeded)")
    return "; ".join(parts)


def _task_words(entry: dict[str, Any]) -> str:
    """Images, method and scoring protocol of one image-to-image entry."""
    protocol = entry.get("protocol")
    protocol = protocol if isinstance(protocol, dict) else {}
    data = entry.get("data")
    images = data.get("images") if isinstance(data, dict) else data
    parts = [f"{entry.get('task', '?')} on images {fmt_value(images)}",
             f"method {entry.get('method', '?')}"]
    parts += [f"{k}: {fmt_value(v)}" for k, v in sorted(protocol.items())]
    return "; ".join(parts)


def _protocol_words(group: str, entries: list[tuple[str, dict[str, Any]]]) -> str:
    if group == LIKELIHOOD:
        return _likelihood_words(entries)
    if group == IMAGE_TO_IMAGE:
        return _task_words(entries[0][1])
    return _samples_words(entries[0][1])


# ----- cells ------------------------------------------------------------------------------
def _pm(entry: dict[str, Any], key: str, err_key: str, decimals: int) -> str | None:
    value = as_number(entry.get(key))
    if value is None:
        return None
    err = as_number(entry.get(err_key))
    return f"{value:.{decimals}f}" + ("" if err is None else f" ± {err:.{decimals}f}")


def _likelihood_cells(entry: dict[str, Any]) -> dict[str, str]:
    cells = {}
    # early entries named the standard error nll_stderr
    err_key = "nll_nats_stderr" if "nll_nats_stderr" in entry else "nll_stderr"
    nll = _pm(entry, "nll_nats", err_key, 2)
    if nll is not None:
        cells["nll"] = f"{nll} ({estimator(entry)})"
    bpd = _pm(entry, "bits_per_dim", "bits_per_dim_stderr", 4)
    if bpd is not None:
        cells["bpd"] = bpd
    return cells


def _sample_cells(entry: dict[str, Any]) -> dict[str, str]:
    cells = {}
    kid = _pm(entry, "kid_mean", "kid_std", 5)
    if kid is not None:
        cells["kid"] = kid
    for column, (key, decimals) in _SAMPLE_VALUES.items():
        value = as_number(entry.get(key))
        if value is not None:
            cells[column] = f"{value:.{decimals}f}"
    return cells


def _task_cells(entry: dict[str, Any]) -> dict[str, str]:
    cells = {}
    for column, (key, decimals) in _TASK_VALUES.items():
        value = as_number(entry.get(key))
        if value is not None:
            cells[column] = f"{value:.{decimals}f}"
    return cells


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
        return [f"{title}: {_protocol_words(group, pairs)}"], []
    footnotes, used = [], []
    for indices in by_key.values():
        marker = next(markers)
        used.append(marker)
        pairs = [(runs_names[i], picked[i]) for i in indices]
        footnotes.append(f"{marker} {GROUP_LABELS[group]}: {_protocol_words(group, pairs)} "
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
            cells.update(_likelihood_cells(picks[LIKELIHOOD][i]))
        if i in picks[SAMPLES]:
            cells.update(_sample_cells(picks[SAMPLES][i]))
        if i in picks[IMAGE_TO_IMAGE]:
            cells.update(_task_cells(picks[IMAGE_TO_IMAGE][i]))
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


# ----- Markdown -----------------------------------------------------------------------------
def _md_cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render_markdown(board: Board) -> str:
    """The table as GitHub Markdown, then one protocol line per group and the footnotes."""
    header = "| " + " | ".join(_md_cell(c.label) for c in board.columns) + " |"
    rule = "|" + "|".join("---:" if c.numeric else "---" for c in board.columns) + "|"
    body = ["| " + " | ".join(_md_cell(cell) for cell in row) + " |" for row in board.table()]
    lines = [header, rule, *body, ""]
    lines += [" ".join(n.split()) for n in board.notes]
    if board.footnotes:
        lines += ["", *(" ".join(f.split()) for f in board.footnotes)]
    return "\n".join(lines) + "\n"
