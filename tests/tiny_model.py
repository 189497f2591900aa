"""A tiny GenerativeModel for the training-loop tests (registered as "tiny-test").

The ``test_train_*`` files import it as ``tiny_model`` (pytest puts tests/ on sys.path);
the DDP test's worker script loads it by path, so registration is guarded against a
second import.
Its loss draws noise from the *global* torch RNG (so RNG save/restore matters), uses
``self.step`` for a warm-up schedule, and keeps a buffer (so buffers are checkpointed).
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import Tensor, nn

from genvision.models import base
from genvision.models.sampling import SampleRNG, SamplerOptions, as_sample_rng
from genvision.train import TrainData


@dataclasses.dataclass
class _TinyConfig(base.ModelConfig):
    image_size: tuple[int, int] = (4, 4)
    hidden: int = 8
    nan_at_step: int = -1       # loss becomes NaN from this step on (-1: never)
    nan_grad_at_step: int = -1  # gradients become NaN (loss stays finite) from this step on


class _TinyModel(base.GenerativeModel):
    config_class = _TinyConfig
    likelihood_kind = "none"
    supported_data_kinds = ("binary", "continuous")

    def __init__(self, config: _TinyConfig):
        super().__init__(config)
        torch.manual_seed(config.seed)
        d = config.dims
        self.enc = nn.Linear(d, config.hidden)
        self.dec = nn.Linear(config.hidden, d)
        self.register_buffer("running_mean", torch.zeros(d))

    def training_loss(self, x: Tensor, y: Tensor | None, ctx) -> dict[str, Tensor]:
        return self.loss(x, y, step=ctx.step)

    def loss(self, x: Tensor, y: Tensor | None = None, step: int = 0) -> dict[str, Tensor]:
        flat = x.flatten(1)
        noisy = flat + 0.1 * torch.randn_like(flat)   # global RNG on purpose
        h = torch.tanh(self.enc(noisy))
        mse = ((self.dec(h) - flat) ** 2).mean()
        reg = (h ** 2).mean()
        beta = min(1.0, step / 10)                      # schedule on the loop's step
        if self.training:
            with torch.no_grad():
                self.running_mean.lerp_(flat.mean(0), 0.1)
        loss = mse + 0.1 * beta * reg
        c = self.config
        if 0 <= c.nan_at_step <= step:
            loss = loss * math.nan
        if 0 <= c.nan_grad_at_step <= step:
            loss = loss + torch.sqrt(self.enc.weight.sum() * 0.0)  # value 0, gradient NaN
        return {"loss": loss, "mse": mse, "reg": reg}

    def sample(self, n: int, y: Tensor | None = None,
               generator: torch.Generator | SampleRNG | None = None,
               sampler: SamplerOptions | None = None) -> Tensor:
        z = as_sample_rng(generator, n).rand(self.config.hidden, device=self.device)
        return torch.sigmoid(self.dec(z)).view(n, *self.config.shape)


TinyModel = base._REGISTRY.get("tiny-test") or base.register("tiny-test")(_TinyModel)
TinyConfig = TinyModel.config_class


def make_data(n: int = 40, seed: int = 0, val: int = 12) -> TrainData:
    """n images [n, 1, 4, 4] in [0, 1], dynamically binarised; a static binary val set."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 4, 4, generator=g)
    vx = torch.bernoulli(torch.rand(val, 1, 4, 4, generator=g), generator=g) if val else None
    return TrainData(x=x, transform=lambda b, gen: torch.bernoulli(b, generator=gen), val_x=vx)


def load_model(path):
    """genvision.load, tolerant of a tree where some model family does not import yet."""
    try:
        import genvision.models._load_all  # noqa: F401
    except ImportError:
        import pytest
        mp = pytest.MonkeyPatch()
        mp.setattr(base, "list_models", lambda: sorted(base._REGISTRY))
        try:
            return base.load(path)
        finally:
            mp.undo()
    return base.load(path)


def test_tiny_model_loss_uses_global_rng_and_step():
    model = TinyModel(TinyConfig())
    x = make_data().x[:8]
    torch.manual_seed(1)
    a = model.loss(x)["loss"]
    torch.manual_seed(1)
    b = model.loss(x)["loss"]
    c = model.loss(x)["loss"]
    assert torch.equal(a, b) and not torch.equal(b, c)
    torch.manual_seed(1)
    assert not torch.equal(model.loss(x, step=10)["loss"], a)   # the reg weight follows the step
