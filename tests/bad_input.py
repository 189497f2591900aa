"""The bad-input corpus: what every refusal of bad input must look like (issue 16).

A *case* builds its bad input inside a fresh folder (files the test generates: damaged
checkpoints, truncated IDX files, symlinks, a user's own folder, ...) and returns the
command line that meets it. :func:`check_refusal` then runs the CLI in-process and asserts
the contract the README promises for bad input:

- exit status 2;
- exactly one line on stderr, starting ``error:``, naming the problem (``words``);
- no traceback anywhere;
- nothing that existed before is changed, removed or replaced (file bytes, symlink
  targets, folders), and nothing new is written unless the case says where it may be.

The corpus is split by area: ``test_bad_input_*.py`` each hold a list of :class:`Case`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from genvision.cli import main


@dataclass(frozen=True)
class Case:
    """One piece of bad input.

    ``build(folder)`` creates the input under ``folder`` and returns the argv (without the
    program name). ``words`` must all appear in the one-line error. ``may_create`` lists
    paths (relative to ``folder``) that the refusal may leave behind, e.g. a cache folder.
    """

    name: str
    build: Callable[[Path], list[object]]
    words: tuple[str, ...]
    may_create: tuple[str, ...] = field(default_factory=tuple)

    def __str__(self) -> str:  # pytest ids
        return self.name


def tree(folder: Path) -> dict[str, object]:
    """Everything under ``folder``: file bytes, symlink targets and folders, by path."""
    state: dict[str, object] = {}
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in dirs + files:
            path = Path(root) / name
            rel = str(path.relative_to(folder))
            if path.is_symlink():
                state[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                state[rel] = ("dir",)
            else:
                state[rel] = ("file", path.read_bytes(), path.stat().st_mode)
    return state


def check_refusal(case: Case, folder: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """Build ``case`` in ``folder``, run it, assert the refusal contract; return the error."""
    argv = [str(a) for a in case.build(folder)]
    before = tree(folder)
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, err
    assert code == 2, (code, err)
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for word in case.words:
        assert word in err, (word, err)
    after = tree(folder)
    for rel, state in before.items():
        assert after.get(rel) == state, f"{rel} was changed or removed by a refused command"
    new = [rel for rel in after if rel not in before
           and not any(rel == p or rel.startswith(p + os.sep) for p in case.may_create)]
    assert not new, f"a refused command wrote {new}"
    return err
