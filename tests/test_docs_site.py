"""The docs site builds with ``mkdocs build --strict`` (a broken link, a missing image or
a missing BENCHMARKS.md section fails), has a page per family and per application, and
restates no measured numbers. Skipped, with the reason, where MkDocs is not installed
(``pip install -e '.[dev]'`` installs it)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FAMILIES = ["autoregressive", "latent", "flows", "gans", "rbm", "diffusion"]
APPLICATIONS = ["superres", "colorize", "translate", "augment", "classify", "features",
                "outliers"]


def _need_mkdocs() -> None:
    for module in ("mkdocs", "mkdocstrings", "mkdocstrings_handlers.python"):
        pytest.importorskip(module, reason=f"{module} is not installed: "
                                           "pip install -e '.[dev]' to build the docs")


def build(config: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict",
                           "-f", str(config), "-d", str(site)],
                          capture_output=True, text=True, timeout=120)


def test_the_site_builds_strictly(tmp_path):
    _need_mkdocs()
    done = build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert done.returncode == 0, done.stdout + done.stderr
    site = tmp_path / "site"
    assert (site / "index.html").is_file() and (site / "benchmarks" / "index.html").is_file()
    assert not (site / "proposed").exists(), "docs/proposed must stay out of the site"
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    assert "from_pretrained" in api and "TrainConfig" in api  # generated from docstrings


def test_a_broken_link_fails_the_strict_build(tmp_path):
    _need_mkdocs()
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text("# x\n\n[gone](nowhere.md)\n")
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    config = config.split("\nplugins:")[0].replace("hooks:\n  - docs/hooks.py\n", "")
    (tmp_path / "mkdocs.yml").write_text(config)
    done = build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert done.returncode != 0 and "nowhere.md" in done.stdout + done.stderr


def test_a_page_per_family_and_per_application():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in [f"families/{f}.md" for f in FAMILIES] + \
                [f"applications/{a}.md" for a in APPLICATIONS] + ["taxonomy.md", "api.md"]:
        assert page in nav and (DOCS / page).is_file(), page


def test_pages_link_to_benchmarks_instead_of_restating_numbers():
    pages = [DOCS / "taxonomy.md", DOCS / "python.md",
             *(DOCS / "families").glob("*.md"), *(DOCS / "applications").glob("*.md")]
    for page in pages:
        text = page.read_text(encoding="utf-8")
        prose = re.sub(r"```.*?```|`[^`]*`", "", text, flags=re.S)  # commands set options
        numbers = re.findall(r"(?<![\w.])\d+\.\d+(?![\w.])", prose)
        assert not numbers, f"{page.name} restates measured numbers {numbers}: link instead"
        if page.parent.name in ("families", "applications"):
            assert "benchmarks.md#" in text, f"{page.name} links to no BENCHMARKS.md section"


def test_root_links_are_rewritten_for_the_site():
    _need_mkdocs()  # the hook imports mkdocs
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    rewrite_links = hooks.rewrite_links
    text = "![a](docs/images/a.png) [b](BENCHMARKS.md#vae) [c](README.md) [d](#data)"
    assert rewrite_links(text) == \
        "![a](images/a.png) [b](benchmarks.md#vae) [c](index.md) [d](#data)"
