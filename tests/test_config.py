"""Config dataclasses become CLI flags and JSON without being written out twice."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Literal

import pytest

from genvision import dataclass_config as cfg
from genvision.errors import UserError


@dataclasses.dataclass
class Example:
    width: int = dataclasses.field(default=8, metadata={"help": "channels"})
    rate: float = 0.5
    kind: Literal["a", "b"] = "a"
    flag: bool = False
    size: tuple[int, int] = (2, 3)
    maybe: int | None = None
    hidden: int = dataclasses.field(default=1, metadata={"cli": False})


def parse(argv):
    p = argparse.ArgumentParser()
    cfg.add_dataclass_flags(p, Example)
    return cfg.overrides_from_args(Example, p.parse_args(argv))


def test_only_typed_flags_override_and_types_are_converted():
    assert parse([]) == {}
    got = parse(["--width", "16", "--rate", "0.1", "--kind", "b", "--flag", "--size", "4", "5",
                 "--maybe", "3"])
    assert got == {"width": 16, "rate": 0.1, "kind": "b", "flag": True, "size": (4, 5), "maybe": 3}
    assert cfg.from_dict(Example, got).size == (4, 5)


def test_choices_and_hidden_fields_are_enforced():
    with pytest.raises(SystemExit):
        parse(["--kind", "c"])
    with pytest.raises(SystemExit):
        parse(["--hidden", "2"])


def test_json_round_trip_and_unknown_keys():
    obj = Example(width=3, size=(7, 8))
    assert cfg.from_dict(Example, cfg.to_dict(obj)) == obj
    with pytest.raises(UserError, match="unknown config option.*wdth"):
        cfg.from_dict(Example, {"wdth": 3})
