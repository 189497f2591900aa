"""Going back to an earlier checkpoint of a run (``genvision train --resume RUN --from-step N``).

After a divergence the newest checkpoints may hold blown-up weights; the loop names the
last checkpoint written while the loss was in its normal range (see :mod:`.loss_range`).
:func:`rewind` makes that checkpoint the one a resume continues from:

1. the checkpoints after step N are moved, each by one atomic rename, into
   ``checkpoints/rewound-<old latest>/`` (nothing is deleted: they stay the user's, and no
   resume, listing or pruning looks inside that folder);
2. ``checkpoints/latest`` is rewritten atomically to name ``step-N``.

A kill between the two leaves ``latest`` naming a checkpoint that was moved; a resume then
refuses in one line, and running the same ``--from-step N`` again finishes the job. The
caller holds the run's lock.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import CheckpointError
from ..storage import atomic_write_text, refuse_link
from . import checkpoint as ckpt

#: the folder of ``checkpoints/`` that later checkpoints are moved into
ASIDE_PREFIX = "rewound-"


def check_rewind(run_dir: str | os.PathLike, step: int) -> tuple[Path, list[Path]]:
    """The checkpoint of ``step`` and the later ones :func:`rewind` would move; changes
    nothing.

    Raises:
        CheckpointError: the run has no complete checkpoint of that step.
    """
    run_dir = Path(run_dir)
    refuse_link(run_dir / ckpt.CHECKPOINTS)
    found = ckpt.list_checkpoints(run_dir)
    steps = [s for s, _ in found]
    target = run_dir / ckpt.CHECKPOINTS / ckpt.step_dir_name(step)
    if step not in steps or not (target / ckpt.TRAINER_JSON).is_file():
        have = ", ".join(map(str, steps)) or "none"
        raise CheckpointError(f"{run_dir} has no checkpoint of step {step} "
                              f"(its checkpoints: {have})",
                              "pass --from-step one of those steps")
    return target, [p for s, p in found if s > step]


def rewind(run_dir: str | os.PathLike, step: int) -> str:
    """Make checkpoint ``step`` the run's latest, moving later checkpoints aside (see the
    module docstring). Returns one line saying what was done."""
    target, later = check_rewind(run_dir, step)
    root = target.parent
    moved = ""
    if later:
        aside = _free_name(root / f"{ASIDE_PREFIX}{later[-1].name}")
        aside.mkdir()
        for path in later:
            os.rename(path, aside / path.name)
        moved = (f"; the {len(later)} later checkpoint(s) were moved to {aside} (delete "
                 "that folder when you no longer need them)")
    atomic_write_text(root / ckpt.LATEST, target.name + "\n")
    return f"--from-step {step}: checkpoints/latest now names {target.name}{moved}"


def _free_name(path: Path) -> Path:
    """``path``, or ``path.2``, ``path.3``, ... : the first that does not exist."""
    n, candidate = 1, path
    while os.path.lexists(candidate):
        n += 1
        candidate = path.with_name(f"{path.name}.{n}")
    return candidate
