"""Config dataclasses <-> JSON <-> command-line flags.

Every model, the training loop and the data pipeline describe their options as a
``@dataclass``. This module turns such a dataclass into argparse flags (so no option is
written out twice), reads the flags back into an instance, and (de)serialises instances as
plain JSON for checkpoints. Field help text lives in ``field(metadata={"help": ...})``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from typing import Any, TypeVar

from .errors import UserError

T = TypeVar("T")

_SCALARS = (int, float, str, bool)


def _resolve_type(cls: type, f: dataclasses.Field) -> tuple[type, bool, tuple | None]:
    """Return (base scalar type, optional?, choices) for a dataclass field."""
    hints = typing.get_type_hints(cls)
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
) -> None:
    """Add one flag per field of dataclass ``cls`` to ``parser``.

    Defaults are left as ``None`` (argparse.SUPPRESS) so that only flags the user typed
    override a config: the dataclass keeps the single source of defaults.
    """
    skip = set(skip)
    for f in dataclasses.fields(cls):
        if f.name in skip or f.metadata.get("cli") is False:
            continue
        tp, _optional, choices = _resolve_type(cls, f)
        default = f.default if f.default is not dataclasses.MISSING else None
        help_text = f.metadata.get("help", "")
        if default is not None:
            help_text += f" (default: {default})"
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


def overrides_from_args(cls: type, args: argparse.Namespace) -> dict[str, Any]:
    """The fields of ``cls`` the user set on the command line."""
    names = {f.name for f in dataclasses.fields(cls)}
    out = {}
    for k, v in vars(args).items():
        if k in names:
            out[k] = tuple(v) if isinstance(v, list) else v
    return out


def from_dict(cls: type[T], data: dict[str, Any], *, what: str = "config") -> T:
    """Build dataclass ``cls`` from a dict, rejecting unknown keys with a clear error."""
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
