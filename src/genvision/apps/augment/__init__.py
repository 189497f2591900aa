"""Data augmentation with generated images (``genvision augment``).

Does a classifier trained on N real images improve when M images sampled from a
class-conditional generative model, trained on the same N, are added? Compared with
real-only training and classic geometric augmentation, over several seeds.

Example:
    >>> from genvision.tasks.augment import AugmentSettings, run_augment  # doctest: +SKIP
    >>> from genvision.tasks.classify import load_task_data
    >>> result = run_augment(load_task_data("all"), AugmentSettings(n=100))
    >>> result.summary[0]["accuracy_mean"]
"""

from .classic import ShiftRotate
from .experiment import ARMS, AugmentResult, AugmentSettings, run_augment
from .synthetic import generate, synthetic_set

__all__ = ["ARMS", "AugmentResult", "AugmentSettings", "ShiftRotate", "generate",
           "run_augment", "synthetic_set"]
