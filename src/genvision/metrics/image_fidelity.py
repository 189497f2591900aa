"""Image fidelity metrics: PSNR, SSIM and colourfulness (the image-to-image tasks' scores).

PSNR and SSIM are scikit-image's (``skimage.metrics``), a well-kept implementation; the
tests check them against torchmetrics. The super-resolution papers' convention (SRCNN,
SRResNet/SRGAN, EDSR) is followed and labelled with every number:

* **Y channel**: luma of ITU-R BT.601 YCbCr in studio swing,
  ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` for R, G, B in [0, 1] (MATLAB's
  ``rgb2ycbcr``), so Y lies in [16, 235] and ``data_range = 255``;
* **border**: ``scale`` pixels are cropped from every side before scoring;
* **SSIM**: Wang et al. 2004 (https://doi.org/10.1109/TIP.2003.819861): 11x11 Gaussian
  window with sigma 1.5, K1 = 0.01, K2 = 0.03, population covariances;
* **RGB**: the same on R, G, B in [0, 1] (``data_range = 1``), SSIM averaged over channels.

Outputs are scored as the 8-bit images a user gets (rounded to 0..255).

Colourfulness is Hasler and Suesstrunk's M (2003, https://doi.org/10.1117/12.477378):
with ``rg = R - G`` and ``yb = (R + G) / 2 - B`` on 0..255,
``M = sqrt(std(rg)^2 + std(yb)^2) + 0.3 sqrt(mean(rg)^2 + mean(yb)^2)``; 0 is grey and
their "highly colourful" category starts near 59.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

#: BT.601 studio-swing luma: offset and weights for R, G, B in [0, 1]
Y_OFFSET = 16.0
Y_WEIGHTS = (65.481, 128.553, 24.966)
SSIM_OPTIONS = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False,
                "K1": 0.01, "K2": 0.03}
#: smallest side (after border cropping) SSIM's 11x11 window needs
MIN_SCORED_SIDE = 11


def as_float01(img: np.ndarray) -> np.ndarray:
    """uint8 0..255 or float [0, 1] -> float64 [0, 1]."""
    if img.dtype == np.uint8:
        return img.astype(np.float64) / 255.0
    return np.asarray(img, dtype=np.float64)


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """Luma Y of ITU-R BT.601 studio-swing YCbCr, float64 [H, W] in [16, 235].

    Args:
        img: RGB [H, W, 3], uint8 or float in [0, 1].
    """
    rgb = as_float01(img)
    r, g, b = Y_WEIGHTS
    return Y_OFFSET + r * rgb[..., 0] + g * rgb[..., 1] + b * rgb[..., 2]


def shave(img: np.ndarray, border: int) -> np.ndarray:
    """Crop ``border`` pixels from every side of [H, W, ...]."""
    return img[border:img.shape[0] - border, border:img.shape[1] - border] if border else img


def psnr(pred: np.ndarray, target: np.ndarray, data_range: float) -> float:
    """PSNR in dB (``inf`` for identical images)."""
    if np.array_equal(pred, target):
        return math.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(peak_signal_noise_ratio(target, pred, data_range=data_range))


def ssim(pred: np.ndarray, target: np.ndarray, data_range: float) -> float:
    """SSIM (:data:`SSIM_OPTIONS`) of [H, W] or [H, W, C] (mean over channels)."""
    channel_axis = -1 if pred.ndim == 3 else None
    return float(structural_similarity(target, pred, data_range=data_range,
                                       channel_axis=channel_axis, **SSIM_OPTIONS))


def fidelity(pred: np.ndarray, target: np.ndarray, border: int = 0) -> dict[str, float]:
    """PSNR (dB) and SSIM on the Y channel and on RGB, ``border`` pixels cropped.

    Args:
        pred, target: uint8 RGB [H, W, 3] of the same shape.

    Returns:
        ``{"psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb"}``.
    """
    if pred.shape != target.shape:
        raise ValueError(f"shapes differ: {pred.shape} vs {target.shape}")
    p, t = shave(pred, border), shave(target, border)
    py, ty = rgb_to_y(p), rgb_to_y(t)
    prgb, trgb = as_float01(p), as_float01(t)
    return {"psnr_y": psnr(py, ty, 255.0), "ssim_y": ssim(py, ty, 255.0),
            "psnr_rgb": psnr(prgb, trgb, 1.0), "ssim_rgb": ssim(prgb, trgb, 1.0)}


def protocol(border: int) -> dict[str, str]:
    """How :func:`fidelity` numbers were computed, stored next to them."""
    return {
        "y": "Y of ITU-R BT.601 YCbCr (16-235, MATLAB rgb2ycbcr), data range 255",
        "rgb": "R, G, B in [0, 1], data range 1, SSIM averaged over channels",
        "border": f"{border} px cropped from every side",
        "ssim": "Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03",
        "implementation": "scikit-image skimage.metrics",
        "outputs": "rounded to 8 bits before scoring",
    }


def colourfulness(img: np.ndarray) -> float:
    """Hasler and Suesstrunk's colourfulness M of RGB [H, W, 3] (uint8 or float [0, 1])."""
    rgb = as_float01(img) * 255.0
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    spread = math.sqrt(rg.std() ** 2 + yb.std() ** 2)
    centre = math.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    return float(spread + 0.3 * centre)
