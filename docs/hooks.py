"""MkDocs hook: the site's home page is README.md and its benchmarks page BENCHMARKS.md.

Both files live at the repository root (where GitHub shows them), so the site reads them
from there instead of keeping copies that drift. Their links are written relative to the
root (``docs/images/x.png``, ``BENCHMARKS.md#section``); here they become relative to
``docs/``. The strict build then checks every link and section anchor in them.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File, Files

#: site page -> root file it is generated from
PAGES = {"index.md": "README.md", "benchmarks.md": "BENCHMARKS.md"}
#: root file -> its page, for links between them
RENAMED = {"README.md": "index.md", "BENCHMARKS.md": "benchmarks.md"}


def rewrite_links(text: str) -> str:
    """Markdown links relative to the repository root -> relative to ``docs/``."""
    def fix(m: re.Match[str]) -> str:
        target = m.group(2)
        path, sep, anchor = target.partition("#")
        if path.startswith("docs/"):
            path = path[len("docs/"):]
        path = RENAMED.get(path, path)
        return f"{m.group(1)}({path}{sep}{anchor})"
    return re.sub(r"(\]\s?)\(([^)\s]+)\)", fix, text)


def on_files(files: Files, config) -> Files:
    root = Path(config.config_file_path).parent
    for page, source in PAGES.items():
        text = rewrite_links((root / source).read_text(encoding="utf-8"))
        files.append(File.generated(config, page, content=text))
    return files
