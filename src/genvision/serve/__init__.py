"""``genvision serve RUN [RUN...]``: an interactive local demo of trained runs.

One page per server, one card per run: sample (seed, label, and every option of the
model's samplers: temperature, truncation, steps, ...), interpolate between two samples
(latent models), complete an image drawn on a canvas or uploaded (fully visible and
diffusion models), and super-resolve / colorize / translate an uploaded image (task runs).

**Why a small standard stack, not Gradio.** The demo is Python's own
``http.server.ThreadingHTTPServer`` with JSON endpoints and one static HTML/JS page
(:mod:`.page`). It adds no runtime dependency: Gradio pulls in FastAPI, uvicorn, pydantic,
httpx and a large bundled front end, moves fast between major versions, and would make a
CPU-first library carry a web framework for one command. What the demo needs
(about ten form controls, a drawing canvas, image uploads) is a few hundred lines of plain
JavaScript; the page loads nothing from the network, so it also works offline. The models
run in-process, loaded once with :func:`genvision.load` (no pickled code), one request at
a time. Bad input over HTTP (not an image, too large, wrong channels, absurd sizes or
steps) is a 400 with the same one-line message the CLI prints, shown on the page.

Example:
    >>> from genvision.serve import make_server                 # doctest: +SKIP
    >>> server = make_server(["runs/vae", "runs/sr4"], port=0)   # port 0: any free port
    >>> print(server.url); server.serve_forever()
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from ..errors import UserError
from .runs import ServedRun, open_run
from .server import DemoServer, start_in_thread

__all__ = ["DemoServer", "ServedRun", "make_server", "open_runs", "start_in_thread"]


def open_runs(paths: Sequence[str | os.PathLike], device: str | torch.device = "cpu"
              ) -> list[ServedRun]:
    """Load every run (all before serving, so a bad path fails at start-up)."""
    if not paths:
        raise UserError("no run to serve", "pass one or more run directories")
    runs: list[ServedRun] = []
    for i, path in enumerate(paths):
        runs.append(open_run(i, path, torch.device(device), {r.name for r in runs}))
    return runs


def make_server(paths: Sequence[str | os.PathLike], host: str = "127.0.0.1", port: int = 7860,
                device: str | torch.device = "cpu", quiet: bool = False) -> DemoServer:
    """A bound (not yet serving) demo server for the runs at ``paths``.

    Raises:
        UserError: a path is not a servable run, or the port cannot be bound.
    """
    runs = open_runs(paths, device)
    try:
        return DemoServer((host, port), runs, quiet=quiet)
    except OSError as err:
        raise UserError(f"cannot listen on {host}:{port} ({err.strerror or err})",
                        "pass another --port (0 picks a free one) or stop the program "
                        "using it") from None
