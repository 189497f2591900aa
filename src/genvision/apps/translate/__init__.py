"""Cross-domain image translation: pix2pix (Isola et al. 2017,
https://arxiv.org/abs/1611.07004) and CycleGAN (Zhu et al. 2017,
https://arxiv.org/abs/1703.10593) on pairs of domains, scored on held-out images against
the identity baseline.

Example:
    >>> from genvision.apps.translate import load_translator  # doctest: +SKIP
    >>> model = load_translator("runs/mm", "cyclegan")
    >>> mnistm = model.translate(digits, "a2b")      # [N, 1, 28, 28] -> [N, 3, 28, 28]
"""

from ...models.translation import CycleGAN, CycleGANConfig, Pix2Pix, TranslationConfig
from .data import PairOptions, load_sides, stack
from .train import load_translator, train_translate

__all__ = ["CycleGAN", "CycleGANConfig", "PairOptions", "Pix2Pix", "TranslationConfig",
           "load_sides", "load_translator", "stack", "train_translate"]
