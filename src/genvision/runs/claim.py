"""Claiming the ``--out`` directory of a new run: refuse what is not a run, lock, then write.

Every start (``genvision train``, ``genvision.train_run``, a task's ``train``) follows
three rules, so a start can neither destroy files nor leave a directory nothing accepts:

* a directory that is not a genvision run (:func:`~.layout.is_run_dir`: a non-empty
  folder without run.json) is refused before anything is written in it, not even the
  lock file;
* the run-directory lock is taken before the run record is written, and the checks are
  made again under it, so of two starts into one directory the loser writes nothing;
* the record is written when training really starts (:class:`OnTrainStart`), after
  every option, the data and the budget were checked; a run that never reached its first
  checkpoint (killed, diverged) holds nothing to resume, so a new start replaces it and
  says so in one line. A run with a checkpoint is refused.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..callbacks import Callback, TrainState
from ..errors import RunLocked, UserError
from ..train.distributed import is_main
from ..train.lock import RunLock, claimed_run_dir, lock_holder
from .layout import RunLayout, is_run_dir


def check_writable(out: Path) -> None:
    """Refuse an ``--out`` that cannot become a run directory: a file, a path under a
    file, or one whose nearest existing folder this process may not write (a read-only
    mount, a folder of another user). Checked before anything is read or written.

    Raises:
        UserError: one line naming the path and what to choose instead.
    """
    out = Path(out)
    if os.path.lexists(out) and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder",
                        "pass the path of a new or empty folder (or of a genvision run)")
    existing = out
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"--out {out} is under {existing}, which is a file, not a folder",
                        "choose an --out whose parent folders are folders")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"cannot write --out {out}: {existing} is not writable by this user "
                        "(or is on a read-only file system)",
                        "choose a folder you may write, or change its permissions")


def refuse_foreign(out: Path) -> None:
    """Refuse ``out`` when it is a folder of other files (not a genvision run), a file,
    or a path this process cannot write (:func:`check_writable`).

    Raises:
        UserError: ``out`` is not empty and holds no run record, or is not writable.
    """
    check_writable(out)
    if not is_run_dir(out):
        holder = lock_holder(out)
        if holder is not None:  # a start that won the race and has not written run.json yet
            raise RunLocked(f"run directory {out} is in use by another training process "
                            f"(pid {holder})",
                            "wait for it to finish or stop it, or choose another --out")
        raise UserError(f"{out} is not empty and is not a genvision run (it has no "
                        f"{RunLayout(out).run_json.name})",
                        "choose a new or empty --out: genvision writes only into its own "
                        "run directories")


def replaceable(out: Path) -> bool:
    """True when ``out`` holds a run record but no checkpoint in it or its stages: a run
    that never got going, which a new start replaces rather than refuses."""
    layout = RunLayout(out)
    has_record = layout.run_json.is_file() or layout.task_json.is_file()
    return has_record and not layout.has_any_checkpoint()


def say_replacing(out: Path, log: Callable[[str], None] | None = None) -> None:
    """The one line a start prints when it replaces a run without a checkpoint."""
    message = (f"replacing the run in {out}: it has no checkpoint yet (it was stopped or "
               "failed before its first), so there is nothing to resume")
    if log is not None:
        log(message)
    elif is_main():
        print(message, file=sys.stderr)


def check_new_run(out: Path) -> bool:
    """Check that a new model run may start in ``out``; True when it replaces one.

    Raises:
        UserError: ``out`` is not a genvision run, or holds a run with a checkpoint.
    """
    refuse_foreign(out)
    layout = RunLayout(out)
    if (layout.run_json.is_file() or layout.task_json.is_file()) and not replaceable(out):
        raise UserError(f"{out} already holds a run",
                        f"continue it with `genvision train --resume {out}` or choose "
                        "another --out")
    return replaceable(out)


@contextmanager
def claimed_out(out: Path, check: Callable[[Path], object]) -> Iterator[RunLock | None]:
    """Hold ``out`` for a start: ``check(out)`` once before the lock file is created (a
    refused folder is left exactly as it was), then again under the lock, so nothing it
    checked can change before the caller writes. Yields the lock, for
    ``train(..., lock=...)`` (None on the other ranks under torchrun).

    Raises:
        UserError: what ``check`` raises. RunLocked: another process holds ``out``.
    """
    out = Path(out)
    check(out)
    with claimed_run_dir(out, resume=False, check=lambda: check(out)) as lock:
        yield lock


def refuse_foreign_output(out: Path, own: Collection[str], command: str) -> None:
    """Refuse the ``--out`` of a command that writes results of fixed names (``own``,
    e.g. outliers.json) into a folder, unless the folder is absent, empty, a genvision run,
    or holds only those names (its own earlier output, which it replaces): a result must
    never replace a file of the user's that happens to share its name.

    Raises:
        UserError: ``out`` is a file, or a folder holding anything else.
    """
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file", "pass a folder")
    if not out.is_dir() or is_run_dir(out):
        return
    others = sorted(p.name for p in out.iterdir() if p.name not in own)
    if others:
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        raise UserError(f"--out {out} holds files that {command} did not write ({shown})",
                        f"choose a new or empty --out, or the folder of an earlier {command}")


class OnTrainStart(Callback):
    """Call ``write()`` when training really starts (rank 0, under the run's lock, after
    the model, its optimisers and the data are set up): where a run's record is written,
    so a start refused before that leaves none."""

    def __init__(self, write: Callable[[], object]):
        self.write = write

    def on_train_start(self, state: TrainState) -> None:
        self.write()
