"""The README's five-minute tour stays true: its commands are read from README.md and run,
in order, at tiny budgets (``--minutes N`` -> ``--steps 2``, the 8x8 ``digits`` for
``mnist5k``), so a renamed flag, a run the tour never creates or a refused ``compare``
fails here. Also: no user-facing text names the repository's internal paths."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from genvision.cli import main

ROOT = Path(__file__).resolve().parents[1]
#: what the tiny run changes in a command, and nothing else: (pattern, replacement)
TINY = [
    (r"--minutes \S+", "--steps 2"),
    (r"--resume (\S+) --steps \d+", r"--resume \1 --steps 2"),
    (r"--data mnist5k", "--data digits"),
    (r"--n \d+", "--n 40"),
]


def tour_commands(readme: str) -> list[str]:
    """The ``genvision`` lines of the first code block under '## A five-minute tour',
    without their comments."""
    section = readme.split("\n## A five-minute tour", 1)[1].split("\n## ", 1)[0]
    block = section.split("```", 2)[1]
    lines = [ln.split("  #", 1)[0].strip() for ln in block.splitlines()]
    return [ln for ln in lines if ln.startswith("genvision ")]


def tiny(command: str) -> list[str]:
    for pattern, repl in TINY:
        command = re.sub(pattern, repl, command)
    return shlex.split(command)[1:]


def flag(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


@pytest.fixture(scope="module")
def commands() -> list[str]:
    return tour_commands((ROOT / "README.md").read_text(encoding="utf-8"))


def test_the_tour_uses_one_dataset_and_only_runs_it_creates(commands):
    argvs = [shlex.split(c)[1:] for c in commands]
    datasets = {flag(a, "--data") for a in argvs if flag(a, "--data")}
    assert len(datasets) == 1, f"the tour mixes datasets: {sorted(datasets)}"
    created: set[str] = set()
    for argv in argvs:
        if argv[0] == "train" and flag(argv, "--out"):
            created.add(flag(argv, "--out"))
        used = [a for a in argv[1:] if a.startswith("runs/") and not a.endswith((".png", ".html"))]
        used += [flag(argv, "--resume")] if flag(argv, "--resume") else []
        for run in used:
            assert run in created or run == flag(argv, "--out"), \
                f"`genvision {' '.join(argv)}` uses {run}, which the tour never creates"
    assert any(a[0] == "compare" for a in argvs) and len(created) >= 3


def test_the_tour_budgets_fit_five_minutes(commands):
    minutes = sum(float(m) for c in commands for m in re.findall(r"--minutes (\S+)", c))
    assert 0 < minutes <= 3, f"training budgets add up to {minutes} min of a 5-minute tour"
    for c in commands:  # IWAE-1000, evaluate's default for a VAE, takes minutes on a CPU
        if c.startswith("genvision evaluate") and "vae" in c:
            assert "--k" in c, f"{c!r} would use IWAE-1000"


def test_every_tour_command_runs_at_a_tiny_budget(commands, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for command in commands:
        argv = tiny(command)
        assert main(argv) == 0, f"`genvision {' '.join(argv)}` failed: {capsys.readouterr()}"
    out = capsys.readouterr().out
    board = [flag(shlex.split(c), "-o") for c in commands if c.startswith("genvision compare")]
    assert board and (tmp_path / board[0]).is_file()
    for c in commands:
        if c.startswith("genvision sample"):
            assert (tmp_path / flag(shlex.split(c), "-o")).is_file(), c
    assert "fid" in out.lower()  # compare printed a table with the sample metrics


def test_the_tiny_run_changes_only_budgets_and_the_dataset():
    cmd = ("genvision train vae --data mnist5k --likelihood logistic --minutes 1 "
           "--out runs/tour/vae")
    assert tiny(cmd) == ["train", "vae", "--data", "digits", "--likelihood", "logistic",
                         "--steps", "2", "--out", "runs/tour/vae"]
    assert tour_commands("x\n## A five-minute tour\n\n```\nsource a\ngenvision data list"
                         "   # note\n```\n## next\n") == ["genvision data list"]


@pytest.mark.parametrize("where", ["README.md", "src", "docs"])
def test_user_facing_text_names_no_internal_path(where):
    paths = [ROOT / where] if where.endswith(".md") else [
        p for p in (ROOT / where).rglob("*") if p.suffix in (".py", ".md")
        and "proposed" not in p.parts]
    leaks = [str(p.relative_to(ROOT)) for p in paths
             if re.search(r"\.\./shared|shared/data|/work/", p.read_text(encoding="utf-8"))]
    assert not leaks, f"internal repository paths in user-facing text: {leaks}"
