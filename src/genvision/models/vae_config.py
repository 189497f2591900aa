"""Hyper-parameters of the VAE (:mod:`genvision.models.vae`) and which pixel likelihood
fits which data kind.
"""

from __future__ import annotations

import dataclasses
from dataclasses import field
from typing import Literal

from ..errors import UserError
from .base import DEPTH, KERNEL, MAX_K, NONNEG, UNIT, WIDTH, WIDTH0, ModelConfig, bounds

__all__ = ["AUTO_LIKELIHOOD", "LIKELIHOOD_DATA_KINDS", "VAEConfig"]

#: which data kinds each pixel likelihood is a proper likelihood for
LIKELIHOOD_DATA_KINDS: dict[str, tuple[str, ...]] = {
    "bernoulli": ("binary",),
    "logistic": ("grey8", "rgb8"),
    "gaussian": ("continuous",),
}
#: the likelihood ``likelihood="auto"`` picks for each data kind
AUTO_LIKELIHOOD = {"binary": "bernoulli", "grey8": "logistic", "rgb8": "logistic",
                   "continuous": "gaussian"}


@dataclasses.dataclass
class VAEConfig(ModelConfig):
    """Hyper-parameters of :class:`~genvision.models.vae.VAE`.

    Defaults were chosen on the MNIST-5k benchmark (dynamic binarisation, 2 CPU cores):
    a small conv VAE (16-d z) with a 3-layer masked-conv autoregressive head reaches an
    IWAE-1000 NLL of 81.6 nats (first 2,000 test digits) after 10 minutes. In 3-minute
    runs the head is worth ~8 nats (IWAE-100: 82.5 vs 90.4 with ``ar_layers=0``); a
    16-channel full-resolution decoder keeps the k decoder passes of evaluation cheap.
    Set ``ar_layers=0`` for a classic factorised VAE.
    """

    latent_dim: int = field(default=16, metadata={"help": "size of the latent code z", **WIDTH})
    hidden: tuple[int, ...] = field(
        default=(16, 64), metadata={"help": "conv channels per stride-2 stage (images are "
                                            "padded to a multiple of 2**len(hidden))", **WIDTH})
    res_blocks: int = field(default=0, metadata={"help": "residual blocks per stage", **DEPTH})
    fc_dim: int = field(default=256, metadata={"help": "dense layer between conv features "
                                                       "and z (0 = none)", **WIDTH0})
    dropout: float = field(default=0.0, metadata={"help": "dropout inside residual blocks", **UNIT})
    likelihood: Literal["auto", "bernoulli", "gaussian", "logistic"] = field(
        default="auto", metadata={"help": "pixel likelihood p(x|z): bernoulli (binary data), "
                                          "logistic (discretised, 8-bit data), gaussian "
                                          "(continuous data, learned variance), auto = by "
                                          "data kind"})
    beta: float = field(default=1.0, metadata={"help": "KL weight (beta-VAE; 1 = plain VAE)",
                                               **NONNEG})
    kl_warmup_steps: int = field(
        default=1000, metadata={"help": "ramp the KL weight linearly from 0 to beta over "
                                        "this many training steps (0 = off)", **NONNEG})
    free_bits: float = field(default=0.0, metadata={"help": "minimum KL in nats per latent "
                                                            "dimension in the training loss",
                                                    **NONNEG})
    train_k: int = field(default=1, metadata={"help": "importance samples of the training "
                                                      "objective (1 = ELBO, >1 = IWAE)",
                                              **bounds(1, MAX_K)})
    iwae_k_eval: int = field(default=1000, metadata={"help": "importance samples k used by "
                                                             "log_prob (IWAE-k bound)",
                                                     **bounds(1, MAX_K)})
    ar_layers: int = field(default=3, metadata={"help": "masked-conv layers of the "
                                                        "autoregressive (PixelVAE) head, 0 = "
                                                        "factorised decoder", **DEPTH})
    ar_channels: int = field(default=16, metadata={"help": "channels of the autoregressive "
                                                           "head", **WIDTH})
    ar_kernel: int = field(default=7, metadata={"help": "kernel of the head's first masked "
                                                        "conv (odd)", **KERNEL})
    label_dim: int = field(default=16, metadata={"help": "label embedding size (conditional)",
                                                 **WIDTH})

    def __post_init__(self) -> None:
        checks = [(self.latent_dim >= 1, "latent_dim must be >= 1"),
                  (len(self.hidden) >= 1 and min(self.hidden) >= 1,
                   "hidden needs at least one positive width"),
                  (self.res_blocks >= 0 and self.fc_dim >= 0, "res_blocks, fc_dim must be >= 0"),
                  (0 <= self.dropout < 1, "dropout must be in [0, 1)"),
                  (self.beta >= 0 and self.kl_warmup_steps >= 0 and self.free_bits >= 0,
                   "beta, kl_warmup_steps and free_bits must be >= 0"),
                  (self.train_k >= 1 and self.iwae_k_eval >= 1, "train_k, iwae_k_eval >= 1"),
                  (self.ar_layers >= 0 and self.ar_kernel % 2 == 1,
                   "ar_layers must be >= 0 and ar_kernel odd")]
        for ok, msg in checks:
            if not ok:
                raise UserError(f"invalid VAE config: {msg}", "change the option value")
