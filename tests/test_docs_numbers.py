"""The numbers the README quotes are the measured ones: every decimal number in README.md
appears in BENCHMARKS.md, where each comes with its protocol and command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: decimals in the README that are not measurements
NOT_MEASURED = {"3.10", "2.4"}  # the minimum Python and torch versions


def decimals(text: str) -> set[str]:
    return set(re.findall(r"(?<![\w.])\d+\.\d+(?![\w.])", text))


def test_every_number_the_readme_quotes_is_in_benchmarks():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    bench = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
    quoted = decimals(readme) - NOT_MEASURED
    assert quoted, "the README quotes no measurement at all"
    missing = sorted(n for n in quoted if n not in decimals(bench))
    assert not missing, f"README quotes numbers BENCHMARKS.md does not hold: {missing}"


def test_the_check_fails_for_a_number_nobody_measured(tmp_path):
    bench = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
    assert "81.23456" not in decimals(bench)
    assert "81.23456" in decimals("a VAE reaches 81.23456 nats")
