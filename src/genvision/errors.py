"""User-facing errors.

Every mistake a user can make (bad path, corrupt file, unknown option, shape mismatch,
diverged run) is raised as a :class:`UserError`. The CLI prints it as one line,
``error: <problem> (fix: <fix>)``, exits with status 2 and shows no traceback.
Library callers get an ordinary exception with the same message.
"""

from __future__ import annotations

import errno


class UserError(Exception):
    """A problem the user can fix; ``str(err)`` is one line naming the problem and the fix.

    Args:
        problem: what is wrong, e.g. ``"no images found in /data/x"``.
        fix: what to do about it, e.g. ``"point --data folder: at a folder of PNG/JPEG files"``.
    """

    exit_code = 2

    def __init__(self, problem: str, fix: str | None = None):
        self.problem = problem.rstrip(".")
        self.fix = fix.rstrip(".") if fix else None
        super().__init__(self.one_line())

    def one_line(self) -> str:
        text = self.problem if not self.fix else f"{self.problem} (fix: {self.fix})"
        return " ".join(text.split())  # guarantee a single line


class DataError(UserError):
    """A dataset cannot be found, read or used as asked."""


class CheckpointError(UserError):
    """A checkpoint is missing, corrupt, untrusted or does not match its config."""


class TrainingDiverged(UserError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class RunLocked(UserError):
    """Another process is writing the same run directory."""


#: errnos of a write that ran out of room: disk full, quota, file-size limit
NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def os_error(exc: OSError) -> UserError:
    """The one-line :class:`UserError` for an ``OSError`` that reached the CLI: a full
    disk, a refused permission, a read-only file system, a path under a file. The
    commands' own checks name most of these first; this is the boundary's safety net."""
    where = f" {exc.filename}" if exc.filename is not None else ""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno in NO_SPACE_ERRNOS:
        return UserError(f"no space left writing{where} ({reason})",
                         "free space (or raise the quota or file-size limit) and run again")
    if exc.errno == errno.EROFS:
        return UserError(f"cannot write{where}: it is on a read-only file system",
                         "choose a path on a writable file system")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return UserError(f"permission denied:{where} ({reason})",
                         "choose a path you may write (and read), or change its permissions")
    if exc.errno == errno.ENOTDIR:
        return UserError(f"a part of the path{where} is a file, not a folder ({reason})",
                         "choose a path whose parent folders are folders")
    return UserError(f"cannot read or write{where} ({reason})",
                     "check the path, the disk and the permissions, then run again")
