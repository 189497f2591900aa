"""Bad-input corpus, the training loop's part (``--from-step``) and tiled colorization
(``colorize apply --tile/--overlap``) (issue 16).

Every case asserts the whole refusal contract of :mod:`bad_input` (exit 2, one line, no
traceback, nothing pre-existing changed, nothing written).
"""

from __future__ import annotations

import shutil

import pytest

from bad_input import Case, check_refusal

TINY = ["--latent-dim", "4", "--hidden", "8", "16", "--fc-dim", "32", "--ar-layers", "1",
        "--ar-channels", "4", "--batch-size", "16", "--no-progress"]


def copied(folder, tiny_vae_run):
    run = folder / "run"
    shutil.copytree(tiny_vae_run, run, symlinks=True)
    return run


@pytest.mark.parametrize("step", ["7", "0", "-3"])
def test_from_step_without_such_a_checkpoint(step, tmp_path, capsys, tiny_vae_run):
    case = Case(f"--from-step {step}", lambda f: [
        "train", "--resume", copied(f, tiny_vae_run), "--from-step", step, "--steps", "1",
        "--no-progress"], (f"no checkpoint of step {step}", "its checkpoints: 2",
                           "--from-step"))
    check_refusal(case, tmp_path, capsys)


def test_from_step_without_resume(tmp_path, capsys):
    case = Case("--from-step on a new run", lambda f: [
        "train", "vae", "--data", "digits", "--steps", "1", "--out", f / "run",
        "--from-step", "2", *TINY], ("--from-step", "--resume"))
    check_refusal(case, tmp_path, capsys)


@pytest.mark.parametrize("flag, value", [("--tile", "0"), ("--overlap", "-1")])
def test_colorize_apply_bad_tiling(flag, value, tmp_path, capsys):
    case = Case(f"colorize apply {flag} {value}", lambda f: [
        "colorize", "apply", f / "run", f / "grey.png", "-o", f / "out.png", flag, value],
        ("--tile", "--overlap", value))
    check_refusal(case, tmp_path, capsys)
