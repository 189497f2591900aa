"""Hyper-parameters of the VQ-VAE (:mod:`genvision.models.vqvae`): the autoencoder and
codebook of stage 1, the Gated PixelCNN prior of stage 2, and when stage 2 starts."""

from __future__ import annotations

import dataclasses
from dataclasses import field
from typing import Literal

from ..errors import UserError
from .base import DEPTH, IMAGE_SIDE, KERNEL, NONNEG, UNIT, WIDTH, ModelConfig, bounds

__all__ = ["LIKELIHOOD_DATA_KINDS", "VQVAEConfig"]

#: the decoder likelihoods and the data kinds each is a proper discrete likelihood for
LIKELIHOOD_DATA_KINDS: dict[str, tuple[str, ...]] = {
    "bernoulli": ("binary",),
    "logistic": ("grey8", "rgb8"),
}
#: the largest codebook: the prior's categorical head has at most 256 classes
MAX_CODES = 256


@dataclasses.dataclass
class VQVAEConfig(ModelConfig):
    """Hyper-parameters of :class:`~genvision.models.vqvae.VQVAE`.

    Defaults aim at 28x28 binary MNIST on a 2-core CPU: two stride-2 stages give a 7x7
    code map over 64 codes of 16 dimensions, small conv widths, and a 6-layer Gated
    PixelCNN prior over the 49 codes. ``ae_steps`` splits the run: steps before it train
    the autoencoder, steps from it train the prior on the frozen codes.
    """

    hidden: tuple[int, ...] = field(
        default=(32, 64), metadata={"help": "conv channels per stride-2 stage: the code map "
                                            "is the image / 2**len(hidden)", **WIDTH})
    res_blocks: int = field(default=1, metadata={"help": "residual blocks at the code-map "
                                                         "resolution, encoder and decoder",
                                                 **DEPTH})
    codebook_size: int = field(default=64, metadata={"help": "K, the number of codes",
                                                     **bounds(2, MAX_CODES)})
    embedding_dim: int = field(default=16, metadata={"help": "D, the size of each code "
                                                             "vector", **WIDTH})
    commitment: float = field(default=0.25, metadata={"help": "beta, the weight of the "
                                                              "commitment loss", **NONNEG})
    codebook_decay: float = field(default=0.99, metadata={"help": "decay of the codebook's "
                                                                  "EMA updates", **UNIT})
    codebook_eps: float = field(default=1e-5, metadata={
        "help": "Laplace smoothing of the codebook's EMA counts", **bounds(0, lo_open=True)})
    restart_threshold: float = field(
        default=1.0, metadata={"help": "re-seed a code from the batch's encoder outputs when "
                                       "its EMA count (vectors per batch) falls below this "
                                       "(0 = never)", **NONNEG})
    likelihood: Literal["auto", "bernoulli", "logistic"] = field(
        default="auto", metadata={"help": "decoder likelihood p(x|z): bernoulli (binary "
                                          "data), logistic (discretised, 8-bit data), auto "
                                          "= by data kind"})
    ae_steps: int = field(
        default=2000, metadata={"help": "training steps of stage 1 (autoencoder + codebook); "
                                        "later steps train the prior on the frozen codes",
                                **bounds(1)})
    prior_hidden: int = field(default=32, metadata={"help": "feature maps of the prior's "
                                                            "Gated PixelCNN", **WIDTH})
    prior_layers: int = field(default=6, metadata={"help": "gated layers of the prior",
                                                   **bounds(1, 256)})
    prior_kernel: int = field(default=3, metadata={"help": "kernel of the prior's layers "
                                                           "2.. (odd)", **KERNEL})
    prior_input_kernel: int = field(default=5, metadata={"help": "kernel of the prior's "
                                                                 "first layer (odd)", **KERNEL})
    prior_out_hidden: int = field(default=64, metadata={"help": "width of the prior's 1x1 "
                                                                "output layer", **WIDTH})
    prior_embedding: int = field(default=16, metadata={"help": "size of the learned code "
                                                               "embedding the prior reads",
                                                       **WIDTH})
    prior_dilation: tuple[int, ...] = field(
        default=(1,), metadata={"help": "dilations of the prior's layers 2.. in turn (1 = "
                                        "undilated: a 7x7 code map needs no more reach)",
                                **IMAGE_SIDE})

    def __post_init__(self) -> None:
        checks = [(len(self.hidden) >= 1 and min(self.hidden) >= 1,
                   "hidden needs at least one positive width"),
                  (self.res_blocks >= 0, "res_blocks must be >= 0"),
                  (2 <= self.codebook_size <= MAX_CODES,
                   f"codebook_size must be in 2..{MAX_CODES}"),
                  (0 <= self.codebook_decay < 1, "codebook_decay must be in [0, 1)"),
                  (self.commitment >= 0 and self.restart_threshold >= 0,
                   "commitment and restart_threshold must be >= 0"),
                  (self.prior_kernel % 2 == 1 and self.prior_input_kernel % 2 == 1,
                   "prior_kernel and prior_input_kernel must be odd")]
        for ok, msg in checks:
            if not ok:
                raise UserError(f"invalid vqvae config: {msg}", "change the option value")
        side = 2 ** len(self.hidden)
        if side > max(self.image_size):
            raise UserError(
                f"invalid vqvae config: {len(self.hidden)} stride-2 stages need images of at "
                f"least {side} pixels a side, got {self.image_size[0]}x{self.image_size[1]}",
                f"use fewer --hidden widths (at most {max(self.image_size).bit_length() - 1}) "
                "or larger images")

    @property
    def code_shape(self) -> tuple[int, int]:
        """(h, w) of the code map: the image side / 2**stages, rounded up (padded)."""
        m = 2 ** len(self.hidden)
        return -(-self.image_size[0] // m), -(-self.image_size[1] // m)
