"""Atomic file writes, link-safe opening and safe tensor loading.

Everything genvision writes goes through :func:`atomic_write_bytes` (temp file in the same
directory, fsync, ``os.replace``), so a crash or Ctrl-C never leaves a half-written file
where a good one was. Tensors are stored with safetensors, which holds raw arrays and a
JSON header only: loading one never runs code.

Nothing is ever written *through* a symbolic link: the temp file is created with
``O_EXCL`` (which never follows a link) and ``os.replace`` swaps a link at the destination
for the new file, leaving the link's target alone. Files written in place (the appended
``metrics.jsonl``, the ``.lock``) are opened with :func:`open_no_follow`, which refuses a
link with a one-line :class:`UserError`; :func:`pointed_entry` keeps a pointer file such
as ``checkpoints/latest`` inside its own directory.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from .errors import CheckpointError, UserError


@contextmanager
def atomic_writer(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """``with atomic_writer(path) as fh:`` writes into a temporary file beside ``path``
    that replaces it (fsynced) only when the block ends without an error, so readers see
    the old file or the new one, never half. Callers can stream large files (an encoded
    16000x12000 PNG) without holding them in memory.

    A symbolic link at ``path`` is replaced by the file; its target is never written.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # mkstemp opens with O_CREAT | O_EXCL: a planted link at the temp name fails, never
        # followed
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _naming(exc, path) from None
    try:
        # mkstemp creates 0600; give the file the mode a plain open() would (0666 minus the
        # umask), so a report or board copied to a web server stays readable by others
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)  # a full disk leaves no temp file behind
        if isinstance(exc, OSError) and exc.filename in (None, tmp):
            raise _naming(exc, path) from None
        raise


def _umask() -> int:
    """The process umask (read by setting it and back: the only portable way)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _naming(exc: OSError, path: Path) -> OSError:
    """``exc`` naming the file the user knows (not its hidden temp name); the errno
    subclass (PermissionError, ...) is kept."""
    if exc.errno is None:
        return exc
    return OSError(exc.errno, exc.strerror, str(path))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_writer`)."""
    with atomic_writer(path) as fh:
        fh.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def link_refused(path: str | os.PathLike) -> UserError:
    """The one-line error for a symbolic link where genvision writes a run file."""
    return UserError(f"{path} is a symbolic link, and genvision never writes through a link "
                     "in a run directory",
                     f"replace the link {path} with a regular file (or remove it) and run again")


def refuse_link(path: str | os.PathLike) -> None:
    """Raise :func:`link_refused` when ``path`` is a symbolic link (dangling or not)."""
    if os.path.islink(path):
        raise link_refused(path)


def open_no_follow(path: str | os.PathLike, flags: int, mode: int = 0o644) -> int:
    """``os.open`` that never follows a symbolic link at ``path`` and opens regular files only.

    Args:
        flags: ``os.O_*`` flags; ``O_NOFOLLOW`` is added.
    Returns:
        The file descriptor.
    Raises:
        UserError: ``path`` is a link (even a dangling one: ``O_CREAT`` would create its
            target) or not a regular file (a FIFO or device would block or be clobbered).
    """
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0), mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP or os.path.islink(path):
            raise link_refused(path) from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UserError(f"{path} is not a regular file", f"remove {path} and run again")
    if hasattr(os, "O_NONBLOCK"):  # only there so that opening a FIFO cannot hang
        os.set_blocking(fd, True)
    return fd


def pointed_entry(pointer: str | os.PathLike, *, what: str = "checkpoint") -> Path:
    """The entry of ``pointer``'s own directory that the text file ``pointer`` names.

    ``checkpoints/latest`` holds a directory name; it must name a real (not linked) entry
    of ``checkpoints/`` itself, so a planted ``../../other_run/...``, an absolute path, a
    hidden temp name or a link never makes genvision load or resume another directory.

    Raises:
        CheckpointError: the folder, the pointer or the entry is a link, or the name is not
            a plain visible name inside the folder.
    """
    pointer = Path(pointer)
    folder = pointer.parent
    fix = f"write the name of one of the {what} directories in {folder} into {pointer}"
    for p in (folder, pointer):
        if p.is_symlink():
            raise CheckpointError(f"{p} is a symbolic link; a run's {what}s must be its own "
                                  "files", "replace the link with a copy of what it points to")
    name = pointer.read_text(encoding="utf-8", errors="replace").strip()
    if (not name or name.startswith(".") or "/" in name or "\\" in name or "\0" in name
            or os.path.isabs(name)):
        raise CheckpointError(f"{pointer} names {name[:200]!r}, which is not a {what} "
                              f"directory inside {folder}", fix)
    entry = folder / name
    if entry.is_symlink():
        raise CheckpointError(f"{entry} ({what} {name} that {pointer} names) is a symbolic "
                              f"link; a run's {what}s must be its own directories",
                              f"replace the link with a copy of the {what}, or {fix}")
    return entry


def save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor],
                 metadata: dict[str, str] | None = None) -> None:
    """Save a flat dict of tensors as .safetensors, atomically."""
    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    atomic_write_bytes(path, save(flat, metadata=metadata))


def load_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a .safetensors file; a missing or corrupt file raises :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist", "check the run directory path")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{path} is not a readable safetensors file ({str(exc).splitlines()[0]})",
            "the file is corrupt or truncated; restore it or retrain",
        ) from None


def read_json(path: str | os.PathLike, *, what: str = "file") -> Any:
    """Read a JSON file with a one-line error when it is missing or corrupt."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} {path} does not exist", "check the path")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{what} {path} is not valid JSON ({exc})",
                              "the file is corrupt; restore it or retrain") from None
