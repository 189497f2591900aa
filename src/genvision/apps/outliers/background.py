"""The background model of the likelihood-ratio score: a *local* PixelCNN.

Choice. Ren et al. 2019 (https://arxiv.org/abs/1906.02845) train the background model on
inputs perturbed with random pixel flips, which needs a noise rate tuned per dataset.
We use a model that can only learn low-level statistics by construction: a PixelCNN with
no residual blocks, whose one mask-A 5x5 convolution sees a 12-pixel causal neighbourhood
(two rows above, two pixels to the left) -- the context template of lossless bi-level
image coders such as JBIG. It learns stroke smoothness and how much of an image is
background, which dominate log p(x) (Schirrmeister et al. 2020,
https://arxiv.org/abs/2006.10848; Serra et al. 2020, https://arxiv.org/abs/1909.11480 use
a compressor for the same purpose), but not the shape of a digit, so
log p_model - log p_background keeps what only the full model knows. It has no
hyper-parameter to tune on outliers, and trains once on the run's own data (a few minutes
for 8-bit 28x28 images on a CPU; reused by later calls).

``--background auto`` trains it into ``OUT/background`` (a normal genvision run, reused on
the next call when its settings match); ``--background RUN2`` uses any other likelihood run
of the same image shape and data kind instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ... import dataclass_config as cfg
from ...errors import UserError
from ...models.base import GenerativeModel, load
from ...report.finish import finish_run
from ...runs.layout import RunLayout
from ...runs.start import RunSpec, read_run, start
from ...train.config import TrainConfig
from .data import run_data_config

BACKGROUND_MODEL = "pixelcnn"
#: no residual blocks, one mask-A 5x5 convolution: a 12-pixel causal context
BACKGROUND_OVERRIDES: dict[str, Any] = {"layers": 0, "input_kernel": 5, "hidden": 32,
                                        "out_hidden": 32}
#: its default budget: issue 20 found 500 steps too few to be useful (the ratio lost to plain
#: NLL), and a trial on Fashion-MNIST (BENCHMARKS.md, "background budget") found 2,000
#: steps explain clearly more of a model's gain and separate MNIST better than 500
DEFAULT_STEPS = 2000
DEFAULT_LR = 3e-3


def background_spec(info: dict[str, Any], steps: int, seed: int = 0) -> RunSpec:
    """The run spec of the auto background: the local PixelCNN on the run's own data."""
    return RunSpec(model=BACKGROUND_MODEL, model_overrides=dict(BACKGROUND_OVERRIDES),
                   train=TrainConfig(steps=steps, lr=DEFAULT_LR, seed=seed, progress=True,
                                     checkpoint_every=max(steps, 1), ema_decay=0.0),
                   data=run_data_config(info))


def _matches(bg_info: dict[str, Any], spec: RunSpec) -> bool:
    return (bg_info.get("model") == spec.model
            and bg_info.get("model_overrides") == spec.model_overrides
            and bg_info.get("data_config") == cfg.to_dict(spec.data)
            and bg_info.get("train_config", {}).get("steps") == spec.train.steps)


def auto_background(info: dict[str, Any], out: Path, steps: int = DEFAULT_STEPS
                    ) -> tuple[GenerativeModel, dict[str, Any]]:
    """Train (or reuse) the local PixelCNN in ``out / "background"``.

    Returns:
        (model, protocol) -- protocol says what it is, where, and whether it was reused.
    """
    spec = background_spec(info, steps)
    where = out / "background"
    layout = RunLayout(where)
    # only a background that reached its checkpoint is reused; one killed before it (a
    # run record and no checkpoint, or just the lock) is replaced by start(), which says
    # so, and start() refuses a folder of other files
    trained = layout.run_json.is_file() and layout.has_any_checkpoint()
    reused = trained and _matches(read_run(where), spec)
    if not reused:
        if trained:
            raise UserError(f"{where} holds a background model trained with other settings",
                            "remove it, or pass another --out")
        print(f"training the background model ({BACKGROUND_MODEL}, {steps} steps) in {where}")
        start(spec, where, argv=["genvision outliers --background auto"])
        finish_run(where)  # its samples and report, as any run trained by genvision
    model = load(where)
    return model, {"run": str(where), "model": BACKGROUND_MODEL, "reused": reused,
                   "overrides": BACKGROUND_OVERRIDES, "steps": steps,
                   "why": "local PixelCNN: 12-pixel causal context, low-level statistics only"}


def run_background(path: str, model: GenerativeModel) -> tuple[GenerativeModel, dict[str, Any]]:
    """Load a user's background run and check it scores the same images as ``model``."""
    bg = load(path)
    if bg.likelihood_kind == "none":
        raise UserError(f"background {path} ({bg.name}) has no likelihood",
                        "pass a likelihood run (pixelcnn, made, nade, vae, ...) or auto")
    if bg.config.shape != model.config.shape or bg.config.data_kind != model.config.data_kind:
        raise UserError(f"background {path} models {bg.config.data_kind} images of shape "
                        f"{list(bg.config.shape)}, the run {model.config.data_kind} "
                        f"{list(model.config.shape)}", "pass a background trained on the same "
                                                       "kind of data, or auto")
    return bg, {"run": str(path), "model": bg.name, "reused": True}
