"""genvision: deep generative models of images under one interface.

Public API::

    import genvision
    genvision.list_models()            # ['vae', ...]
    model = genvision.load("runs/vae") # any registered model, from a run or save_pretrained dir
    x = model.sample(16)               # [16, C, H, W] in [0, 1]
    sr = genvision.load("runs/sr4")    # a task run: the model of its last trained stage
    genvision.train_run(model, TrainData(x), TrainConfig(steps=100), "runs/mine",
                        data_config="mnist5k")   # the loop + run.json: evaluate/report work
"""

import os

# PyTorch's CPU build uses GNU OpenMP, whose idle threads spin for ~300k iterations before
# sleeping. When two genvision processes share a small machine (training while evaluating
# on 2 cores) the spinning threads starve each other: we measured 1,360 -> 100 training
# images/s. A shorter spin keeps ~98% of the single-process speed and 3x the shared one.
# Must be set before torch is first imported; a user's own setting wins.
os.environ.setdefault("GOMP_SPINCOUNT", "20000")

__version__ = "0.1.0"  # before the imports below: runs.records stamps it into run.json

from .models.base import list_models  # noqa: E402
from .runs.load import load  # noqa: E402


def __getattr__(name: str):
    # train_run pulls in data preparation and the report (PIL, matplotlib): deferred so
    # `import genvision` and the CLI's start stay light
    if name == "train_run":
        from .runs.start import train_run

        return train_run
    raise AttributeError(f"module 'genvision' has no attribute {name!r}")


__all__ = ["__version__", "list_models", "load", "train_run"]
