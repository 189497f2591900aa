"""The comparison table of ``genvision compare``: its columns, rows and cells, each
column group's protocol in words, and the Markdown rendering.

:func:`genvision.report.compare.collect` reads the runs, picks one evaluation entry per run
and group and fills a :class:`Board`; the Markdown table here and the HTML page of
:mod:`genvision.report.board` draw it.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from ..runs.records import IMAGE_TO_IMAGE, LIKELIHOOD, SAMPLES
from .format import fmt_number, fmt_value
from .run import as_number

#: the text of a cell whose run has no number
MISSING = "—"

GROUPS = (LIKELIHOOD, SAMPLES, IMAGE_TO_IMAGE)
#: how each evaluation group is named in notes and errors
GROUP_LABELS = {LIKELIHOOD: "NLL", SAMPLES: "sample metrics",
                IMAGE_TO_IMAGE: "image-to-image scores"}
#: image-to-image columns: column key -> (entry key, decimals)
_TASK_VALUES = {"psnr_y": ("psnr_y", 2), "ssim_y": ("ssim_y", 4), "psnr_rgb": ("psnr_rgb", 2),
                "ssim_rgb": ("ssim_rgb", 4), "colourfulness": ("colourfulness", 1),
                "label_acc": ("label_accuracy", 3)}
#: sample-metric columns: column key -> (entry key, decimals); KID is special (mean ± std)
_SAMPLE_VALUES = {"fid": ("fid", 2), "precision": ("precision", 3), "recall": ("recall", 3),
                  "density": ("density", 3), "coverage": ("coverage", 3),
                  "cas": ("cas_accuracy", 3), "memorisation": ("memorisation_score", 3),
                  "near_copies": ("near_copy_share", 3), "duplicates": ("duplicate_share", 3)}
#: entry keys that make an entry count as a result of its group
GROUP_RESULTS = {LIKELIHOOD: ("nll_nats", "bits_per_dim"),
                  SAMPLES: ("kid_mean", *(k for k, _ in _SAMPLE_VALUES.values())),
                  IMAGE_TO_IMAGE: tuple(k for k, _ in _TASK_VALUES.values())}


LOWER, HIGHER = "lower", "higher"


@dataclasses.dataclass(frozen=True)
class Column:
    """One table column: ``key`` into :attr:`Row.cells`, its header, its group (``run``,
    ``likelihood``, ``samples``, ``image_to_image`` or ``speed``), its unit and which way is
    better (``"lower"``, ``"higher"`` or None: a cost or a property, not a score)."""

    key: str
    label: str
    group: str
    numeric: bool = True
    unit: str = ""
    #: None where neither way is better: density (about 1 for real images; more means
    #: samples crowd the dense regions) and the memorisation score (0 is ideal, negative
    #: is no better)
    better: str | None = None

    @property
    def arrow(self) -> str:
        """``↓`` (lower is better), ``↑`` (higher is better) or ""."""
        return {LOWER: "↓", HIGHER: "↑"}.get(self.better or "", "")


COLUMNS = (
    Column("run", "run", "run", numeric=False),
    Column("model", "model", "run", numeric=False),
    Column("family", "family", "run", numeric=False),
    Column("params", "params", "run"),
    Column("train_time", "training time", "run", unit="h:min:s"),
    Column("steps", "steps", "run"),
    Column("nll", "NLL (nats)", LIKELIHOOD, unit="nats/image", better=LOWER),
    Column("bpd", "bits/dim", LIKELIHOOD, unit="bits/dim", better=LOWER),
    Column("fid", "FID", SAMPLES, unit="distance", better=LOWER),
    Column("kid", "KID", SAMPLES, unit="MMD²", better=LOWER),
    Column("precision", "precision", SAMPLES, unit="share 0-1", better=HIGHER),
    Column("recall", "recall", SAMPLES, unit="share 0-1", better=HIGHER),
    Column("density", "density", SAMPLES, unit="1 ≈ real"),
    Column("coverage", "coverage", SAMPLES, unit="share 0-1", better=HIGHER),
    Column("cas", "CAS", SAMPLES, unit="accuracy 0-1", better=HIGHER),
    Column("memorisation", "memorisation score", SAMPLES, unit="0 = none"),
    Column("near_copies", "near copies", SAMPLES, unit="share 0-1", better=LOWER),
    Column("duplicates", "duplicate samples", SAMPLES, unit="share 0-1", better=LOWER),
    Column("psnr_y", "PSNR-Y (dB)", IMAGE_TO_IMAGE, unit="dB", better=HIGHER),
    Column("ssim_y", "SSIM-Y", IMAGE_TO_IMAGE, unit="0-1", better=HIGHER),
    Column("psnr_rgb", "PSNR-RGB (dB)", IMAGE_TO_IMAGE, unit="dB", better=HIGHER),
    Column("ssim_rgb", "SSIM-RGB", IMAGE_TO_IMAGE, unit="0-1", better=HIGHER),
    Column("colourfulness", "colourfulness", IMAGE_TO_IMAGE, unit="Hasler-Süsstrunk"),
    Column("label_acc", "label preservation", IMAGE_TO_IMAGE, unit="accuracy 0-1",
           better=HIGHER),
    Column("speed", "sampling images/s", "speed", unit="images/s", better=HIGHER),
)


@dataclasses.dataclass
class Row:
    """One run: its name (directory name), folder, model and cell texts by column key
    (``"—"`` where the run has no number).

    Attributes:
        values: the number behind each numeric cell (seconds for ``train_time``), for
            best-value highlighting and the board's charts.
        details: a cell's qualifier (the NLL's estimator, "collapsed", the device), shown
            after the number: ``84.74 ± 0.90 (IWAE-100)``.
        marks: column key -> protocol marker (``[a]``) when the column's numbers were
            measured under more than one protocol.
        family: the model's taxonomy family; ``conditional``: a class-conditional model.
        report: the run's ``report.html`` when it exists.
    """

    name: str
    path: Path
    model: str | None
    cells: dict[str, str]
    samples_png: Path | None
    values: dict[str, float] = dataclasses.field(default_factory=dict)
    details: dict[str, str] = dataclasses.field(default_factory=dict)
    marks: dict[str, str] = dataclasses.field(default_factory=dict)
    family: str | None = None
    conditional: bool = False
    report: Path | None = None

    def text(self, key: str) -> str:
        """The cell as plain text: number, qualifier in brackets, protocol marker."""
        if key not in self.cells:
            return MISSING
        text = self.cells[key]
        if key in self.details:
            text += f" ({self.details[key]})"
        return text + (f" {self.marks[key]}" if key in self.marks else "")


@dataclasses.dataclass(frozen=True)
class Marker:
    """One protocol of a column group measured under several: ``[b]`` and why its numbers
    are not comparable with the others'.

    Attributes:
        marker: ``[a]``, ``[b]``, ...
        group: the column group (``likelihood``, ``samples``, ``image_to_image``).
        runs: names of the runs measured under it.
        protocol: the protocol in words.
        why: how it differs from the group's main protocol ("" for the main one).
        fix: a command-level way to measure all runs under one protocol ("" when none
            exists, e.g. an AIS estimate is never an exact likelihood).
    """

    marker: str
    group: str
    runs: tuple[str, ...]
    protocol: str
    why: str = ""
    fix: str = ""


@dataclasses.dataclass
class Board:
    """Everything the Markdown table and the HTML page show.

    Attributes:
        columns: columns some run has a value for, in display order.
        rows: one per run, in the order given.
        notes: one line per column group stating its protocol in words.
        footnotes: ``[a] ...`` lines describing each protocol of a group measured under
            several (the same as :attr:`markers`, as text).
        dataset: the shared training data, e.g. ``"mnist5k 1x28x28"``.
        mixed: whether some column group holds numbers of different protocols.
        markers: the protocols behind the footnotes, for the HTML badges.
    """

    columns: list[Column]
    rows: list[Row]
    notes: list[str]
    footnotes: list[str]
    dataset: str
    mixed: bool = False
    markers: list[Marker] = dataclasses.field(default_factory=list)

    def table(self) -> list[list[str]]:
        """The cell texts, one list per row, in column order."""
        return [[row.text(c.key) for c in self.columns] for row in self.rows]


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


def _protocol_of(entry: dict[str, Any]) -> dict[str, Any]:
    protocol = entry.get("protocol")
    return protocol if isinstance(protocol, dict) else {}


def _quantity_words(entries: list[tuple[str, dict[str, Any]]]) -> str:
    """What the numbers are of, when a conditional model is involved ("" otherwise):
    -log p(x|y) given each image's label, or -log p(x) summed over labels with p(y)."""
    if any(_protocol_of(e).get("conditioning") == "label" for _, e in entries):
        return "; -log p(x|y): conditional NLL given each image's label (not -log p(x))"
    marginal = [(name, _protocol_of(e)) for name, e in entries
                if _protocol_of(e).get("conditioning") == "marginal over labels"]
    if not marginal:
        return ""
    each = ", ".join(f"{name} (p(y): {(p.get('label_prior') or {}).get('kind', '?')})"
                     for name, p in marginal)
    return f"; -log p(x), for conditional models -log sum_y p(x|y) p(y): {each}"


def _is_bound(entry: dict[str, Any]) -> bool:
    protocol = entry.get("protocol")
    return isinstance(protocol, dict) and protocol.get("kind") == "bound"


def features_text(entry: dict[str, Any]) -> str:
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
    text += _quantity_words(entries)
    bounds = sorted({estimator(e) for _, e in entries if _is_bound(e)})
    if bounds:  # say which numbers are upper bounds, so a bound is not read as exact
        verb = "are bounds" if len(bounds) > 1 else "is a bound"
        text += f"; {', '.join(bounds)} {verb}: the true NLL is at most the value shown"
    estimates = sorted({estimator(e) for _, e in entries
                        if _protocol_of(e).get("kind") == "estimate"})
    if estimates:  # neither exact nor a bound: say which way it errs
        verb = "are stochastic estimates" if len(estimates) > 1 else "is a stochastic estimate"
        text += (f"; {', '.join(estimates)} {verb} (unbiased for Z, so optimistic in "
                 "expectation), not a bound: the true NLL may lie on either side")
    return text


def sampler_words(sampler: Any) -> str:
    """``sampler NAME (key=value, ...)`` for a recorded sampler dict."""
    if not isinstance(sampler, dict):
        return "sampler not recorded (batch-seeded)"
    opts = ", ".join(f"{k}={v}" for k, v in sampler.items() if k != "name")
    return f"sampler {sampler.get('name', '?')}" + (f" ({opts})" if opts else "")


def _samples_words(entry: dict[str, Any], with_sampler: bool = True) -> str:
    """Feature space, sample counts and settings of one samples entry."""
    protocol = entry.get("protocol")
    protocol = protocol if isinstance(protocol, dict) else {}
    data = describe_data(entry.get("data"), entry.get("split"))
    parts = [features_text(entry) or "features not recorded",
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
    if with_sampler:
        parts.append(sampler_words(protocol.get("sampler")))
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


def protocol_words(group: str, entries: list[tuple[str, dict[str, Any]]]) -> str:
    if group == LIKELIHOOD:
        return _likelihood_words(entries)
    if group == IMAGE_TO_IMAGE:
        return _task_words(entries[0][1])
    samplers = [(name, (e.get("protocol") or {}).get("sampler")) for name, e in entries]
    if all(s == samplers[0][1] for _, s in samplers):
        return _samples_words(entries[0][1])
    # runs of different models, each with its own sampler: name every run's
    each = "; ".join(f"{name}: {sampler_words(s)}" for name, s in samplers)
    return f"{_samples_words(entries[0][1], with_sampler=False)}; samplers per run: {each}"


# ----- cells ------------------------------------------------------------------------------
def _pm(entry: dict[str, Any], key: str, err_key: str, decimals: int,
        scale: float = 1.0) -> str | None:
    value = as_number(entry.get(key))
    if value is None:
        return None
    err = as_number(entry.get(err_key))
    value *= scale
    return f"{value:.{decimals}f}" + ("" if err is None else f" ± {err * scale:.{decimals}f}")


def _put(row: Row, key: str, text: str | None, value: Any) -> None:
    """Set a cell's text and, when finite, the number behind it."""
    if text is None:
        return
    row.cells[key] = text
    number = as_number(value)
    if number is not None and math.isfinite(number):
        row.values[key] = number


def fill_likelihood(row: Row, entry: dict[str, Any]) -> None:
    """NLL (with its estimator as the cell's qualifier) and bits/dim of a likelihood entry."""
    # early entries named the standard error nll_stderr
    err_key = "nll_nats_stderr" if "nll_nats_stderr" in entry else "nll_stderr"
    _put(row, "nll", _pm(entry, "nll_nats", err_key, 2), entry.get("nll_nats"))
    if "nll" in row.cells:
        given = ", -log p(x|y)" if _protocol_of(entry).get("conditioning") == "label" else ""
        row.details["nll"] = f"{estimator(entry)}{given}"
    _put(row, "bpd", _pm(entry, "bits_per_dim", "bits_per_dim_stderr", 4),
         entry.get("bits_per_dim"))


def fill_samples(row: Row, entry: dict[str, Any]) -> None:
    """FID, KID (mean ± std), precision/recall, ... of a samples entry."""
    _put(row, "kid", _pm(entry, "kid_mean", "kid_std", 5), entry.get("kid_mean"))
    for column, (key, decimals) in _SAMPLE_VALUES.items():
        value = as_number(entry.get(key))
        if value is not None:
            _put(row, column, f"{value:.{decimals}f}", value)
    if entry.get("collapsed") is True and "duplicates" in row.cells:  # say it, not a number
        row.details["duplicates"] = "collapsed"


def fill_task(row: Row, entry: dict[str, Any]) -> None:
    """PSNR/SSIM, colourfulness and label preservation of an image-to-image entry."""
    for column, (key, decimals) in _TASK_VALUES.items():
        value = as_number(entry.get(key))
        if value is not None:
            _put(row, column, f"{value:.{decimals}f}", value)


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
