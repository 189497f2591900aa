"""genvision: deep generative models of images under one interface.

Public API::

    import genvision
    genvision.list_models()            # ['vae', ...]
    model = genvision.load("runs/vae") # any registered model, from a run or save_pretrained dir
    x = model.sample(16)               # [16, C, H, W] in [0, 1]
"""

import os

# PyTorch's CPU build uses GNU OpenMP, whose idle threads spin for ~300k iterations before
# sleeping. When two genvision processes share a small machine (training while evaluating
# on 2 cores) the spinning threads starve each other: we measured 1,360 -> 100 training
# images/s. A shorter spin keeps ~98% of the single-process speed and 3x the shared one.
# Must be set before torch is first imported; a user's own setting wins.
os.environ.setdefault("GOMP_SPINCOUNT", "20000")

from .models.base import list_models, load  # noqa: E402

__version__ = "0.1.0"
__all__ = ["__version__", "list_models", "load"]
