"""Tiny runs for the demo's tests, trained once per session, and the server over them.

Test modules load this file as a plugin (``pytest_plugins = ["serve_runs"]``), so the
session fixtures are made once for all of them: ``served`` is a
started :class:`genvision.serve.DemoServer` over a conditional VAE (sample, interpolate),
a DDPM (several samplers, completion, interpolation), a super-resolution run and a
colorization run (in the order of :data:`serve_client.VAE_ID` ...), all on the 8x8
digits or small photo patches.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from genvision.cli import main
from genvision.serve import make_server, start_in_thread

VAE = ["train", "vae", "--data", "digits", "--conditional", "--steps", "30",
       "--latent-dim", "4", "--hidden", "8", "16", "--fc-dim", "32", "--res-blocks", "0",
       "--ar-layers", "0", "--batch-size", "32", "--no-progress"]
DDPM = ["train", "ddpm", "--data", "digits", "--steps", "30", "--width", "8", "--depth", "1",
        "--emb-dim", "8", "--sample-steps", "3", "--batch-size", "16", "--no-progress"]
SR = ["superres", "train", "--method", "srresnet", "--scale", "2", "--steps", "30",
      "--width", "4", "--blocks", "1", "--patch", "24", "--patches", "32", "--val-patches",
      "8", "--batch-size", "8", "--no-progress"]
COLOR = ["colorize", "train", "--method", "regression", "--steps", "30", "--width", "4",
         "--depth", "2", "--patch", "24", "--patches", "32", "--val-patches", "8",
         "--batch-size", "8", "--no-progress"]


@pytest.fixture(scope="session")
def serve_runs(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("serve-runs")
    names = ("vae", "ddpm", "sr", "color")
    for name, argv in zip(names, (VAE, DDPM, SR, COLOR), strict=True):
        assert main([*argv, "--out", str(root / name)]) == 0, name
    return [root / n for n in names]


@pytest.fixture(scope="session")
def served(serve_runs):
    """The demo over :func:`serve_runs`, on a free port, in a daemon thread."""
    server = make_server(serve_runs, port=0, quiet=True)
    start_in_thread(server)
    yield server
    server.shutdown()
    server.server_close()
