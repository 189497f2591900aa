"""Single-image super-resolution: bicubic, SRResNet and SRGAN (Ledig et al. 2017,
https://arxiv.org/abs/1609.04802), evaluated with PSNR/SSIM as in the papers.

Example:
    >>> from genvision.tasks.superres import load_sr_model, upscale_array  # doctest: +SKIP
    >>> model = load_sr_model("runs/sr4")                    # SRResNet stage of the run
    >>> big = upscale_array(model, photo_uint8)              # [4H, 4W, 3] uint8, in tiles
"""

from ...data.degrade import SCALES, downscale, upscale_bicubic
from ...models.superres import SRGAN, SRGANConfig, SRResNet, SRResNetConfig
from .tiling import upscale_array, upscale_tensor
from .train import load_sr_model

__all__ = ["SCALES", "SRGAN", "SRGANConfig", "SRResNet", "SRResNetConfig", "downscale",
           "load_sr_model", "upscale_array", "upscale_bicubic", "upscale_tensor"]
