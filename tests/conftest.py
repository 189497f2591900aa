"""Test-wide settings.

One OpenMP thread per process: the suite runs on 2 cores and some tests start extra
processes (DDP, the CLI); several processes each spinning 2 OpenMP threads on 2 cores
slow every step down by an order of magnitude. Tiny test models lose nothing by it.
"""

import os

os.environ["OMP_NUM_THREADS"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")

import torch  # noqa: E402

torch.set_num_threads(1)


import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Feature networks and reference features go to a per-session cache, never ~/.cache:
    tests must not depend on (or pollute) what a user's earlier runs cached."""
    old = os.environ.get("GENVISION_CACHE")
    os.environ["GENVISION_CACHE"] = str(tmp_path_factory.mktemp("genvision-cache"))
    yield
    if old is None:
        os.environ.pop("GENVISION_CACHE", None)
    else:
        os.environ["GENVISION_CACHE"] = old


@pytest.fixture(scope="session")
def tiny_vae_run(tmp_path_factory):
    """A finished tiny VAE run on the digits (2 steps, one checkpoint), trained once per
    session; tests that damage it copy it first (``shutil.copytree``)."""
    from genvision.cli import main

    out = tmp_path_factory.mktemp("tiny-vae") / "run"
    argv = ["train", "vae", "--data", "digits", "--steps", "2", "--out", str(out),
            "--latent-dim", "4", "--hidden", "8", "16", "--fc-dim", "32", "--res-blocks", "0",
            "--ar-layers", "1", "--ar-channels", "4", "--batch-size", "32", "--no-progress"]
    assert main(argv) == 0
    return out


def pytest_collection_modifyitems(config, items):
    """``@pytest.mark.cuda`` tests skip, saying why, where torch sees no CUDA device."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (torch.cuda.is_available() is False)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
