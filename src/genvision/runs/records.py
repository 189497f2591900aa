"""Typed records of a run directory: ``RunInfo`` (run.json) and ``EvalRecord`` (metrics.json).

Each record has one reader and one writer; every command that looks at a run (``evaluate``,
``compare``, ``report``, ``info``, ``genvision.load``) goes through them, so a corrupt or
foreign file is refused the same way everywhere: one line, ``UserError`` (exit status 2).
Writes are atomic (:func:`genvision.io.atomic_write_json`).

``RunInfo`` keeps every key it does not know in :attr:`RunInfo.extra`, so a run.json
written by a newer version, or a task's own fields (``scale``, ``patch_options``), survive
a read-modify-write.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any

from ..data.config import DataConfig
from ..dataclass_config import check_values
from ..errors import UserError
from ..storage import atomic_write_json, refuse_link
from ..train.config import TrainConfig
from ..version import __version__
from .layout import RunLayout

#: evaluation kinds: a density's NLL, sample metrics, an image-to-image task's fidelity
LIKELIHOOD, SAMPLES, IMAGE_TO_IMAGE = "likelihood", "samples", "image-to-image"
EVAL_KINDS = (LIKELIHOOD, SAMPLES, IMAGE_TO_IMAGE)
#: entry fields that identify an evaluation (besides its kind): re-running the same
#: evaluation replaces its entry, any other value of these adds a new one
_IDENTITY_FIELDS = ("data", "split", "protocol", "seed", "steps")
#: protocol fields that do not stop two runs' numbers sharing a column (see comparable)
COMPARE_IGNORED = ("sample_seed", "memorisation_reference", "sampler")


def _read_object(path: Path, what: str, fix: str) -> dict[str, Any]:
    """A JSON object from ``path``; anything else is a one-line UserError."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{what} {path} does not exist", fix) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{what} {path} is not valid JSON ({first})", fix) from None
    if not isinstance(data, dict):
        raise UserError(f"{what} {path} is not a JSON object", fix)
    return data


#: the fix of every damaged run record
_DAMAGED = "restore the file from a backup, or train the run again"
#: the JSON type of each RunInfo field (bool is not an int here; None allowed where listed)
_RECORD_TYPES: dict[str, str] = {
    "model": "str?", "task": "str?", "family": "str", "created": "str",
    "genvision_version": "str", "command": "str", "likelihood_kind": "str?",
    "conditional": "bool", "num_parameters": "int?", "stage_order": "list",
    **dict.fromkeys(("model_config", "model_overrides", "train_config", "data_config",
                     "data", "stages"), "dict"),
}
_TYPE_WORDS = {"str": "a string", "str?": "a string", "bool": "true or false",
               "int?": "an integer", "list": "a list", "dict": "a JSON object"}


def _has_type(value: Any, want: str) -> bool:
    if want.endswith("?") and value is None:
        return True
    kind = want.rstrip("?")
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, {"str": str, "bool": bool, "list": list, "dict": dict}[kind])


def _check_configs(fields: dict[str, Any], where: str) -> None:
    """The stored training and data options must have their fields' types and bounds
    (keys this version does not know are left alone: a newer version may add some)."""
    for name, config_cls in (("train_config", TrainConfig), ("data_config", DataConfig)):
        try:
            check_values(config_cls, fields.get(name, {}), where=where)
        except UserError as err:
            raise UserError(f"{name}: {err.problem}", _DAMAGED) from None


def now() -> str:
    """The creation stamp of records: UTC, to the second."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# ----- run.json -------------------------------------------------------------------------------
@dataclasses.dataclass
class RunInfo:
    """What ``run.json`` holds: the model, its configs, the data protocol, the version.

    A task run (``genvision superres train``) also has ``task`` and ``stages`` (stage name
    -> its record: model, model_config, train_config, steps, ...), in training order; its
    ``model`` is the model of the last stage trained.
    """

    model: str | None = None
    family: str = ""
    model_config: dict[str, Any] = dataclasses.field(default_factory=dict)
    model_overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    conditional: bool = False
    train_config: dict[str, Any] = dataclasses.field(default_factory=dict)
    data_config: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: the data protocol (source, split, shape, binarisation, ...)
    data: dict[str, Any] = dataclasses.field(default_factory=dict)
    num_parameters: int | None = None
    likelihood_kind: str | None = None
    created: str = dataclasses.field(default_factory=now)
    genvision_version: str = __version__
    command: str = ""
    task: str | None = None
    stages: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    #: the stages in training order (JSON objects are written with sorted keys)
    stage_order: list[str] = dataclasses.field(default_factory=list)
    #: keys this version does not know (a task's scale, patch_options, ...), kept as read
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def is_task(self) -> bool:
        return self.task is not None

    @property
    def stage_names(self) -> list[str]:
        """The stages in training order. Records without ``stage_order`` (old task.json)
        put stages started from another one (those with an ``init``) last."""
        listed = [s for s in self.stage_order if s in self.stages]
        rest = sorted((s for s in self.stages if s not in listed),
                      key=lambda s: "init" in self.stages[s])
        return listed + rest

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "run file") -> RunInfo:
        """Build from a parsed run.json (or an old task.json); a wrong structure or type
        raises a one-line UserError naming ``where``, so no reader meets it later as a
        traceback (or as a misleading "--data must be a string")."""
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        fields = {k: v for k, v in data.items() if k in known}
        for name in ("model_config", "model_overrides", "train_config", "data_config", "data",
                     "stages"):
            if name in fields and fields[name] is None:
                fields[name] = {}
        for name, want in _RECORD_TYPES.items():
            if name in fields and not _has_type(fields[name], want):
                raise UserError(f"{where}: {name} is not {_TYPE_WORDS[want]} (got "
                                f"{json.dumps(fields[name], default=str)[:60]})", _DAMAGED)
        for name, record in fields.get("stages", {}).items():
            if not isinstance(record, dict):
                raise UserError(f"{where}: stage {name!r} is not a JSON object", _DAMAGED)
        if fields.get("model") is None and fields.get("task") is None:
            raise UserError(f"{where} names no model (it has no \"model\" key)", _DAMAGED)
        if fields.get("task") is None:  # a task run's configs live in its stages
            _check_configs(fields, where)
        return cls(**fields, extra={k: v for k, v in data.items() if k not in known})

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of run.json; a model run has no ``task``/``stages`` keys."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
               if f.name != "extra"}
        if self.task is None:
            for name in ("task", "stages", "stage_order"):
                out.pop(name)
        else:
            out["stage_order"] = self.stage_names
        return {**out, **self.extra}

    def get(self, key: str, default: Any = None) -> Any:
        """A field or an extra key by name (for code that reads run.json by key)."""
        return self.to_dict().get(key, default)


def read_run_info(run_dir: str | os.PathLike) -> RunInfo:
    """The RunInfo of a run directory: its run.json, or the task.json of an older task run.

    Raises:
        UserError: no such directory, no run record, or a corrupt or foreign file.
    """
    layout = RunLayout(run_dir)
    if not layout.root.is_dir():
        raise UserError(f"run directory {layout.root} does not exist", "check the path")
    fix = "restore the file, or pass a directory written by genvision"
    if layout.run_json.is_file():
        return RunInfo.from_dict(_read_object(layout.run_json, "run file", fix),
                                 str(layout.run_json))
    if layout.task_json.is_file():  # task runs written before they had run.json
        data = _read_object(layout.task_json, "task file", fix)
        if not isinstance(data.get("task"), str):
            raise UserError(f"task file {layout.task_json} names no task", fix)
        return RunInfo.from_dict(data, str(layout.task_json))
    raise UserError(f"{layout.root} has no {layout.run_json.name}, so it is not a genvision run",
                    "pass a directory written by `genvision train`, a task's train or, from "
                    "Python, genvision.train_run (the bare loop genvision.train.train writes "
                    "no run record)")


def write_run_info(run_dir: str | os.PathLike, info: RunInfo) -> Path:
    """Write ``run.json`` atomically; returns its path."""
    path = RunLayout(run_dir).run_json
    atomic_write_json(path, info.to_dict())
    return path


# ----- metrics.json ---------------------------------------------------------------------------
def entry_kind(entry: dict[str, Any]) -> str:
    """``likelihood``, ``samples`` or ``image-to-image``; entries written before kinds
    existed are likelihoods."""
    return str(entry.get("kind", LIKELIHOOD))


@dataclasses.dataclass
class EvalRecord:
    """One entry of ``metrics.json``: its kind, protocol fields and numbers, as a dict.

    The entry stays a plain JSON object (``fields``) because every kind has its own
    numbers; what is shared is how it is identified (:meth:`key`).
    """

    fields: dict[str, Any]

    @property
    def kind(self) -> str:
        return entry_kind(self.fields)

    def key(self) -> str:
        """THE protocol key: equal keys mean "the same evaluation" (re-running it updates
        the entry). Every field of the ``protocol`` dict counts, so a new protocol field
        (e.g. the sampler) separates entries without any change here."""
        return protocol_key(self.fields)


def comparable(entry: dict[str, Any]) -> dict[str, Any]:
    """What must be equal for two entries' numbers to be compared in one column.

    Unlike :func:`protocol_key` the checkpoint (``steps``) and the estimator noise seed do
    not count; the sampling seed inside ``protocol`` is randomness, not protocol, and the
    memorisation reference is each run's own training set. A likelihood's estimator may
    differ (a bound beside an exact NLL is labelled, not refused), so only its data and
    its quantity count: -log p(x|y) of a conditional model never shares a column with
    -log p(x) (:func:`likelihood_quantity`). A stochastic *estimate* (an RBM's AIS, kind
    ``"estimate"``) is neither exact nor a bound -- it may fall on either side of the true
    NLL -- so it counts as a protocol of its own: it shares a column only with other
    estimates, unless ``compare --mixed``.
    The sampler belongs to the model (a VAE's decoder option means nothing to a GAN), so
    it is compared between runs of the same model only (:func:`sampler_of`). Every other
    ``protocol`` field counts, including ones added later.
    """
    key: dict[str, Any] = {"data": entry.get("data"), "split": entry.get("split")}
    if entry_kind(entry) == LIKELIHOOD:
        key["n"] = entry.get("n")  # old entries keep n beside a plain-string data
        key["quantity"] = likelihood_quantity(entry)
        protocol = entry.get("protocol")
        if isinstance(protocol, dict) and protocol.get("kind") == "estimate":
            key["kind"] = "estimate"  # absent for exact and bound: those share columns
    else:
        protocol = entry.get("protocol")
        if isinstance(protocol, dict):
            protocol = {k: v for k, v in protocol.items() if k not in COMPARE_IGNORED}
        key["protocol"] = protocol
    return key


def likelihood_quantity(entry: dict[str, Any]) -> str:
    """What a likelihood entry measures: ``-log p(x|y)`` (a conditional model given each
    image's label) or ``-log p(x)``. Entries written before the protocol said so are
    ``-log p(x)`` unless marked ``"conditioning": "label"`` (see report.compare, which
    marks a conditional run's old entries)."""
    protocol = entry.get("protocol")
    protocol = protocol if isinstance(protocol, dict) else {}
    if isinstance(protocol.get("quantity"), str):
        return protocol["quantity"]
    return "-log p(x|y)" if protocol.get("conditioning") == "label" else "-log p(x)"


def sampler_of(entry: dict[str, Any]) -> Any:
    """The sampler (name and options) an entry's samples were drawn with (None: not
    recorded, or a likelihood entry)."""
    protocol = entry.get("protocol")
    return protocol.get("sampler") if isinstance(protocol, dict) else None


def protocol_key(entry: dict[str, Any]) -> str:
    """The identity of an evaluation entry as a canonical JSON string: kind, data, split,
    every ``protocol`` field, seed and checkpoint step."""
    key = {k: entry.get(k) for k in _IDENTITY_FIELDS}
    return json.dumps(key | {"kind": entry_kind(entry)}, sort_keys=True, default=str)


#: numbers an evaluation entry may hold (a number or null when present); the report
#: shows any other numeric key too, but a damaged one of these must not vanish silently
RESULT_NUMBERS = ("nll_nats", "nll_stderr", "bits_per_dim", "bits_per_dim_stderr", "elbo",
                  "fid", "kid", "kid_mean", "kid_std", "precision", "recall", "density",
                  "coverage", "cas_accuracy", "psnr", "ssim", "auroc")


def _read_metrics_file(path: Path) -> dict[str, Any]:
    """The parsed metrics.json; a file that is not one genvision wrote (not an object, no
    evaluations list, an entry that is not an object or has a field of the wrong type) is
    a one-line UserError, so ``evaluate`` never rewrites (and so never truncates) it."""
    fix = f"move {path} aside (or restore it) and run `genvision evaluate` again"
    data = _read_object(path, "metrics file", fix)
    evaluations = data.get("evaluations", [])
    if not isinstance(evaluations, list):
        raise UserError(f"{path} is not a genvision metrics file (no evaluations list)", fix)
    for i, entry in enumerate(evaluations):
        problem = _entry_problem(entry)
        if problem:
            raise UserError(f"metrics file {path}: evaluation {i + 1} {problem}", fix)
    return data


def _entry_problem(entry: Any) -> str | None:
    """What is wrong with one metrics.json entry (None: nothing)."""
    if not isinstance(entry, dict):
        return f"is not a JSON object (got {json.dumps(entry, default=str)[:40]})"
    expected = {"kind": (str,), "split": (str,), "protocol": (dict,), "data": (dict, str)}
    for key, types in expected.items():
        if entry.get(key) is not None and not isinstance(entry[key], types):
            return f"has a {key} of the wrong type ({json.dumps(entry[key], default=str)[:40]})"
    for key in (*RESULT_NUMBERS, "n", "steps", "seed"):
        value = entry.get(key)
        if value is not None and (isinstance(value, bool)
                                  or not isinstance(value, (int, float))):
            return f"has a {key} that is not a number ({json.dumps(value, default=str)[:40]})"
    return None


def read_evaluations(run_dir: str | os.PathLike) -> list[EvalRecord]:
    """The entries of ``metrics.json`` in file order; [] when the run was not evaluated.

    Raises:
        UserError: a corrupt file or one that is not a genvision metrics file.
    """
    path = RunLayout(run_dir).evaluations
    if not path.exists():
        return []
    return [EvalRecord(e) for e in _read_metrics_file(path).get("evaluations", [])]


def merge_evaluation(run_dir: str | os.PathLike, result: dict[str, Any]) -> Path:
    """Add ``result`` to ``metrics.json``; an entry with the same :func:`protocol_key` is
    updated, not duplicated, so ``--metrics fid`` then ``--metrics pr`` on one protocol
    give one entry with both. Other top-level keys are kept. Written atomically; returns
    the path. A symbolic link there is refused (UserError), never read or replaced."""
    path = RunLayout(run_dir).evaluations
    # a linked metrics.json would be read from elsewhere and silently cut off from its target
    refuse_link(path)
    data = _read_metrics_file(path) if path.exists() else {}
    record = EvalRecord(dict(result))
    evals, merged = [], record.fields
    for entry in data.get("evaluations", []):
        if EvalRecord(entry).key() == record.key():
            merged = entry | record.fields
        else:
            evals.append(entry)
    evals.append(merged)
    data["evaluations"] = evals
    atomic_write_json(path, data)
    return path
