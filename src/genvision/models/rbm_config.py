"""Hyper-parameters and the Gibbs sampler's options of the restricted Boltzmann machine
(:mod:`genvision.models.rbm`)."""

from __future__ import annotations

import dataclasses
from dataclasses import field
from typing import Any, ClassVar, Literal

from ..dataclass_config import SEED
from .base import MAX_K, WIDTH, ModelConfig, bounds
from .sampling import MAX_SAMPLES, SamplerOptions

__all__ = ["RBMConfig", "GibbsSampler", "MAX_SWEEPS"]

#: the most Gibbs sweeps one chain runs (burn-in, thinning) and AIS distributions
MAX_SWEEPS = 1_000_000
SWEEPS = bounds(0, MAX_SWEEPS)


@dataclasses.dataclass
class RBMConfig(ModelConfig):
    """Hyper-parameters of :class:`~genvision.models.rbm.RBM`.

    The defaults are the classic MNIST set-up (500 hidden units, persistent contrastive
    divergence) of Salakhutdinov & Murray 2008 and Tieleman 2008.
    """

    hidden: int = field(default=500, metadata={"help": "binary hidden units", **WIDTH})
    training: Literal["pcd", "cd"] = field(
        default="pcd", metadata={"help": "negative phase: pcd (persistent chains, Tieleman "
                                         "2008) or cd (CD-k chains restarted at the data)"})
    gibbs_steps: int = field(default=1, metadata={
        "help": "Gibbs sweeps per update: the k of CD-k, or how far PCD advances its chains",
        **bounds(1, 1000)})
    chains: int = field(default=100, metadata={
        "help": "persistent chains of PCD (the negative particles)", **bounds(1, MAX_K)})
    init_std: float = field(default=0.01, metadata={
        "help": "standard deviation of the initial weights (Hinton's practical guide: "
                "0.01)", **bounds(0, 10)})
    burn_in: int = field(default=1000, metadata={
        "help": "default Gibbs sweeps of a sampling chain before its image is taken "
                "(sample/evaluate take --sampler-opt burn_in=N)", **SWEEPS})
    ais_runs: int = field(default=100, metadata={
        "help": "annealed importance sampling runs for log Z (evaluate's --k overrides)",
        **bounds(2, MAX_K)})
    ais_betas: int = field(default=10_000, metadata={
        "help": "intermediate distributions of annealed importance sampling",
        **bounds(1, MAX_SWEEPS)})
    ais_seed: int = field(default=0, metadata={
        "help": "seed of the AIS runs: log Z is a fixed function of the weights and the "
                "AIS settings", **SEED})


@dataclasses.dataclass(frozen=True)
class GibbsSampler(SamplerOptions):
    """Block Gibbs sampling, h ~ p(h | v, y) then v ~ p(v | h), from a base-rate start.

    Every group of ``per_chain`` images is one chain: ``burn_in`` sweeps, then its images
    ``thin`` sweeps apart. With ``per_chain = 1`` (the default) every image is an
    independent chain and image k depends only on its own seed; with ``per_chain = m > 1``
    images k of one call are grouped as ``k // m`` and a group's chain uses the seed of its
    first image, so images depend on the batch split unless batches are multiples of m
    (cheaper, but the images of a group are correlated: use 1 for sample metrics).
    """

    name: ClassVar[str] = "gibbs"
    #: sweeps before the first image of a chain (None: the model's ``burn_in``)
    burn_in: int | None = None
    #: sweeps between successive images of one chain (``per_chain > 1``)
    thin: int = 1
    #: images taken from each chain
    per_chain: int = 1
    #: ``sample``: the binary visible state (what the likelihood scores); ``mean``: the
    #: visible probabilities p(v = 1 | h) of the last sweep (smoother, not data values)
    output: Literal["sample", "mean"] = "sample"

    def __post_init__(self) -> None:
        if self.burn_in is not None and not 0 <= self.burn_in <= MAX_SWEEPS:
            raise ValueError(f"burn_in must be in [0, {MAX_SWEEPS}], got {self.burn_in}")
        if not 1 <= self.thin <= MAX_SWEEPS:
            raise ValueError(f"thin must be in [1, {MAX_SWEEPS}], got {self.thin}")
        if not 1 <= self.per_chain <= MAX_SAMPLES:
            raise ValueError(f"per_chain must be in [1, {MAX_SAMPLES}], got {self.per_chain}")

    def resolve(self, model: Any) -> GibbsSampler:
        if self.burn_in is not None:
            return self
        return dataclasses.replace(self, burn_in=int(model.config.burn_in))
