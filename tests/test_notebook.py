"""docs/notebooks/tour.ipynb runs: its code cells are executed in order, in one namespace,
with its budget lines replaced by tiny ones (the 8x8 digits, 2 steps per model), so the
notebook's API calls cannot drift from the library. No Jupyter needed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "docs" / "notebooks" / "tour.ipynb"


def code_cells(path: Path) -> list[str]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def with_budgets(source: str, budgets: dict[str, str]) -> str:
    """``source`` with each ``NAME = ...`` line of ``budgets`` replaced; every name must
    be set exactly once, so a notebook that drops or renames a knob fails here."""
    for name, value in budgets.items():
        source, n = re.subn(rf"(?m)^{name} = .*$", f"{name} = {value}", source)
        assert n == 1, f"the notebook sets {name} {n} times, expected once"
    return source


def test_the_notebook_trains_samples_and_compares_three_families(tmp_path, monkeypatch,
                                                                  capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(plt, "show", lambda *a, **k: None)
    cells = code_cells(NOTEBOOK)
    cells[0] = with_budgets(cells[0], {"DATA": '"digits"', "BUDGET": '{"steps": 2}',
                                       "N_EVAL": "40", "OUT": '"nb"'})
    namespace: dict = {"__name__": "__main__"}
    for i, source in enumerate(cells):
        exec(compile(source, f"{NOTEBOOK.name}[code cell {i}]", "exec"), namespace)
    runs = namespace["runs"]
    assert len(runs) == 3 and len({namespace["models"][n].family for n in runs}) == 3
    for run in runs.values():
        assert (Path(run) / "run.json").is_file() and (Path(run) / "metrics.json").is_file()
    assert (tmp_path / "nb" / "board.html").is_file()
    assert "fid" in capsys.readouterr().out.lower()


def test_budget_replacement_fails_for_a_missing_knob():
    with pytest.raises(AssertionError, match="sets BUDGET 0 times"):
        with_budgets('DATA = "mnist5k"\n', {"BUDGET": "{}"})
