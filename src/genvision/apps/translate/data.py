"""The data of a translation run: two domains, and the stacked tensor the loop trains on.

A run's two sides come either from a named domain pair
(:func:`genvision.data.domain_pairs.load_domain_pair`: ``mnist-mnistm``, ``edges-photos``,
``digits-mnist``) or from two data specs of the project (``--a SPEC --b SPEC``, any source
:func:`genvision.data.load_dataset` reads: ``folder:``, ``idx:``, ``npz:``, embedded names),
paired only when ``--paired`` says image i of A corresponds to image i of B (both then
need the same count; their train/val/test splits are the same index sets, because a
split depends only on the count and the seed).

The training tensor holds an A image in its first C_a channels and a B image in the rest
(:mod:`genvision.models.translation`):

* **pix2pix** trains on true pairs, so it refuses an unpaired pair;
* **CycleGAN** is *denied the pairs*: on paired data B is reordered by a seeded cyclic
  permutation (Sattolo's algorithm: one cycle through every image, so no image of A keeps
  its own counterpart), and on unpaired data the smaller side is cycled through seeded
  permutations up to the larger side's count. Its losses sum over A images and over B
  images and never over rows, so which B shares a row with which A does not matter
  otherwise.

Only the ``train`` split trains and the ``val`` split validates; the ``test`` split (the
held-out photos of ``mnist-mnistm`` and ``edges-photos``) is read only by ``compare``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ... import dataclass_config as cfg_io
from ...data import domain_pairs
from ...data.base import ImageSet
from ...data.sources import load_dataset
from ...data.transforms import BT601, resize_pad, to_grayscale
from ...errors import UserError

__all__ = ["PairOptions", "Sides", "load_sides", "stack", "convert_channels",
           "cyclic_permutation", "cycled_indices"]


@dataclasses.dataclass
class PairOptions:
    """Where a translation run's two domains come from (one flag per field)."""

    pair: str | None = field(default=None, metadata={
        "help": "a built-in domain pair: " + ", ".join(domain_pairs.DOMAIN_PAIRS)})
    a: str | None = field(default=None, metadata={
        "help": "domain A as a data spec (folder:DIR, idx:PATH, npz:FILE or an embedded "
                "name), with --b"})
    b: str | None = field(default=None, metadata={"help": "domain B as a data spec, with --a"})
    paired: bool = field(default=False, metadata={
        "help": "with --a/--b: image i of A corresponds to image i of B (same counts)"})
    image_size: int | None = field(default=None, metadata={
        "help": "resize both sides to this square side (keep aspect, pad black)",
        **cfg_io.bounds(4, 1024)})
    split_seed: int = field(default=0, metadata={
        "help": "seed of the train/val/test split (and of a built-in pair's photo crops)",
        **cfg_io.SEED})

    def __post_init__(self) -> None:
        cfg_io.check_fields(self)
        if self.pair is not None and (self.a is not None or self.b is not None):
            raise ValueError("give --pair or --a/--b, not both")
        if self.pair is None and (self.a is None or self.b is None):
            raise ValueError("give a built-in --pair, or both sides with --a SPEC --b SPEC")
        if self.pair is not None and self.paired:
            raise ValueError("--paired applies to --a/--b (a built-in pair knows whether it "
                             "is paired)")

    @property
    def name(self) -> str:
        """The pair's name: the built-in name, or ``A-SPEC | B-SPEC``."""
        return self.pair if self.pair is not None else f"{self.a} | {self.b}"


def parse_options(values: dict[str, Any]) -> PairOptions:
    """PairOptions from flags or a run record, with one-line errors."""
    return cfg_io.from_dict(PairOptions, values, what="data option")


@dataclasses.dataclass
class Sides:
    """Two domains of one split: ``a`` and ``b`` uint8 ImageSets of the same H x W."""

    a: ImageSet
    b: ImageSet
    paired: bool
    description: str

    @property
    def labelled(self) -> bool:
        """Both sides carry labels (label preservation can be scored)."""
        return self.a.y is not None and self.b.y is not None

    @property
    def image_size(self) -> tuple[int, int]:
        return self.a.shape[1], self.a.shape[2]


def load_sides(opts: PairOptions, split: str) -> Sides:
    """The two domains of ``split`` (``train``, ``val`` or ``test``), checked.

    Raises:
        UserError: unknown pair or spec, a --paired pair of different counts, or sides of
            different image sizes.
    """
    if opts.pair is not None:
        dp = domain_pairs.load_domain_pair(opts.pair, split, opts.split_seed)
        a, b, paired, description = dp.a, dp.b, dp.paired, dp.description
        if opts.image_size is not None:
            a.x, b.x = resize_pad(a.x, opts.image_size), resize_pad(b.x, opts.image_size)
    else:
        kw = {"image_size": opts.image_size, "split_seed": opts.split_seed}
        a = load_dataset(str(opts.a), split, **kw)
        b = load_dataset(str(opts.b), split, **kw)
        paired = opts.paired
        description = (f"A: {opts.a}, B: {opts.b}; "
                       f"{'paired by order' if paired else 'unpaired'}")
        if paired and len(a) != len(b):
            raise UserError(f"--paired needs as many A images as B images, but the {split} "
                            f"split has {len(a)} of {opts.a} and {len(b)} of {opts.b}",
                            "drop --paired, or give two sources of the same images in the "
                            "same order")
    if a.shape[1:] != b.shape[1:]:
        raise UserError(f"domain A images are {a.shape[2]}x{a.shape[1]} but domain B images "
                        f"are {b.shape[2]}x{b.shape[1]}",
                        "pass --image-size N to resize both sides to N x N")
    return Sides(a, b, paired, description)


def protocol(opts: PairOptions, sides: Sides) -> dict[str, Any]:
    """The run's data protocol (run.json ``data``): what ``compare`` and reports show, and
    what ``genvision compare`` matches runs on (``source``, ``shape``)."""
    h, w = sides.image_size
    ca, cb = sides.a.shape[0], sides.b.shape[0]
    return {"source": opts.name, "shape": [ca + cb, h, w], "split": "train",
            "split_seed": opts.split_seed, "pair": opts.pair, "a": sides.a.source,
            "b": sides.b.source, "paired": sides.paired, "how_made": sides.description,
            "image_size": [h, w], "a_channels": ca, "b_channels": cb,
            "labelled": sides.labelled, "train_images": {"a": len(sides.a), "b": len(sides.b)},
            "resized_to": opts.image_size,
            "heldout": "the test split, read only by `translate compare`"}


# ----- stacking ----------------------------------------------------------------------------
def cyclic_permutation(n: int, seed: int) -> np.ndarray:
    """A seeded uniformly random n-cycle (Sattolo 1986): ``perm[i] != i`` for every i
    when n > 1, so reordering B by it leaves no image beside its own counterpart."""
    perm = np.arange(n)
    rng = np.random.default_rng(seed)
    for i in range(n - 1, 0, -1):
        j = int(rng.integers(0, i))  # j < i: Sattolo's variant of Fisher-Yates
        perm[i], perm[j] = perm[j], perm[i]
    return perm


def cycled_indices(n: int, total: int, seed: int) -> np.ndarray:
    """``total`` indices into n items: seeded permutations of 0..n-1 one after another,
    cut at ``total`` (every item used as evenly as the counts allow)."""
    rng = np.random.default_rng(seed)
    rounds = -(-total // n)
    return np.concatenate([rng.permutation(n) for _ in range(rounds)])[:total]


def stack(sides: Sides, method: str, seed: int) -> tuple[Tensor, dict[str, Any]]:
    """The uint8 training tensor [N, C_a + C_b, H, W] of ``method`` and how it was made.

    Raises:
        UserError: pix2pix on unpaired sides.
    """
    a, b = sides.a.x, sides.b.x
    if method == "pix2pix":
        if not sides.paired:
            raise UserError(f"pix2pix trains on pairs, and {sides.a.source} / "
                            f"{sides.b.source} is unpaired",
                            "train --method cyclegan, or give --a/--b with --paired when "
                            "image i of A corresponds to image i of B")
        return torch.cat([a, b], 1), {"rows": "true pairs: image i of A beside image i of B",
                                      "n": len(a)}
    if sides.paired:
        perm = cyclic_permutation(len(b), seed)
        return torch.cat([a, b[torch.from_numpy(perm)]], 1), {
            "rows": "pairs denied: B reordered by a seeded cyclic permutation (Sattolo), so "
                    "no A image is beside its own counterpart", "permutation_seed": seed,
            "n": len(a)}
    n = max(len(a), len(b))
    if len(a) < n:
        a = a[torch.from_numpy(cycled_indices(len(a), n, seed))]
    if len(b) < n:
        b = b[torch.from_numpy(cycled_indices(len(b), n, seed))]
    smaller = "A" if len(sides.a) < len(sides.b) else "B" if len(sides.b) < len(sides.a) else None
    rows = ("unpaired: each A image beside the B image of the same index" if smaller is None
            else f"unpaired: the smaller side ({smaller}) cycled through seeded "
                 f"permutations up to the larger side's {n} images")
    return torch.cat([a, b], 1), {"rows": rows, "cycle_seed": seed, "n": n}


# ----- channels ----------------------------------------------------------------------------
def convert_channels(x: Tensor, channels: int) -> Tensor:
    """Images [N, C, H, W] (uint8 or float in [0, 1]) as ``channels`` channels: grey is
    repeated into RGB, RGB becomes grey with BT.601 weights; the identity baseline of a
    grey <-> colour pair."""
    if x.shape[1] == channels:
        return x
    if channels == 3:
        return x.repeat(1, 3, 1, 1)
    if x.dtype == torch.uint8:
        return to_grayscale(x)
    w = torch.tensor(BT601, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)
