"""The image-to-image tasks' fidelity metrics (PSNR, SSIM, colourfulness).

They live in :mod:`genvision.metrics.image_fidelity` so that ``genvision.metrics`` offers them
beside FID and the likelihood metrics; this module keeps the tasks' imports short.
"""

from ...metrics.image_fidelity import (
    MIN_SCORED_SIDE,
    SSIM_OPTIONS,
    Y_OFFSET,
    Y_WEIGHTS,
    as_float01,
    colourfulness,
    fidelity,
    protocol,
    psnr,
    rgb_to_y,
    shave,
    ssim,
)

__all__ = ["MIN_SCORED_SIDE", "SSIM_OPTIONS", "Y_OFFSET", "Y_WEIGHTS", "as_float01",
           "colourfulness", "fidelity", "protocol", "psnr", "rgb_to_y", "shave", "ssim"]
