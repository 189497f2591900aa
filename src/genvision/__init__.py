"""genvision: deep generative models of images under one interface.

Public API::

    import genvision
    genvision.list_models()            # ['vae', ...]
    model = genvision.load("runs/vae") # any registered model, from a run or save_pretrained dir
    x = model.sample(16)               # [16, C, H, W] in [0, 1]
"""

from .models.base import list_models, load

__version__ = "0.1.0"
__all__ = ["__version__", "list_models", "load"]
