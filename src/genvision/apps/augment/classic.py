"""Classic data augmentation: small random shifts and rotations of each training batch.

The standard MNIST recipe (e.g. Simard et al. 2003, "Best Practices for Convolutional Neural
Networks Applied to Visual Document Analysis"): label-preserving geometric jitter. Binary
inputs stay binary (the resampled image is thresholded at 0.5), so the classifier trains
on the same kind of pixels it is tested on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass
class ShiftRotate:
    """Per-image random translation (whole pixels) and rotation (degrees), seeded.

    Attributes:
        max_shift: shifts are uniform integers in [-max_shift, max_shift] per axis.
        max_degrees: rotations are uniform in [-max_degrees, max_degrees].
        binary: threshold the result at 0.5 (for {0, 1} images).
    """

    max_shift: int = 2
    max_degrees: float = 10.0
    binary: bool = True

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        """x: float [B, C, H, W] -> the jittered batch (same shape and device)."""
        b, _, h, w = x.shape
        angle = (torch.rand(b, generator=generator) * 2 - 1) * math.radians(self.max_degrees)
        shift = torch.randint(-self.max_shift, self.max_shift + 1, (b, 2), generator=generator)
        cos, sin = angle.cos(), angle.sin()
        # affine_grid maps output to input coordinates in [-1, 1]: a pixel is 2/W wide
        theta = torch.stack([torch.stack([cos, -sin, -2 * shift[:, 0] / w], 1),
                             torch.stack([sin, cos, -2 * shift[:, 1] / h], 1)], 1)
        grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
        out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return (out >= 0.5).to(x.dtype) if self.binary else out

    def describe(self) -> str:
        return (f"random shift +-{self.max_shift} px and rotation +-{self.max_degrees:g} deg "
                f"per image and batch{', re-binarised at 0.5' if self.binary else ''}")
