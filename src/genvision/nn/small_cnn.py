"""The small CNN body and the one loop that trains a classifier on it.

Two networks of genvision are small image classifiers built on this body:

* the feature network of FID / KID / precision-recall (:mod:`genvision.metrics.feature_net`):
  three conv-BatchNorm-ReLU-pool blocks, average-pooled to 2x2;
* the discriminative baseline of the classify, augment and feature-probe tasks
  (:mod:`genvision.tasks.common.small_cnn`): two conv-ReLU-pool blocks, LeNet-like
  (LeCun et al. 1998, http://yann.lecun.com/exdb/publis/pdf/lecun-98.pdf).

:func:`conv_body` builds either (layer order and indices are part of the feature network's
cached state-dict keys, ``body.<i>.*``, so they must not move), and :func:`fit_classifier`
trains any classifier ``net(x) -> logits`` with AdamW on cross-entropy, seeded by one
generator.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..progress import progress_bar

__all__ = ["BatchFn", "conv_body", "fit_classifier", "random_shift", "shuffled_batches",
           "steps_for"]

#: per-batch augmentation: ``f(x [B, C, H, W], generator) -> x`` (same shape)
BatchFn = Callable[[Tensor, torch.Generator], Tensor]


def conv_body(in_channels: int, widths: list[int], size: tuple[int, int], *,
              batch_norm: bool, pool_min_side: int = 0, out_pool: int | None = None
              ) -> tuple[nn.Sequential, tuple[int, int, int]]:
    """Blocks of conv3x3 [-> BatchNorm] -> ReLU [-> 2x2 max-pool], optionally avg-pooled.

    Args:
        in_channels: image channels.
        widths: output channels of each block.
        size: (H, W) of the input.
        batch_norm: BatchNorm after each conv (whose bias it then makes redundant: dropped).
        pool_min_side: a block pools only while its input's smaller side is >= this (4
            keeps a 2x2 map's layout; 0 always pools).
        out_pool: if set, a final adaptive average pool to ``out_pool x out_pool``.

    Returns:
        The body ([N, in_channels, H, W] -> [N, C', H', W']) and its output (C', H', W').
    """
    layers: list[nn.Module] = []
    c_in, (h, w) = in_channels, size
    for c_out in widths:
        layers.append(nn.Conv2d(c_in, c_out, 3, padding=1, bias=not batch_norm))
        if batch_norm:
            layers += [nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
        else:
            layers.append(nn.ReLU())
        if min(h, w) >= pool_min_side:
            layers.append(nn.MaxPool2d(2))
            h, w = h // 2, w // 2
        c_in = c_out
    if out_pool is not None:
        layers.append(nn.AdaptiveAvgPool2d(out_pool))
        h = w = out_pool
    return nn.Sequential(*layers), (c_in, h, w)


def shuffled_batches(n: int, batch_size: int, steps: int, generator: torch.Generator,
                     drop_last: bool) -> Iterator[Tensor]:
    """Indices of ``steps`` batches of a fresh random order per pass over ``n`` items.

    A new order is drawn (from ``generator``) when the current one is used up; with
    ``drop_last`` a pass ends as soon as a full batch no longer fits. Orders are drawn
    lazily, exactly when the next batch needs one, so augmentation drawing from the same
    generator in between sees a fixed stream.
    """
    order, pos = torch.randperm(n, generator=generator), 0
    need = min(batch_size, n) if drop_last else 1
    for _ in range(steps):
        if pos + need > n:
            order, pos = torch.randperm(n, generator=generator), 0
        idx = order[pos:pos + batch_size]
        pos += len(idx)
        yield idx


def fit_classifier(net: nn.Module, x: Tensor, y: Tensor, *, steps: int, batch_size: int,
                   lr: float, weight_decay: float, generator: torch.Generator,
                   augment: BatchFn | None = None, label_smoothing: float = 0.0,
                   lr_factor: Callable[[int], float] | None = None, drop_last: bool = True,
                   channels_last: bool = False, progress: bool = False,
                   desc: str = "classifier") -> nn.Module:
    """Train ``net`` (logits [B, K] from [B, C, H, W]) with AdamW on cross-entropy.

    The caller builds (and seeds) the network; everything random in the loop -- data order
    (:func:`shuffled_batches`) and ``augment`` -- draws from ``generator``.

    Args:
        net: the classifier, trained in place.
        x: float32 [N, C, H, W] images. y: int64 [N] labels.
        steps: optimiser steps. batch_size, lr, weight_decay: AdamW settings.
        generator: seeds the data order and augmentation.
        augment: optional per-batch transform ``f(x_batch, generator)``.
        label_smoothing: of the cross-entropy.
        lr_factor: optional learning-rate multiplier per step (a ``LambdaLR`` schedule).
        drop_last: start a new pass when a full batch no longer fits (else the last batch
            of a pass is smaller).
        channels_last: run the batches in channels-last memory format (faster CPU convs).
        progress: show progress labelled ``desc`` (:func:`genvision.progress.progress_bar`:
            a bar on a terminal or in a notebook, plain lines in a log).

    Returns:
        ``net``, still in training mode.
    """
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    sched = None if lr_factor is None else torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    net.train()
    with progress_bar(total=steps, desc=desc, unit="step", disable=not progress,
                      leave=False) as bar:
        for idx in shuffled_batches(len(x), batch_size, steps, generator, drop_last):
            xb = x[idx] if augment is None else augment(x[idx], generator)
            if channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(net(xb), y[idx], label_smoothing=label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            if progress:  # before update: a plain line written by it shows this loss
                bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
            bar.update(1)
    return net


def steps_for(epochs: float, n: int, batch_size: int, min_steps: int = 0) -> int:
    """Optimiser steps of ``epochs`` passes over ``n`` items (at least ``min_steps``)."""
    return max(min_steps, math.ceil(epochs * n / batch_size))


def random_shift(x: Tensor, max_shift: int, gen: torch.Generator,
                 pad_mode: str = "constant") -> Tensor:
    """Shift each image of x [N, C, H, W] by its own random integer (dy, dx) in
    [-max_shift, max_shift]; the uncovered border is zero (``constant``) or repeats the
    edge pixels (``replicate``: no black frame on photographs)."""
    n, c, h, w = x.shape
    m = max_shift
    padded = F.pad(x, (m, m, m, m), mode=pad_mode)
    offs = torch.randint(0, 2 * m + 1, (n, 2), generator=gen)
    # gather rows then columns with per-image index grids: one op for the whole batch
    rows = (offs[:, 0, None] + torch.arange(h)[None]).view(n, 1, h, 1)
    cols = (offs[:, 1, None] + torch.arange(w)[None]).view(n, 1, 1, w)
    out = padded.gather(2, rows.expand(n, c, h, w + 2 * m))
    return out.gather(3, cols.expand(n, c, h, w))
