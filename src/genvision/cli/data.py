"""``genvision data list``: the datasets genvision can read."""

from __future__ import annotations

from ..data import list_datasets
from .parser import Parser
from .stages import dispatch


def cmd_data(argv: list[str]) -> int:
    """Entry point of ``genvision data``; returns the exit status."""
    return dispatch("data", "the datasets genvision can read",
                    "    genvision data list      (name, kind, shape, size, description)",
                    {"list": _list}, argv)


def _list(argv: list[str]) -> int:
    """``genvision data list``: its own parser, so ``--help`` describes it."""
    p = Parser(prog="genvision data list",
               description="List the datasets genvision can read: name, pixel kind, image "
                           "shape, number of images and a description. A spec such as "
                           "folder:PATH or idx:PATH reads your own files.")
    p.parse_args(argv)
    rows = list_datasets()
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        shape = "x".join(str(s) for s in r["shape"]) if r.get("shape") else "any"
        size = r.get("size") or ""
        print(f"{r['name']:<{width}}  {r['kind']:<9} {shape:<9} {str(size):>7}  "
              f"{r['description']}")
        if r.get("location"):  # downloadable: a system copy, the cache, or not yet
            print(f"{'':<{width}}  {'':<9} {'':<9} {'':>7}  -> {r['location']}")
    return 0
