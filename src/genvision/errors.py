"""User-facing errors.

Every mistake a user can make (bad path, corrupt file, unknown option, shape mismatch,
diverged run) is raised as a :class:`UserError`. The CLI prints it as one line,
``error: <problem> (fix: <fix>)``, exits with status 2 and shows no traceback.
Library callers get an ordinary exception with the same message.
"""

from __future__ import annotations


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
