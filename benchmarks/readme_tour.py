"""Time the README's five-minute tour: run its commands as written, in order, in a fresh
directory with a fresh cache (so ``evaluate`` trains its feature network, as for a new
user), and print JSON with each command's wall time and the machine's load.

    python benchmarks/readme_tour.py [--workdir DIR]

Prints ``{"total_s", "commands": [{"command", "seconds", "load_before"}, ...]}``; exits 1
if a command fails. Run it on a quiet machine: ``--minutes`` budgets are wall-clock, but
everything else (reports, evaluation, sampling) slows down with the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def tour_commands(readme: str) -> list[str]:
    """The ``genvision`` lines of the first code block under '## A five-minute tour'."""
    section = readme.split("\n## A five-minute tour", 1)[1].split("\n## ", 1)[0]
    block = section.split("```", 2)[1]
    lines = [ln.split("  #", 1)[0].strip() for ln in block.splitlines()]
    return [ln for ln in lines if ln.startswith("genvision ")]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", help="where runs/ goes (default: a new temporary folder)")
    args = p.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="genvision-tour-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GENVISION_CACHE": str(work / "cache")}
    exe = [sys.executable, "-m", "genvision"]
    results, start = [], time.perf_counter()
    for command in tour_commands((ROOT / "README.md").read_text(encoding="utf-8")):
        load = os.getloadavg()[0]
        t = time.perf_counter()
        done = subprocess.run(exe + shlex.split(command)[1:], cwd=work, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        results.append({"command": command, "seconds": round(time.perf_counter() - t, 1),
                        "load_before": round(load, 2)})
        if done.returncode:
            print(json.dumps({"failed": command, "stderr": done.stderr[-2000:]}))
            return 1
    print(json.dumps({"total_s": round(time.perf_counter() - start, 1), "workdir": str(work),
                      "cpus": os.cpu_count(), "commands": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
