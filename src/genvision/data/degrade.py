"""The degradation model and the bicubic baseline.

Low-resolution images are made as in the SRResNet/SRGAN and EDSR papers: bicubic
down-sampling with antialiasing (MATLAB ``imresize``), then rounding to 8 bits, as a
stored low-resolution image is. genvision uses ``torch.nn.functional.interpolate(...,
mode="bicubic", antialias=True)`` for *both* directions: its antialiased bicubic uses the
a = -0.5 kernel of MATLAB and Pillow (``Image.BICUBIC``), and matches Pillow's resize to
within one 8-bit level (tested). The high-resolution image is first cropped to a multiple
of the scale ("mod crop"), so the two sizes are exact multiples.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import UserError
from ..nn.srresnet import upscale_bicubic

SCALES = (2, 3, 4)
DEGRADATION_SHORT = "bicubic with antialiasing (torch, a=-0.5 as Pillow/MATLAB), 8-bit LR"


def check_scale(scale: int) -> int:
    if scale not in SCALES:
        raise UserError(f"scale x{scale} is not supported",
                        "use --scale 2, 3 or 4")
    return scale


def quantize8(x: Tensor) -> Tensor:
    """Clip to [0, 1] and round to the 256 levels of an 8-bit image."""
    return (x.clamp(0.0, 1.0) * 255.0).round() / 255.0


def mod_crop(x: Tensor, scale: int) -> Tensor:
    """Crop [..., H, W] to the largest multiple of ``scale`` in each dimension."""
    h, w = x.shape[-2] - x.shape[-2] % scale, x.shape[-1] - x.shape[-1] % scale
    return x[..., :h, :w]


def downscale(hr: Tensor, scale: int, quantize: bool = True) -> Tensor:
    """Antialiased bicubic down-sampling of [N, C, H, W] in [0, 1] (H, W multiples of scale).

    Returns:
        [N, C, H / scale, W / scale], rounded to 8 bits unless ``quantize`` is False.
    """
    h, w = hr.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(f"size {h}x{w} is not a multiple of {scale}; mod_crop first")
    lr = F.interpolate(hr, size=(h // scale, w // scale), mode="bicubic", antialias=True,
                       align_corners=False)
    return quantize8(lr) if quantize else lr.clamp(0.0, 1.0)


class Bicubic:
    """The bicubic baseline behind the same interface as the trained models
    (``scale``, ``device``, ``receptive_radius``, ``upscale``), for tiling and comparison."""

    name = "bicubic"
    receptive_radius = 2  # the antialiased bicubic kernel reaches 2 LR pixels
    device = torch.device("cpu")

    def __init__(self, scale: int):
        self.scale = check_scale(scale)

    def upscale(self, lr: Tensor) -> Tensor:
        return upscale_bicubic(lr, self.scale)
