"""The parser every ``genvision`` command uses, and flags derived from config dataclasses.

:class:`Parser` turns argparse's usage dump into genvision's one-line error style
(``error: problem (fix: ...)``, exit status 2); the helpers add a model's, a sampler's or
any config dataclass's options as flags, so each option is declared once, on its field.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from .. import dataclass_config as cfg
from ..errors import UserError
from ..models.base import get_model_class


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) instead of a usage dump."""

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{self.prog}: {message}", f"see `{self.prog} --help`")


def add_model_flags(parser: argparse.ArgumentParser, model_name: str) -> type:
    """Add the flags of ``model_name``'s config dataclass; returns the model class.

    A model with measured training defaults (``train_defaults``) says so in the epilog
    (the training flags show them as their defaults: see ``cli.train.train_parser``).
    """
    model_cls = get_model_class(model_name)
    group = parser.add_argument_group(f"{model_name} options")
    cfg.add_dataclass_flags(group, model_cls.config_class)
    notes = []
    if model_cls.train_defaults:
        recipe = " ".join(f"--{k.replace('_', '-')} {v}"
                          for k, v in model_cls.train_defaults.items())
        notes.append(f"The training defaults above include {model_name}'s measured recipe "
                     f"({recipe}).")
    if model_cls.unused_train_options:
        flags = ", ".join(cfg.flag_name(k) for k in model_cls.unused_train_options)
        notes.append(f"{model_name} does not use {flags}: its optimisers are set by the "
                     f"{model_name} options above.")
    parser.epilog = " ".join(notes) or None
    return model_cls


def add_sampler_opt_flag(p: argparse.ArgumentParser) -> None:
    """``--sampler-opt KEY=VALUE`` (repeatable), read by :func:`models.sampling.make_sampler`,
    and its shorthands ``--steps N`` and ``--guidance W`` (read back with
    :func:`sampler_opts`)."""
    p.add_argument("--sampler-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="a sampler option, e.g. truncation=0.7 or ema=false (repeatable)")
    p.add_argument("--steps", metavar="N", default=None,
                   help="sampler steps of a diffusion model (= --sampler-opt steps=N)")
    p.add_argument("--guidance", metavar="W", default=None,
                   help="classifier-free guidance of a conditional diffusion model: 0 "
                        "unconditional, 1 conditional, >1 guided (= --sampler-opt "
                        "guidance=W)")


def sampler_opts(args: argparse.Namespace) -> list[str]:
    """The ``--sampler-opt`` strings with ``--steps`` / ``--guidance`` added (a model whose
    sampler has no such option refuses them by name in ``make_sampler``)."""
    opts = list(args.sampler_opt)
    for key in ("steps", "guidance"):
        if getattr(args, key) is not None:
            opts.append(f"{key}={getattr(args, key)}")
    return opts


def add_tiling_flags(p: argparse.ArgumentParser, default_tile: int, unit: str) -> None:
    """``--tile`` and ``--overlap`` of the tiled ``apply`` commands (superres, colorize)."""
    p.add_argument("--tile", type=int, default=default_tile,
                   help=f"tile side in {unit} (default {default_tile}); smaller uses less "
                        "memory")
    p.add_argument("--overlap", type=int,
                   help="context pixels around each tile (default: the network's receptive "
                        "radius, which makes tiling exact)")
