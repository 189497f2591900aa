"""CIE Lab conversion for colorization, through scikit-image (``skimage.color``).

Models see normalised channels: ``L / 100`` in [0, 1] and ``ab / 110`` (roughly [-1, 1]
for the colours of sRGB). Conversions run in float64 on the CPU; the round trip
RGB -> Lab -> RGB is lossless to 1e-4 (tested).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import Tensor

L_SCALE = 100.0
AB_SCALE = 110.0


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """RGB [..., 3] (uint8, or float in [0, 1]) -> Lab float64 [..., 3] (D65)."""
    # deferred: skimage.color pulls in scipy (~0.3 s), and genvision.models imports the
    # colorize family (which imports this module) on every start
    from skimage.color import rgb2lab

    x = rgb.astype(np.float64) / 255.0 if rgb.dtype == np.uint8 else rgb.astype(np.float64)
    return rgb2lab(x)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """Lab [..., 3] -> RGB float64 [..., 3] in [0, 1] (out-of-gamut colours clipped)."""
    from skimage.color import lab2rgb  # deferred, see rgb_to_lab

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Color data out of range": clipped, as documented
        return np.clip(lab2rgb(lab), 0.0, 1.0)


def normalise(lab: np.ndarray) -> np.ndarray:
    """Lab [..., 3] -> (L / 100, a / 110, b / 110), float32."""
    return (lab / np.array([L_SCALE, AB_SCALE, AB_SCALE])).astype(np.float32)


def denormalise(norm: np.ndarray) -> np.ndarray:
    return norm.astype(np.float64) * np.array([L_SCALE, AB_SCALE, AB_SCALE])


def patches_to_lab(x: Tensor) -> Tensor:
    """uint8 RGB patches [N, 3, H, W] -> normalised Lab float32 [N, 3, H, W]."""
    lab = normalise(rgb_to_lab(x.permute(0, 2, 3, 1).numpy()))
    return torch.from_numpy(lab).permute(0, 3, 1, 2).contiguous()


def lightness(rgb: np.ndarray) -> Tensor:
    """uint8 RGB [H, W, 3] -> normalised L [1, 1, H, W] (what a colorizer sees)."""
    L = rgb_to_lab(rgb)[..., 0] / L_SCALE
    return torch.from_numpy(L.astype(np.float32))[None, None]


def compose(L: Tensor, ab: Tensor) -> np.ndarray:
    """Normalised L [1, 1, H, W] and ab [1, 2, H, W] -> uint8 RGB [H, W, 3]."""
    norm = torch.cat([L, ab], dim=1)[0].permute(1, 2, 0).cpu().numpy()
    rgb = lab_to_rgb(denormalise(norm))
    return (rgb * 255.0 + 0.5).astype(np.uint8)
