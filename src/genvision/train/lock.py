"""One writer per run directory: an advisory ``flock`` on ``run_dir/.lock``.

``flock`` locks belong to the open file and vanish when the process dies, so a lock file
left behind by a crashed or killed run never blocks the next one (no stale-PID logic).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from ..errors import RunLocked

LOCK_FILE = ".lock"


class RunLock:
    """Context manager holding an exclusive non-blocking lock on ``run_dir/.lock``.

    Raises:
        RunLocked: another process (or another ``train`` call) holds the directory.
    """

    def __init__(self, run_dir: str | os.PathLike):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
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
