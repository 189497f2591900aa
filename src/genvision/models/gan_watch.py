"""A training callback that watches a GAN: warns when D wins outright or samples collapse.

Both failures leave the loss finite, so nothing else would say so. The warnings go into
metrics.jsonl (through the loop) and the run's report shows them.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import torch
from torch import Tensor

from ..callbacks import Callback, TrainState

#: D-loss level below which the discriminator counts as winning outright (ns and hinge:
#: both are ~1.4-2 at equilibrium and 0 when D separates every image with a margin)
D_WIN_LOSS = 0.05
#: fixed latents used to watch for collapse
WATCH_SAMPLES = 64


def pairwise_rms(x: Tensor) -> float:
    """Mean pairwise distance of images [N, ...], as an RMS per pixel value."""
    flat = x.flatten(1).float()
    return float(torch.pdist(flat).mean() / math.sqrt(flat.shape[1]))


#: before step 5 x watch_every a collapse is only called when the samples had been at
#: least this many times the threshold apart and lost it: an untrained G draws alike
#: images at first, which is not a collapse
EARLY_DROP = 2.0


class GANWatcher(Callback):
    """Checks every step for a D-win streak and every ``watch_every`` steps whether
    fixed-latent samples of G have collapsed, i.e. differ by less than ``collapse_ratio``
    times the pairwise distance of the step's real images: from step 5 x ``watch_every``
    on any such check warns; before, only one that follows a diverse check (a fall from
    ``EARLY_DROP`` x the threshold), so a collapse in the first hundreds of steps is
    reported while an untrained G's alike first samples are not.

    Args:
        model: the GAN (its config holds the thresholds; ``_run`` draws from G).
    """

    def __init__(self, model: Any):
        self.model = model
        self.d_win_streak, self.collapsed = 0, False
        self.most_diverse = 0.0  # the largest ratio seen so far
        self.noted = False

    def on_step_end(self, state: TrainState) -> None:
        c, step = self.model.config, state.step
        if not self.noted:
            self.noted = True
            self.say_first_fix(state)
        if c.d_win_steps and c.loss != "wgan-gp":
            d_loss = state.terms.get("loss", math.inf)
            self.d_win_streak = self.d_win_streak + 1 if d_loss < D_WIN_LOSS else 0
            if self.d_win_streak == c.d_win_steps:
                state.warn(
                    f"the discriminator wins outright: its loss stayed below {D_WIN_LOSS} for "
                    f"{c.d_win_steps} steps, so G gets almost no gradient (fix: lower --lr-d, "
                    "add --diffaug translation,cutout or --r1-gamma 1, or train sngan)")
        if c.watch_every and step % c.watch_every == 0 and state.batch is not None:
            self.check_collapse(state.batch[0], state)

    def _mode_fix(self) -> str:
        """The first fix of a collapse: conditioning, which the issue-20 trials on data
        the defaults were not tuned on found to train where the unconditional GAN did not."""
        c = self.model.config
        if c.num_classes or c.self_condition or c.info_codes:
            return ""
        return "--self-condition 10 (clusters, no labels) or --conditional, "

    def say_first_fix(self, state: TrainState) -> None:
        """After the first step (below the run's first line): an unconditional GAN's note."""
        c = self.model.config
        if self._mode_fix() and c.watch_every and state.rank == 0:
            print(f"note: an unconditional {self.model.name} can collapse on data its defaults "
                  "were not tuned on; the run warns if its samples collapse, and "
                  "--self-condition 10 (no labels) or --conditional is the first thing to "
                  "try then", file=sys.stderr)

    @torch.no_grad()
    def check_collapse(self, x: Tensor, state: TrainState) -> None:
        model, c = self.model, self.model.config
        gen = torch.Generator().manual_seed(c.seed)
        z = torch.randn(WATCH_SAMPLES, c.latent_dim, generator=gen).to(model.device)
        k = c.num_classes or c.info_codes or c.self_condition
        y = torch.arange(WATCH_SAMPLES, device=model.device) % k if k else None
        fake = model._run(model.G, z, y)
        ratio = pairwise_rms(fake) / max(pairwise_rms(x[:WATCH_SAMPLES]), 1e-8)
        settled = state.step >= 5 * c.watch_every or \
            self.most_diverse >= EARLY_DROP * c.collapse_ratio
        self.most_diverse = max(self.most_diverse, ratio)
        if not settled:
            return
        if ratio < c.collapse_ratio and not self.collapsed:
            state.warn(
                f"samples are collapsing: {WATCH_SAMPLES} fixed-latent samples differ by "
                f"{ratio:.2f}x the pairwise distance of real images (< {c.collapse_ratio}) "
                f"(fix: {self._mode_fix()}lower --lr-g, raise --n-critic, add --diffaug or "
                "train sngan/wgan-gp)")
        self.collapsed = ratio < c.collapse_ratio
