"""``genvision features probe RUN``: how much class information a run's latent features hold.

    genvision features probe runs/vae [--labels 100,1000] [--seeds 5]
    genvision features probe runs/sngan --data idx:/path/to/mnist --split test --out DIR

Prints the table (latent features and raw pixels: linear-probe accuracy, k-means NMI and
ARI) and writes ``results.json``, ``results.md``, ``pca.png`` and ``tsne.png`` to --out
(default RUN/probe/). Options are derived from
:class:`genvision.apps.latent_features.probe.ProbeOptions`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import dataclass_config as cfg
from ..apps.latent_features.probe import PROBE_DIR, ProbeOptions, probe_run
from ..apps.latent_features.report import RESULTS_JSON, markdown_table
from .parser import Parser


def _parser() -> argparse.ArgumentParser:
    p = Parser(prog="genvision features probe",
                description="Linear probe (logistic regression on 100 / 1000 labels), k-means "
                            "NMI/ARI and PCA / t-SNE maps of a run's latent features (VAE: "
                            "encoder mean; GAN: discriminator features), against raw pixels.")
    p.add_argument("run", help="run directory of `genvision train` (vae, dcgan, wgan-gp, sngan)")
    p.add_argument("--out", help=f"directory for the results (default RUN/{PROBE_DIR})")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                   help="show progress: bars in a terminal, plain lines in a log")
    cfg.add_dataclass_flags(p, ProbeOptions)
    return p


def cmd_probe(argv: list[str]) -> int:
    """Entry point of ``genvision features probe``; returns the exit status."""
    args = _parser().parse_args(argv)
    opts = cfg.from_dict(ProbeOptions, cfg.overrides_from_args(ProbeOptions, args),
                         what="probe option")
    results = probe_run(args.run, opts, out=args.out, progress=args.progress)
    print(markdown_table(results), end="")
    out = Path(args.out) if args.out else Path(args.run) / PROBE_DIR
    t = results["time_s"]
    print(f"\nwritten to {out / RESULTS_JSON}, results.md and the maps "
          f"({t['total_wall']:.0f} s wall, {t['total_cpu']:.0f} s CPU)")
    return 0
