"""One writer per run directory: an advisory ``flock`` on ``run_dir/.lock``.

``flock`` locks belong to the open file and vanish when the process dies, so a lock file
left behind by a crashed or killed run never blocks the next one (no stale-PID logic).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from ..errors import RunLocked, UserError
from ..storage import open_no_follow
from . import distributed as dist
from .helpers import check_run_dir

LOCK_FILE = ".lock"


class RunLock:
    """Context manager holding an exclusive non-blocking lock on ``run_dir/.lock``.

    Raises:
        RunLocked: another process (or another ``train`` call) holds the directory.
        UserError: ``.lock`` is a symbolic link or not a regular file.
    """

    def __init__(self, run_dir: str | os.PathLike):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # never through a link: a planted `.lock -> ~/file` would get ~/file truncated
        fd = open_no_follow(self.path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise RunLocked(
                f"run directory {self.run_dir} is in use by another training process "
                f"(pid {holder})",
                "wait for it to finish or stop it, or choose another --out") from None
        # The pid is informational only (for the message above); the flock is the lock.
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def lock_holder(run_dir: str | os.PathLike) -> str | None:
    """The pid (as text) of another process holding ``run_dir/.lock`` now, else None.
    Creates nothing: an absent, linked or unreadable ``.lock`` counts as not held."""
    path = Path(run_dir) / LOCK_FILE
    try:
        fd = open_no_follow(path, os.O_RDONLY)
    except (OSError, UserError):
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return os.read(fd, 64).decode("ascii", "replace").strip() or "?"
    finally:
        os.close(fd)  # closing drops the shared lock this probe may have taken
    return None


@contextmanager
def claimed_run_dir(run_dir: Path, resume: bool, *, held: RunLock | None = None,
                    check: Callable[[], None] | None = None) -> Iterator[RunLock | None]:
    """Hold ``run_dir`` for one training call: rank 0 takes the lock and checks that a new
    run does not land on an old one (``check`` first, when given, then ``check_run_dir``);
    every rank agrees before any goes on, so under torchrun all stop together with rank
    0's error. Yields the lock (None on other ranks).

    Args:
        held: a lock on ``run_dir`` the caller already holds (a run start takes it before
            writing run.json); it is neither taken again nor released here.
        check: the caller's own check, run under the lock: what it checks cannot change
            before the caller writes.
    """
    if held is not None and held.run_dir != Path(run_dir):
        raise ValueError(f"the lock held is on {held.run_dir}, not on {run_dir}")
    lock = RunLock(run_dir) if dist.is_main() and held is None else None
    error: BaseException | None = None
    try:
        if lock is not None:
            lock.acquire()
        if check is not None:
            check()
        check_run_dir(run_dir, resume)
    except BaseException as exc:  # re-raised below, once all ranks know to stop
        error = exc
    if not dist.agree(error is None):
        if lock is not None:
            lock.release()
        raise error or UserError("another rank could not start training", "see rank 0's error")
    try:
        yield lock or held
    finally:
        if lock is not None:
            lock.release()
