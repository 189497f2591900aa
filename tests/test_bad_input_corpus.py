"""Bad-input corpus, part 1: options, ``--out`` folders and damaged model files.

Every case asserts the whole refusal contract of :mod:`bad_input` (exit 2, one line, no
traceback, nothing pre-existing changed, nothing written).
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from bad_input import Case, check_refusal

TINY = ["--latent-dim", "4", "--hidden", "8", "16", "--fc-dim", "32", "--ar-layers", "1",
        "--ar-channels", "4", "--batch-size", "16", "--no-progress"]


def train_into(out: str, *extra: object, data: str = "digits") -> list[object]:
    return ["train", "vae", "--data", data, "--steps", "1", "--out", out, *TINY, *extra]


def users_folder(folder: Path) -> Path:
    """A folder of the user's own files, named like a run's."""
    mine = folder / "mine"
    mine.mkdir()
    for name in ("report.html", "metrics.jsonl", "samples.png"):
        (mine / name).write_text(f"the user's own {name}\n")
    return mine


def idx_images(path: Path, dims: tuple[int, ...], payload: bytes) -> Path:
    """An uint8 IDX images file with header ``dims`` and the given payload bytes."""
    path.write_bytes(struct.pack(">I", 0x0800 | len(dims)) + struct.pack(f">{len(dims)}I", *dims)
                     + payload)
    return path


def idx_source(folder: Path, dims: tuple[int, ...], payload: bytes) -> str:
    return f"idx:{idx_images(folder / 'x-images-idx3-ubyte', dims, payload)}"


def npz_with_label(folder: Path, label: int) -> Path:
    x = np.random.default_rng(0).integers(0, 256, size=(64, 8, 8), dtype=np.uint8)
    y = np.zeros(64, dtype=np.int64)
    y[3] = label
    np.savez(folder / "d.npz", x=x, y=y)
    return folder / "d.npz"


OPTION_CASES = [
    Case(f"train {flag} {value}", lambda f, flag=flag, value=value:
         train_into(str(f / "run"), flag, value), (flag, value))
    for flag, value in [("--lr", "-1"), ("--lr", "nan"), ("--beta1", "1.5"),
                        ("--beta2", "-0.5"), ("--weight-decay", "-1"), ("--ema-decay", "1.5"),
                        ("--ema-decay", "-1"), ("--warmup-steps", "-5"), ("--grad-clip", "-1"),
                        ("--eval-every", "-1"), ("--sample-every", "-1"),
                        ("--device", "tpu"), ("--split-seed", "-1"), ("--seed", str(2**63)),
                        ("--image-size", "3000"), ("--latent-dim", "10000000000"),
                        ("--steps", "0"), ("--batch-size", "0")]
]

OUT_CASES = [
    Case("train --out a folder of the user's files",
         lambda f: train_into(str(users_folder(f))), ("not a genvision run",)),
    Case("superres train --out a folder of the user's files",
         lambda f: ["superres", "train", "--out", users_folder(f), "--steps", "1",
                    "--no-progress"], ("not a genvision run",)),
    Case("colorize train --out a folder of the user's files",
         lambda f: ["colorize", "train", "--out", users_folder(f), "--steps", "1",
                    "--no-progress"], ("not a genvision run",)),
]

DATA_CASES = [
    Case("conditional label 1e9",
         lambda f: train_into(str(f / "run"), "--conditional", "--split", "all",
                              data=f"npz:{npz_with_label(f, 10**9)}"),
         ("1000000000", "0..K-1")),
    Case("idx header whose size product overflows",
         lambda f: train_into(str(f / "run"), "--split", "all",
                              data=idx_source(f, (2**31, 2**31, 2**31), b"0" * 64)),
         ("header",)),
    Case("idx header larger than the file",
         lambda f: train_into(str(f / "run"), "--split", "all",
                              data=idx_source(f, (1000, 28, 28), bytes(784))),
         ("header",)),
    Case("empty folder", lambda f: (f / "empty").mkdir() or train_into(
        str(f / "run"), data=f"folder:{f / 'empty'}"), ("empty",)),
]


def damaged_run(folder: Path, tiny_vae_run: Path, damage) -> Path:
    run = folder / "run"
    shutil.copytree(tiny_vae_run, run, symlinks=True)
    damage(run)
    return run


def _config_of(run: Path) -> Path:
    return next((run / "checkpoints").glob("step-*")) / "config.json"


def _set_config(run: Path, key: str, value: object) -> None:
    path = _config_of(run)
    meta = json.loads(path.read_text())
    meta["config"][key] = value
    path.write_text(json.dumps(meta))


MODEL_FILE_DAMAGE = {
    "config.json channels -1": (lambda r: _set_config(r, "channels", -1), ("channels",)),
    "config.json channels 'abc'": (lambda r: _set_config(r, "channels", "abc"), ("channels",)),
    "config.json image_size one number": (lambda r: _set_config(r, "image_size", 28),
                                          ("image_size",)),
    "config.json latent_dim 1e10": (lambda r: _set_config(r, "latent_dim", 10**10),
                                    ("latent_dim",)),
    "config.json config a string": (
        lambda r: _config_of(r).write_text(json.dumps({"model": "vae", "config": "x"})),
        ("config.json",)),
    "config.json truncated": (lambda r: _config_of(r).write_text('{"model": "va'),
                              ("config.json",)),
    "model.safetensors random bytes": (
        lambda r: (_config_of(r).parent / "model.safetensors").write_bytes(b"\x07" * 100),
        ("safetensors",)),
}


@pytest.mark.parametrize("case", OPTION_CASES + OUT_CASES + DATA_CASES, ids=str)
def test_bad_input_is_refused_in_one_line(case, tmp_path, capsys):
    check_refusal(case, tmp_path, capsys)


@pytest.mark.parametrize("name", sorted(MODEL_FILE_DAMAGE))
def test_a_damaged_checkpoint_is_refused_by_sample(name, tmp_path, capsys, tiny_vae_run):
    damage, words = MODEL_FILE_DAMAGE[name]
    case = Case(name, lambda f: ["sample", damaged_run(f, tiny_vae_run, damage), "-n", "2",
                                 "-o", f / "s.png"], words)
    check_refusal(case, tmp_path, capsys)


def test_sample_n_is_bounded(tmp_path, capsys, tiny_vae_run):
    case = Case("sample -n 1e8", lambda f: ["sample", tiny_vae_run, "-n", 100_000_000, "-o",
                                             f / "s.png"], ("-n", "100000"))
    check_refusal(case, tmp_path, capsys)


def _link_in_run(name: str, inside: str):
    """Damage: the run's file ``inside`` becomes a link to the user's own file."""
    def damage(run: Path) -> None:
        mine = run.parent / f"users-{name}.txt"
        mine.write_text("the user's own file\n")
        target = run / inside
        if target.exists():
            target.unlink()
        target.symlink_to(mine)
    return damage


def _latest_outside(run: Path) -> None:
    other = run.parent / "other" / "step-00000002"
    shutil.copytree(next((run / "checkpoints").glob("step-*")), other)
    (run / "checkpoints" / "latest").write_text("../other/step-00000002\n")


LINK_DAMAGE = {
    ".lock is a link": (_link_in_run("lock", ".lock"), ("link",)),
    "metrics.jsonl is a link": (_link_in_run("log", "metrics.jsonl"), ("link",)),
    "latest names a checkpoint outside the run": (_latest_outside, ("latest",)),
}


@pytest.mark.parametrize("name", sorted(LINK_DAMAGE))
def test_links_in_a_run_are_refused_by_resume(name, tmp_path, capsys, tiny_vae_run):
    damage, words = LINK_DAMAGE[name]
    case = Case(name, lambda f: ["train", "--resume", damaged_run(f, tiny_vae_run, damage),
                                 "--steps", "1", "--no-progress"], words)
    check_refusal(case, tmp_path, capsys)
