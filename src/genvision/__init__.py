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

import importlib  # noqa: E402

from .models.base import list_models  # noqa: E402
from .runs.load import load  # noqa: E402
from .version import __version__  # noqa: E402

#: public names resolved on first use (PEP 562): train_run pulls in data preparation and
#: the report (PIL, matplotlib), which `import genvision` and the CLI's start must not pay
_LAZY = {"train_run": "genvision.report.finish"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'genvision' has no attribute {name!r}")


__all__ = ["__version__", "list_models", "load", "train_run"]
