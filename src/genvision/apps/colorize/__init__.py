"""Colorization: predict the ab channels of CIE Lab from L, with an L1 regression U-Net and
a pix2pix conditional GAN (Isola et al. 2017, https://arxiv.org/abs/1611.07004).

Example:
    >>> from genvision.tasks.colorize import load_colorizer, colorize_image  # doctest: +SKIP
    >>> color = colorize_image(load_colorizer("runs/colorize", "gan"), rgb_uint8)
    >>> big = colorize_tiled(load_colorizer("runs/colorize"), photo_uint8)  # bounded memory
"""

from ...models.colorize import ColorizeConfig, ColorizeGAN, ColorizeGANConfig, ColorizeRegression
from .compare import colorize_image
from .tiled import colorize_tiled
from .train import load_colorizer

__all__ = ["ColorizeConfig", "ColorizeGAN", "ColorizeGANConfig", "ColorizeRegression",
           "colorize_image", "colorize_tiled", "load_colorizer"]
