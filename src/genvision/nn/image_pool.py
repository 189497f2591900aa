"""A history of generated images for the discriminator (CycleGAN's image pool).

Shrivastava et al. 2017 ("Learning from Simulated and Unsupervised Images through
Adversarial Training", https://arxiv.org/abs/1612.07828), used by CycleGAN (Zhu et al.
2017, https://arxiv.org/abs/1703.10593) with 50 images: D sees a mix of the newest fakes
and older ones, so it cannot chase only the generator's latest change. Until the pool is
full every fake is stored and returned; then each fake, with probability one half, is
swapped for a random stored one (which it replaces), else returned as it is.

The pool is a module buffer, so it is saved in checkpoints and a resumed run continues with
the same history; its draws use the global RNG, which the training loop checkpoints.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ImagePool(nn.Module):
    """Up to ``size`` images [C, H, W]; ``query`` mixes them into a batch of fakes.

    Args:
        size: images kept (0: a pass-through). shape: (C, H, W) of one image.
    """

    def __init__(self, size: int, shape: tuple[int, int, int]):
        super().__init__()
        self.size = size
        self.register_buffer("images", torch.zeros(size, *shape))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def query(self, fakes: Tensor) -> Tensor:
        """The batch D should see for these new fakes [N, C, H, W] (detached)."""
        fakes = fakes.detach()
        if self.size == 0:
            return fakes
        out = fakes.clone()
        for i, image in enumerate(fakes):
            n = int(self.count)
            if n < self.size:  # filling up: store, and show the new image
                self.images[n] = image
                self.count += 1
            elif float(torch.rand(())) < 0.5:  # global RNG: checkpointed by the loop
                j = int(torch.randint(self.size, ()))
                out[i] = self.images[j].clone()
                self.images[j] = image
        return out
