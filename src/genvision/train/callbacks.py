"""Callbacks the training loop adds by default: sample grids during and after training."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor

from ..callbacks import Callback, TrainResult, TrainState
from ..grids import save_grid
from . import checkpoint as ckpt

SAMPLES = "samples"
NUM_SAMPLES = 64  # images in each sample grid


class SampleGrids(Callback):
    """Write ``samples/step-N.png`` every ``every`` steps (0: only at the end) from fixed
    seeds, so successive grids of one run show the same latents (rank 0 only).

    Args:
        every: steps between grids (0 = at the end only). seed: the sampling seed.
        n: images per grid.
        listeners: ``f(step, tag, images [N, C, H, W])`` called with each grid drawn
            (the experiment trackers' ``on_images``), so a grid is sampled once.
    """

    def __init__(self, every: int, seed: int, n: int = NUM_SAMPLES,
                 listeners: Sequence[Callable[[int, str, Tensor], None]] = ()):
        self.every, self.seed, self.n = every, seed, n
        self.listeners = list(listeners)
        self.state: TrainState | None = None
        self.drawn_step = -1

    def on_train_start(self, state: TrainState) -> None:
        self.state = state

    def on_step_end(self, state: TrainState) -> None:
        if state.rank == 0 and self.every and state.step % self.every == 0:
            self.draw(state)

    def on_train_end(self, result: TrainResult) -> None:
        if self.state is not None:
            self.draw(self.state)

    def draw(self, state: TrainState) -> None:
        if self.n <= 0 or self.drawn_step == state.step:
            return
        model, device = state.model, state.model.device
        k = model.config.num_classes
        y = torch.arange(self.n, device=device) % k if k else None
        gen = torch.Generator(device=device).manual_seed(self.seed)
        try:
            with state.eval_mode(self.seed):
                images = model.sample(self.n, y=y, generator=gen)
        except NotImplementedError:
            return  # a model without a sampler still trains
        save_grid(images, Path(state.run_dir) / SAMPLES / f"{ckpt.step_dir_name(state.step)}.png")
        for listener in self.listeners:
            listener(state.step, SAMPLES, images)
        self.drawn_step = state.step
