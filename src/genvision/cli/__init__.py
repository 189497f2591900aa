"""The ``genvision`` command line.

    genvision data list
    genvision train MODEL [--data SPEC] [model, data and training flags] --out DIR
    genvision train --resume DIR [--steps N | --epochs E | --minutes M]
    genvision sample RUN -n 64 --seed 1 -o grid.png [--label 3] [--sampler-opt key=value]
    genvision evaluate RUN [--metrics nll,fid,...] [--n 10000] [--sampler-opt key=value]
    genvision compare RUN1 RUN2 ... [-o board.html]
    genvision features train --data SPEC [--split all] [--out DIR]
    genvision superres train|apply|compare ...   (bicubic vs SRResNet vs SRGAN)
    genvision colorize train|apply|compare ...   (L1 regression vs pix2pix GAN)
    genvision translate train|apply|compare ...  (pix2pix vs CycleGAN between domains)
    genvision classify --task 0-vs-1|all [--curve]  (generative vs discriminative)
    genvision augment --n 100 [--seeds 3]        (real vs classic vs generated data)
    genvision features probe RUN                 (linear probe, PCA/t-SNE map, k-means NMI)
    genvision outliers RUN --ood faces,noise     (NLL, likelihood ratio, typicality)
    genvision theory kl-mle                      (why minimising KL is maximum likelihood)
    genvision serve RUN [RUN...] [--port 7860] [--open]   (a local demo page)
    genvision info RUN
    genvision report RUN

Flags for models, data and training are derived from their config dataclasses, so an
option is declared once. User errors print one line, ``error: problem (fix: ...)``,
and exit with status 2, without a traceback.

Each command lives in its own module of this package (:data:`COMMANDS` names it);
``main`` imports only the module of the command it runs, so ``genvision --help`` and a
mistyped command stay fast. Every parser is :class:`.parser.Parser`.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from collections.abc import Callable

from ..errors import UserError, os_error
from ..version import __version__


@dataclasses.dataclass(frozen=True)
class Command:
    """A sub-command: where its entry point lives and what it does in one line."""

    target: str  #: ``"dotted.module:function"``; the function takes argv, returns the status
    help: str

    def resolve(self) -> Callable[[list[str]], int]:
        """Import the command's module (only now: it may pull in torch and friends)."""
        module, _, function = self.target.partition(":")
        return getattr(importlib.import_module(module), function)


#: every sub-command, in the order the "unknown command" error lists them
COMMANDS: dict[str, Command] = {
    "train": Command("genvision.cli.train:cmd_train", "train a model or resume a run"),
    "sample": Command("genvision.cli.sample:cmd_sample",
                      "draw samples from a run (or complete an image)"),
    "evaluate": Command("genvision.cli.evaluate:cmd_evaluate",
                        "score a run: NLL and sample metrics, with their protocol"),
    "compare": Command("genvision.cli.runs:cmd_compare", "several runs in one table"),
    "features": Command("genvision.cli.features:cmd_features",
                        "the metrics' feature network; probe a run's latent features"),
    "info": Command("genvision.cli.runs:cmd_info", "describe a run, or list the models"),
    "report": Command("genvision.cli.runs:cmd_report", "(re)write a run's report.html"),
    "data": Command("genvision.cli.data:cmd_data", "the datasets genvision can read"),
    "superres": Command("genvision.cli.superres:cmd_superres",
                        "super-resolution: bicubic vs SRResNet vs SRGAN"),
    "colorize": Command("genvision.cli.colorize:cmd_colorize",
                        "colorization: L1 regression vs pix2pix GAN"),
    "translate": Command("genvision.cli.translate:cmd_translate",
                         "image translation between domains: pix2pix vs CycleGAN"),
    "classify": Command("genvision.cli.classify:cmd_classify",
                        "generative vs discriminative classifiers"),
    "augment": Command("genvision.cli.augment:cmd_augment",
                       "real vs classic vs generated training data"),
    "outliers": Command("genvision.cli.outliers:cmd_outliers",
                        "outlier detection with a likelihood model"),
    "serve": Command("genvision.cli.serve:cmd_serve", "a local demo page of runs (sample, ...)"),
    "theory": Command("genvision.cli.theory:cmd_theory",
                      "exact numerical checks of the theory (KL and maximum likelihood)"),
}


def main(argv: list[str] | None = None) -> int:
    """Run ``genvision ARGV...``; returns the exit status (2 for a user error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        usage = __doc__.strip().split("\n\n")[1]  # the command list of the module docstring
        print(f"genvision {__version__}: deep generative models of images\n\n{usage}\n\n"
              "`genvision COMMAND --help` lists every option of a command.")
        return 0
    if argv[0] == "--version":
        print(__version__)
        return 0
    command = COMMANDS.get(argv[0])
    try:
        if command is None:
            raise UserError(f"unknown command {argv[0]!r}",
                            f"use one of: {', '.join(COMMANDS)}")
        return command.resolve()(argv[1:])
    except UserError as err:
        print(f"error: {err.one_line()}", file=sys.stderr)
        return err.exit_code
    except OSError as err:  # a full disk, a permission: the machine, not a bug, said no
        print(f"error: {os_error(err).one_line()}", file=sys.stderr)
        return 2
    except MemoryError:  # a size the bounds allow but this machine cannot hold
        print("error: out of memory (fix: lower --batch-size, --image-size, -n or the model's "
              "widths)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; the last checkpoint is kept (resume with --resume)", file=sys.stderr)
        return 130


__all__ = ["COMMANDS", "Command", "main"]
