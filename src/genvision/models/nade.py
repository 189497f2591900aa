"""NADE: the neural autoregressive distribution estimator.

Larochelle & Murray 2011, "The Neural Autoregressive Distribution Estimator" (AISTATS),
http://proceedings.mlr.press/v15/larochelle11a.html; Uria et al. 2016, "Neural
Autoregressive Distribution Estimation" (JMLR), https://arxiv.org/abs/1605.02226.

p(x) = prod_d p(x_d | x_<d) over the D = C*H*W values in the natural order (raster pixels,
channels within a pixel; see :mod:`genvision.models.dense_base`). Every conditional has
its own hidden layer, but all share one input matrix W [H, D]:

    a_d = c + W[:, <d] x_<d,    h_d = sigmoid(a_d),    p(x_d | x_<d) = head(b_d + V_d h_d)

so a_{d+1} = a_d + W[:, d] x_d. ``log_prob`` evaluates all D conditionals at once with an
exclusive cumulative sum over d, O(D*H) per image instead of the O(D^2*H) of D separate
networks; sampling walks d in order and updates the running activation a, also O(D*H).
The head is the shared pixel head: Bernoulli (binary images, the paper's model) or a
softmax over ``levels`` grey values (V then holds H x levels weights per dimension, so
prefer a few levels or ``--head logistic_mixture`` for 8-bit images).

A class-conditional NADE (``num_classes > 0``) adds a learned class embedding to the hidden
bias c, so every conditional, the first included, sees the label.
"""

from __future__ import annotations

import dataclasses
from dataclasses import field

import torch
from torch import Tensor, nn

from ..errors import UserError
from .base import NONNEG, WIDTH, register
from .dense_base import DenseAutoregressive
from .pixel_base import PixelModelConfig, draw_channel
from .sampling import SampleRNG, as_sample_rng

__all__ = ["NADE", "NADEConfig"]


@dataclasses.dataclass
class NADEConfig(PixelModelConfig):
    """Hyper-parameters of :class:`NADE`.

    H = 500 hidden units is the size of Larochelle & Murray's MNIST NADE. Training touches
    N*D*H activations per batch (memory-bound, ~200 images/s on 2 idle CPU cores for
    28x28 images), so on a CPU budget of minutes NADE sees far fewer images than MADE.
    """

    hidden: int = field(default=500, metadata={"help": "hidden units H shared by all "
                                                       "conditionals", **WIDTH})
    eval_chunk: int = field(
        default=0, metadata={"help": "images per log_prob pass without gradients (0 = sized "
                                     "to keep the [N, D, H] activations near 128 MB)", **NONNEG})

    def __post_init__(self) -> None:
        if self.hidden < 1 or self.eval_chunk < 0:
            raise UserError("invalid NADE config: hidden must be >= 1 and eval_chunk >= 0",
                            "change the option value")


@register("nade")
class NADE(DenseAutoregressive):
    """NADE with sigmoid hidden units and a shared pixel head; see the module docstring.

    Parameters: ``W`` [H, D] input weights, ``c`` [H] hidden bias, ``V`` [D, H, P] and
    ``b`` [D, P] output weights and biases (P = head parameters per value), and for a
    conditional model ``label`` [K, H].
    """

    config_class = NADEConfig

    def __init__(self, config: NADEConfig):
        super().__init__(config)
        c = config
        d, h, p = c.dims, c.hidden, self.head.params_per_channel
        gen = torch.Generator().manual_seed(c.seed)  # init from config.seed only
        # Small uniform input weights: a_d sums up to D inputs, so scale by 1/sqrt(D) to
        # keep sigmoid(a_d) out of saturation at the start.
        self.W = nn.Parameter((torch.rand(h, d, generator=gen) * 2 - 1) / d ** 0.5)
        self.c = nn.Parameter(torch.zeros(h))
        self.V = nn.Parameter((torch.rand(d, h, p, generator=gen) * 2 - 1) / h ** 0.5)
        self.b = nn.Parameter(torch.zeros(d, p))
        self.label = (nn.Parameter(torch.zeros(c.num_classes, h)) if c.num_classes
                      else None)

    # ----- likelihood ------------------------------------------------------------------------
    def _hidden_bias(self, y: Tensor | None, n: int) -> Tensor:
        """c (+ the class embedding): [n, H]."""
        if self.label is None:
            return self.c.expand(n, -1)
        return self.c + self.label[y.to(self.c.device).long().reshape(-1)].expand(n, -1)

    def conditionals(self, x: Tensor, y: Tensor | None = None, mask: int = 0) -> Tensor:
        """Head parameters of all D conditionals at once: x [N, C, H, W] -> [N, D, P].

        a_d = c + sum_{j<d} W[:, j] x_j is an *exclusive* cumulative sum over d, built by
        shifting the inputs one place (x_{d-1} W[:, d-1] lands in row d, the bias c in row
        0) before a plain cumulative sum: x_d never enters a_d, not even through rounding.
        """
        xf = self.flatten(x).to(self.W.dtype)  # [N, D]
        n = xf.shape[0]
        xs = torch.cat([xf.new_ones(n, 1), xf[:, :-1]], 1)  # [N, D]: 1, x_0, ..., x_{D-2}
        ws = torch.cat([self.c[:, None], self.W[:, :-1]], 1)  # [H, D]: c, W[:, 0], ...
        terms = xs[:, :, None] * ws.t()[None]  # [N, D, H]
        if self.label is not None:  # the class embedding joins c in row 0
            terms[:, 0] += self.label[y.to(self.c.device).long().reshape(-1)]
        h = torch.sigmoid(terms.cumsum(1))  # [N, D, H]: h_d
        return torch.einsum("ndh,dhp->ndp", h, self.V) + self.b

    def log_prob(self, x: Tensor, y: Tensor | None = None, **kwargs) -> Tensor:
        """Exact log p(x) in nats per image: x [N, C, H, W] in [0, 1] -> [N].

        Without gradients the batch is processed in chunks of ``eval_chunk`` images, since
        the activations take N*D*H floats.
        """
        self._check(x, y)
        if torch.is_grad_enabled():
            return self._log_prob(x, y)
        d, h = self.config.dims, self.config.hidden
        step = self.config.eval_chunk or max(1, 2 ** 25 // (d * h))
        return torch.cat([self._log_prob(x[i:i + step], None if y is None else y[i:i + step])
                          for i in range(0, x.shape[0], step)])

    def _log_prob(self, x: Tensor, y: Tensor | None) -> Tensor:
        xf = self.flatten(x).to(self.W.dtype)
        return self.dim_log_prob(self.conditionals(x, y), xf).sum(1)

    # ----- sampling --------------------------------------------------------------------------
    @torch.no_grad()
    def sample_cached(self, n: int, y: Tensor | None = None,
                      generator: torch.Generator | SampleRNG | None = None, *,
                      x: Tensor | None = None, keep: Tensor | None = None) -> Tensor:
        """Draw (or, with ``x``/``keep``, complete) images value by value, O(D*H) in all.

        The running activation a = c + W[:, <d] x_<d is updated with one column of W per
        value, so no conditional is recomputed from scratch. Draws follow the base class's
        rule, so the samples equal :meth:`sample_naive`'s from the same generator.

        Returns:
            [n, C, H, W] in [0, 1].
        """
        y = self._labels_for(n, y)
        xf, kf, skip = self._start(n, x, keep)
        rng = as_sample_rng(generator, n)
        a = self._hidden_bias(y, n).clone()  # [n, H]
        for d, skipped in enumerate(skip.tolist()):
            if not skipped:
                logits = self.b[d] + torch.sigmoid(a) @ self.V[d]  # [n, P]
                xf[:, d] = draw_channel(self.head, logits, rng, kf[:, d], xf[:, d])
            a += xf[:, d, None] * self.W[:, d]
        return self.unflatten(xf)
