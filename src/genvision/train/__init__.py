"""The one training loop, its checkpoints, EMA, run lock and torchrun helpers.

Example:
    >>> from genvision.train import TrainConfig, TrainData, train   # doctest: +SKIP
    >>> result = train(model, TrainData(x), TrainConfig(steps=100), "runs/vae")
"""

from .checkpoint import TrainingState, latest_checkpoint, load_training_state
from .config import TrainConfig
from .loop import train
from .types import Callback, TrainData, TrainResult, TrainState

__all__ = ["Callback", "TrainConfig", "TrainData", "TrainResult", "TrainState",
           "TrainingState", "latest_checkpoint", "load_training_state", "train"]
