"""Headless-Chromium helpers shared by the browser tests of report and compare pages.

Tests import them as ``browser`` (pytest puts tests/ on sys.path); ``chromium()`` skips
the calling test, with the install command, where Chromium is absent.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium not installed: apt-get install chromium")
    return exe


def run_chromium(exe: str, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars",
           f"--user-data-dir={tmp / 'profile'}", "--virtual-time-budget=5000", *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("chromium did not finish within 90 s")


def count_colour(img: np.ndarray, colour: tuple[int, int, int], tol: int = 12) -> int:
    """Pixels of ``img`` [H, W, 3] within ``tol`` of ``colour`` in every channel."""
    return int((np.abs(img.astype(int) - np.array(colour)) <= tol).all(axis=-1).sum())
