"""Pixel distributions shared by every likelihood model: one implementation of each.

Each distribution is a small object built from a network's output parameters with

* ``log_prob_map(x)`` -- log p of every value, elementwise, in nats;
* ``log_prob(x)`` -- the same summed over the last three dimensions (C, H, W): nats per image;
* ``sample(generator)`` -- a draw in [0, 1], all randomness from ``generator`` (uniforms
  drawn by :func:`~genvision.distributions.base.uniform`, then a deterministic transform
  ``from_uniform``, so a caller that manages its own noise can feed it directly).

Values are floats in [0, 1]: binary {0, 1}; ``levels`` levels as ``k / (levels - 1)``.

* :class:`Bernoulli` -- binary pixels from logits.
* :class:`Categorical` -- ``levels``-way softmax (256 for 8-bit images, van den Oord et al.
  2016, https://arxiv.org/abs/1601.06759).
* :class:`DiscretizedLogistic` and :class:`DiscretizedLogisticMixture` -- PixelCNN++
  (Salimans et al. 2017, https://arxiv.org/abs/1701.05517), edge bins open to -inf / +inf.
* :func:`bits_per_dim` -- nats per image to bits per dimension (:mod:`.units`).

This package sits beside :mod:`genvision.nn` and imports only torch.
"""

from .base import uniform
from .bernoulli import Bernoulli
from .categorical import Categorical
from .logistic import (
    DiscretizedLogistic,
    DiscretizedLogisticMixture,
    discretized_logistic_log_prob,
)
from .units import bits_per_dim

__all__ = ["Bernoulli", "Categorical", "DiscretizedLogistic", "DiscretizedLogisticMixture",
           "bits_per_dim", "discretized_logistic_log_prob", "uniform"]
