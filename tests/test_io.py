"""Atomic writes and safe loading: nothing half-written, nothing unpickled."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from genvision.errors import CheckpointError
from genvision.storage import (
    atomic_write_bytes,
    atomic_write_text,
    load_tensors,
    read_json,
    save_tensors,
)


def test_atomic_write_keeps_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    atomic_write_bytes(path, b"old")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError):
        atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]  # no temp file left behind


def test_tensors_round_trip(tmp_path):
    t = {"a": torch.arange(6.0).view(2, 3), "b": torch.tensor([1, 2], dtype=torch.int64)}
    save_tensors(tmp_path / "t.safetensors", t)
    back = load_tensors(tmp_path / "t.safetensors")
    assert torch.equal(back["a"], t["a"]) and torch.equal(back["b"], t["b"])


def test_truncated_and_pickled_files_are_refused(tmp_path):
    path = tmp_path / "t.safetensors"
    save_tensors(path, {"a": torch.zeros(100)})
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_tensors(path)
    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps({"a": torch.zeros(1)}))
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_tensors(evil)


def test_read_json_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        read_json(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        read_json(bad)


def test_atomic_writes_get_the_umask_mode_not_mkstemps_0600(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "board.html", "<html></html>")
        assert (tmp_path / "board.html").stat().st_mode & 0o777 == 0o644  # others can read
        os.umask(0o077)
        atomic_write_text(tmp_path / "private.json", "{}")
        assert (tmp_path / "private.json").stat().st_mode & 0o777 == 0o600  # umask respected
    finally:
        os.umask(old)
