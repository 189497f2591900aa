"""Config dataclasses <-> JSON <-> command-line flags.

Every model, the training loop and the data pipeline describe their options as a
``@dataclass``. This module turns such a dataclass into argparse flags (so no option is
written out twice), reads the flags back into an instance, and (de)serialises instances as
plain JSON for checkpoints, and writes and reads the TOML files of run configs
(:func:`toml_text`, :func:`read_toml`). Field help text lives in ``field(metadata={"help": ...})``.

Validation is declared the same way, once per field, and applied by one function
(:func:`check_values`) wherever a config is built: from flags or a saved dict
(:func:`from_dict`) and, through the config classes' ``__post_init__``, from Python. Every
value is checked against its annotated type (a float must be finite), a ``Literal``'s
choices, and the field's :func:`bounds` metadata (``min``/``max``, each end open or
closed) or ``pattern`` metadata (a regex a string must match in full). Size fields carry
an upper bound too, so a typo or a damaged ``config.json`` cannot ask for petabytes.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import numbers
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from .errors import UserError

try:  # Python 3.11+; the tomli backport has the same API
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

T = TypeVar("T")

_SCALARS = (int, float, str, bool)
#: the largest seed any generator accepts (torch and numpy take 64-bit seeds; genvision's
#: derived seeds are 63-bit)
MAX_SEED = 2**63 - 1


def bounds(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
           hi_open: bool = False) -> dict[str, Any]:
    """Field metadata for a numeric range, checked by :func:`check_values`.

    ``bounds(0, 1, hi_open=True)`` accepts [0, 1); ``bounds(0, lo_open=True)`` any positive
    number. Merge it into a field's metadata: ``metadata={"help": ..., **bounds(1, 1024)}``.
    For a tuple field the range applies to every element.
    """
    out: dict[str, Any] = {}
    if lo is not None:
        out["min"] = lo
        out["min_exclusive"] = lo_open
    if hi is not None:
        out["max"] = hi
        out["max_exclusive"] = hi_open
    return out


#: metadata of a seed field: 0 .. 2**63 - 1
SEED = bounds(0, MAX_SEED)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _resolve_type(cls: type, f: dataclasses.Field) -> tuple[type, bool, tuple | None]:
    """Return (base scalar type, optional?, choices) for a dataclass field."""
    hints = _hints(cls)
    tp = hints[f.name]
    optional = False
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        optional = len(args) < len(typing.get_args(tp))
        tp = args[0]
        origin = typing.get_origin(tp)
    choices = None
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        tp = type(choices[0])
    elif origin in (tuple, list):
        tp = (tuple, typing.get_args(tp)[0])
    return tp, optional, choices


def flag_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def add_dataclass_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    *,
    skip: typing.Iterable[str] = (),
    defaults: Mapping[str, Any] | None = None,
    hidden: typing.Iterable[str] = (),
) -> None:
    """Add one flag per field of dataclass ``cls`` to ``parser``.

    Defaults are left as ``None`` (argparse.SUPPRESS) so that only flags the user typed
    override a config: the dataclass keeps the single source of defaults.

    Args:
        skip: fields that get no flag.
        defaults: the defaults to *show* where the caller applies others than the
            dataclass's (a model's recipe, a task stage's defaults); it must pass the
            same mapping to the config it builds, so the help cannot disagree with the
            values used. A string is shown as it is (e.g. ``0.0005 (srresnet), 0.0001
            (srgan)`` where stages differ).
        hidden: fields whose flag is accepted but not listed (options that do not apply,
            refused with a fix by the code that would use them).
    """
    skip, hidden, defaults = set(skip), set(hidden), dict(defaults or {})
    for f in dataclasses.fields(cls):
        if f.name in skip or f.metadata.get("cli") is False:
            continue
        tp, _optional, choices = _resolve_type(cls, f)
        default = f.default if f.default is not dataclasses.MISSING else None
        default = defaults.get(f.name, default)
        help_text = f.metadata.get("help", "")
        if default is not None and default != "":  # "": nothing (e.g. no extra logger)
            help_text += f" (default: {default})"
        if f.name in hidden:
            help_text = argparse.SUPPRESS
        kwargs: dict[str, Any] = {"help": help_text, "default": argparse.SUPPRESS, "dest": f.name}
        if tp is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif isinstance(tp, tuple):
            kwargs["type"] = tp[1]
            kwargs["nargs"] = "+"
        else:
            kwargs["type"] = tp
            if choices:
                kwargs["choices"] = choices
        parser.add_argument(flag_name(f.name), **kwargs)


def shown_default(help_text: str) -> str | None:
    """The ``(default: X)`` text of a flag's help (as :func:`add_dataclass_flags` writes
    it), or None."""
    m = re.search(r"\(default: (.*)\)$", help_text or "")
    return m.group(1) if m else None


def overrides_from_args(cls: type, args: argparse.Namespace) -> dict[str, Any]:
    """The fields of ``cls`` the user set on the command line."""
    names = {f.name for f in dataclasses.fields(cls)}
    out = {}
    for k, v in vars(args).items():
        if k in names:
            out[k] = tuple(v) if isinstance(v, list) else v
    return out


def _range_text(meta: Mapping[str, Any]) -> str | None:
    """``in [0, 1)``, ``> 0``, ``<= 1024``: the accepted range of a field, or None."""
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and hi is not None:
        return (f"in {'(' if meta.get('min_exclusive') else '['}{lo}, "
                f"{hi}{')' if meta.get('max_exclusive') else ']'}")
    if lo is not None:
        return f"{'>' if meta.get('min_exclusive') else '>='} {lo}"
    if hi is not None:
        return f"{'<' if meta.get('max_exclusive') else '<='} {hi}"
    return None


def _in_range(v: float, meta: Mapping[str, Any]) -> bool:
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and (v <= lo if meta.get("min_exclusive") else v < lo):
        return False
    return not (hi is not None and (v >= hi if meta.get("max_exclusive") else v > hi))


def _scalar_problem(v: Any, tp: type, choices: tuple | None,
                    meta: Mapping[str, Any]) -> tuple[str, str] | None:
    """(what the value must be, what to set) when ``v`` is not a valid ``tp``, else None."""
    rng = _range_text(meta)
    want = f"a value {rng}" if rng else "a valid value"
    if choices is not None:
        if v not in choices:
            listed = ", ".join(str(c) for c in choices)
            return f"one of {listed}", f"one of {listed}"
        return None
    if tp is bool:
        return (None if isinstance(v, bool) else ("true or false", "true or false"))
    if tp is int:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            return f"an integer{' ' + rng if rng else ''}", want
    elif tp is float:
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            return f"a number{' ' + rng if rng else ''}", want
        if not math.isfinite(float(v)):
            return f"a finite number{' ' + rng if rng else ''}", want
    elif tp is str:
        if not isinstance(v, str):
            return "a string", "a string"
        pattern = meta.get("pattern")
        if pattern and not re.fullmatch(pattern, v):
            accepts = meta.get("accepts", pattern)
            return f"one of {accepts}", f"one of {accepts}"
        return None
    else:
        return None
    if rng and not _in_range(v, meta):
        return rng, want
    return None


def _label(f: dataclasses.Field, where: str | None) -> str:
    """How an error names a field: its flag, or ``name in FILE`` for a saved config."""
    if where:
        return f"{f.name} in {where}"
    return flag_name(f.name) if f.metadata.get("cli") is not False else f.name


def check_values(cls: type, data: Mapping[str, Any], *, where: str | None = None) -> None:
    """Check the values in ``data`` against the fields of dataclass ``cls``.

    Each value must have its field's type (an int for ``int``, a finite number for
    ``float``, one of the choices of a ``Literal``), lie in the field's :func:`bounds`
    and match its ``pattern`` metadata; a tuple field checks each element. Keys that
    are not fields are left to the caller.

    Args:
        where: the file the values came from (errors then name it and the field, not
            the flag).

    Raises:
        UserError: one line naming the option, the bad value and the accepted range.
    """
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        v = data[f.name]
        tp, optional, choices = _resolve_type(cls, f)
        label = _label(f, where)
        if v is None:
            if optional:
                continue
            raise UserError(f"{label} must be set, got null", f"give {label} a value")
        if isinstance(tp, tuple):
            if not isinstance(v, (tuple, list)):
                raise UserError(f"{label} must be a list of values, got {v!r}",
                                f"set {label} to a list")
            args = typing.get_args(_hints(cls)[f.name])
            if args and args[-1] is not Ellipsis and len(v) != len(args):  # tuple[int, int]
                raise UserError(f"{label} must be a list of {len(args)} values, got {v!r}",
                                f"set {label} to {len(args)} values")
            items, tp = list(v), tp[1]
        else:
            items = [v]
        for item in items:
            problem = _scalar_problem(item, tp, choices, f.metadata)
            if problem is not None:
                must, fix = problem
                raise UserError(f"{label} must be {must}, got {item!r}",
                                f"set {label} to {fix}")


def check_fields(obj: Any) -> None:
    """:func:`check_values` on a dataclass instance (called from ``__post_init__``)."""
    check_values(type(obj), {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)})


def from_dict(cls: type[T], data: dict[str, Any], *, what: str = "config",
              where: str | None = None) -> T:
    """Build dataclass ``cls`` from a dict, rejecting unknown keys and values outside their
    fields' types and bounds (:func:`check_values`) with a clear error.

    Args:
        where: the file ``data`` was read from, named in the errors.
    """
    if not isinstance(data, Mapping):
        raise UserError(f"{what} {'in ' + where + ' ' if where else ''}must be a JSON "
                        f"object, got {type(data).__name__}", "restore or rewrite it")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise UserError(
            f"unknown {what} option(s) {', '.join(unknown)} for {cls.__name__}",
            f"use one of: {', '.join(sorted(names))}",
        )
    hints = typing.get_type_hints(cls)
    fixed = {}
    for k, v in data.items():
        if isinstance(v, list) and typing.get_origin(hints[k]) is tuple:
            v = tuple(v)
        fixed[k] = v
    check_values(cls, fixed, where=where)
    try:
        obj = cls(**fixed)
    except (TypeError, ValueError) as exc:
        raise UserError(f"invalid {what}: {exc}", "check the option values") from None
    return obj


def to_dict(obj: Any) -> dict[str, Any]:
    """A JSON-ready dict of a dataclass instance (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(obj)))


def replace(obj: T, **changes: Any) -> T:
    """``dataclasses.replace`` that validates through :func:`from_dict`."""
    data = dataclasses.asdict(obj)
    data.update(changes)
    return from_dict(type(obj), data)


def _toml_value(v: Any) -> str:
    """One TOML value: a bool, an int, a finite float, a string or an array of them."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, numbers.Real):
        f = float(v)
        if not math.isfinite(f):
            raise ValueError(f"TOML config values must be finite, got {f}")
        return repr(f)  # round-trips exactly; '1e-05' is valid TOML
    if isinstance(v, str):
        # a JSON string is a valid TOML basic string (same escapes, \uXXXX included)
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise ValueError(f"cannot write {type(v).__name__} {v!r} to TOML")


def toml_text(sections: Mapping[str, Mapping[str, Any]], header: str = "") -> str:
    """TOML text of ``{section: {key: value}}`` (values: scalars or flat arrays; None
    values are left out, TOML has no null). ``header`` becomes leading ``#`` comments."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    for name, values in sections.items():
        lines += ["", f"[{name}]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in values.items() if v is not None]
    return "\n".join(lines).lstrip("\n") + "\n"


def read_toml(path: str | Any) -> dict[str, Any]:
    """The TOML file at ``path`` as a dict.

    Raises:
        UserError: the file cannot be read or is not valid TOML (one line, with the
            parser's line and column).
    """
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise UserError(f"config file {path} does not exist", "check the path") from None
    except IsADirectoryError:
        raise UserError(f"config file {path} is a folder",
                        "pass the file, e.g. RUN/config.toml") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path} is not valid TOML: {exc}",
                        "fix the file (see https://toml.io)") from None
    except UnicodeDecodeError:
        raise UserError(f"{path} is not valid TOML: not UTF-8 text",
                        "pass a TOML text file") from None


def check_keys(cls: type, data: Mapping[str, Any], *, where: str, section: str,
               allowed: typing.Iterable[str] | None = None) -> None:
    """Refuse keys of ``data`` that are not fields of ``cls`` (or not in ``allowed``),
    and values of the wrong type or range, naming the file and section.

    Raises:
        UserError: one line naming the key and the accepted ones.
    """
    names = set(allowed) if allowed is not None else {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise UserError(f"unknown key(s) {', '.join(unknown)} in [{section}] of {where}",
                        f"use keys of [{section}]: {', '.join(sorted(names))}")
    check_values(cls, {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()},
                 where=f"[{section}] of {where}")
