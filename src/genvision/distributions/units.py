"""Likelihood units: nats per image to bits per dimension.

Every likelihood number genvision reports is computed in **nats per image** by a model's
``log_prob`` and converted to bits per dimension by :func:`bits_per_dim`, the one place
that conversion is written. It sits with the distributions (below the models) so a model
can log bits/dim in its training loss without importing the metrics layer;
:mod:`genvision.metrics.likelihood` re-exports it.
"""

from __future__ import annotations

import math

from torch import Tensor

__all__ = ["bits_per_dim"]

_LN2 = math.log(2.0)


def bits_per_dim(nats_per_image: Tensor | float, dims: int) -> Tensor | float:
    """Convert a negative log-likelihood in nats per image to bits per dimension.

    Args:
        nats_per_image: NLL in nats per image, a float or a tensor of any shape.
        dims: number of dimensions per image (C * H * W).

    Returns:
        ``nats / (dims * ln 2)``, with the type (float or tensor) of the input.
    """
    if dims <= 0:
        raise ValueError(f"dims must be positive, got {dims}")
    return nats_per_image / (dims * _LN2)
