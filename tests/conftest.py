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
