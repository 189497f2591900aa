"""The model protocol every genvision family follows, the registry, and save/load.

One interface for the whole taxonomy (see ``docs/adding_a_model.md``):

* a ``@dataclass`` config, JSON-serialisable, that rebuilds the model;
* ``loss(x, y=None) -> dict[str, Tensor]`` with key ``"loss"`` plus named terms to log;
* ``sample(n, y=None, generator=None, sampler=None) -> Tensor`` of shape [n, C, H, W] in
  [0, 1]; ``generator`` is None, a ``torch.Generator`` or a per-sample ``SampleRNG`` and
  ``sampler`` one of the class's ``samplers`` options (see :mod:`.sampling`);
* ``log_prob(x, y=None, **options) -> Tensor`` of shape [N] in **nats per image**; the
  class attribute ``likelihood_kind`` says whether it is ``"exact"``, a ``"bound"``, a
  stochastic ``"estimate"`` (an RBM's AIS: neither exact nor a bound) or ``"none"``,
  and ``likelihood_options`` names the estimator options it takes (``k`` importance
  samples, a ``generator``);
* ``phases(train_config) -> list[Phase]``: what the training loop optimises (see
  :mod:`genvision.models.protocol`); one AdamW phase over ``training_loss`` by default;
* ``save_pretrained(dir)`` writes ``config.json`` + ``model.safetensors``;
  :func:`load` rebuilds any registered model from such a directory or a run directory.

Optional capabilities, each a method of :class:`GenerativeModel` whose default says "not
supported"; :data:`CAPABILITIES` lists them and :meth:`GenerativeModel.supports` tells
whether a model has one (code never probes with ``hasattr``):

* ``encode(x, y)``: the approximate posterior's mean and log-variance;
* ``complete(x, keep, y, generator)``: sample the unknown pixels of images;
* ``init_from_data(x)``: data-dependent set-up the loop runs once on the training images
  [N, C, H, W] at the start of a fresh run (what it sets lives in the state dict);
* ``figures(x, y, generator)``: extra named image grids for the report;
* ``callbacks()``: training callbacks (e.g. a GAN's collapse watcher);
* ``ema_pair()``: (live, shadow) networks when the model keeps its EMA copy in its own
  state dict (a GAN's G_ema); the loop then averages into the shadow;
* ``divergence_fix()``: the fix to name when training hits a NaN;
* ``likelihood_terms(x, y)``: the named parts of ``-log_prob`` (e.g. a VQ-VAE's rate and
  distortion), which ``genvision evaluate`` reports beside the NLL.

Checkpoints never contain pickled code: weights are safetensors, the config is JSON.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from .. import dataclass_config as cfg
from ..callbacks import Callback
from ..data.base import MAX_CLASSES
from ..data.config import MAX_IMAGE_SIZE as MAX_IMAGE_SIDE
from ..dataclass_config import SEED, bounds
from ..errors import CheckpointError, UserError
from ..storage import atomic_write_json, load_tensors, pointed_entry, read_json, save_tensors
from .protocol import OptimizerSpec, Phase, StepContext
from .sampling import AncestralSampler, SampleRNG, SamplerOptions

LikelihoodKind = Literal["exact", "bound", "estimate", "none"]

#: optional capabilities of the protocol (see the module docstring), by method name
CAPABILITIES = ("log_prob", "encode", "complete", "init_from_data", "figures", "callbacks",
                "ema_pair", "divergence_fix", "likelihood_terms")

_REGISTRY: dict[str, type[GenerativeModel]] = {}
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"

# Bounds of config fields (field metadata, checked by dataclass_config.check_values when a
# config is built from flags, a saved config.json or Python). The upper bounds are far
# above any model genvision trains on a workstation; they stop a typo or a damaged
# config.json from asking for petabytes before anything is allocated.
#: channels / hidden units of one layer, and latent sizes
MAX_WIDTH = 8192
#: layers, blocks or stages of one network
MAX_DEPTH = 256
#: importance samples, masks and other per-image repeats
MAX_K = 100_000
WIDTH = bounds(1, MAX_WIDTH)
WIDTH0 = bounds(0, MAX_WIDTH)  # 0 = off
DEPTH = bounds(0, MAX_DEPTH)
KERNEL = bounds(1, 63)
NONNEG = bounds(0)
POSITIVE = bounds(0, lo_open=True)
UNIT = bounds(0, 1, hi_open=True)  # probabilities, decays, dropout, Adam betas
CHANNELS = bounds(1, 4)
IMAGE_SIDE = bounds(1, MAX_IMAGE_SIDE)


@dataclasses.dataclass
class ModelConfig:
    """Fields every model config has: the data shape it models and its conditioning.

    Subclasses add their own hyper-parameters. ``image_size`` is (height, width).
    """

    channels: int = dataclasses.field(default=1, metadata={**CHANNELS, "cli": False})
    image_size: tuple[int, int] = dataclasses.field(
        default=(28, 28), metadata={**IMAGE_SIDE, "cli": False})
    num_classes: int = dataclasses.field(
        default=0, metadata={**bounds(0, MAX_CLASSES), "cli": False,
                             "help": "0 = unconditional"})
    data_kind: Literal["binary", "grey8", "rgb8", "continuous"] = dataclasses.field(
        default="binary", metadata={"cli": False,
                                    "help": "what pixel values mean: {0,1}, 256 levels, ..."})
    seed: int = dataclasses.field(
        default=0, metadata={**SEED, "cli": False,
                             "help": "seed for weight init (the run's --seed)"})

    #: values of fields added after checkpoints were first written, for saved configs
    #: without them: what the model did before the field existed (which may differ from
    #: today's default)
    saved_before: ClassVar[dict[str, Any]] = {}

    def __post_init__(self) -> None:
        # types and bounds of every field (subclasses with their own __post_init__ are
        # checked again by GenerativeModel.__init__, before any layer is allocated)
        cfg.check_fields(self)

    @classmethod
    def with_saved_before(cls, data: dict[str, Any]) -> dict[str, Any]:
        """A saved config dict completed with :attr:`saved_before` for missing fields."""
        return {**{k: v for k, v in cls.saved_before.items() if k not in data}, **data}

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, *self.image_size)

    @property
    def dims(self) -> int:
        c, h, w = self.shape
        return c * h * w


def register(name: str):
    """Class decorator: make a model available as ``genvision train NAME``."""

    def wrap(cls: type[GenerativeModel]) -> type[GenerativeModel]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"model name {name!r} registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def list_models() -> list[str]:
    """Names of every registered model, sorted (``genvision.models`` imports every family
    when the package is first imported, before this can be called)."""
    return sorted(_REGISTRY)


def get_model_class(name: str) -> type[GenerativeModel]:
    names = list_models()
    if name not in _REGISTRY:
        raise UserError(f"unknown model {name!r}", f"choose one of: {', '.join(names)}")
    return _REGISTRY[name]


class GenerativeModel(nn.Module):
    """Base class of every genvision model. See the module docstring for the protocol."""

    name: ClassVar[str] = "?"
    #: the taxonomy family, shown in reports ("explicit latent variable", "implicit", ...)
    family: ClassVar[str] = ""
    config_class: ClassVar[type[ModelConfig]] = ModelConfig
    likelihood_kind: ClassVar[LikelihoodKind] = "none"
    #: data kinds the model accepts; the CLI refuses others with a clear error
    supported_data_kinds: ClassVar[tuple[str, ...]] = ("binary",)
    #: TrainConfig values ``genvision train MODEL`` uses unless the user sets them (the
    #: model's measured best recipe); the Python API's TrainConfig does not apply them
    train_defaults: ClassVar[dict[str, Any]] = {}
    #: TrainConfig fields the model's phases do not use (a GAN's own --lr-g/--lr-d replace
    #: --lr): ``genvision train MODEL --help`` does not list them
    unused_train_options: ClassVar[tuple[str, ...]] = ()
    #: one-line captions of the report figures that ``figures`` returns, by name: what the
    #: rows and columns of each grid are (the grid itself carries no labels)
    figure_captions: ClassVar[dict[str, str]] = {}

    # ----- sampling (owned by models/sampling.py; keep this block separate) ------------
    #: the samplers ``sample(..., sampler=)`` accepts, by name; the first is the default
    samplers: ClassVar[dict[str, type[SamplerOptions]]] = {"ancestral": AncestralSampler}

    def sample(self, n: int, y: Tensor | None = None,
               generator: torch.Generator | SampleRNG | None = None,
               sampler: SamplerOptions | None = None) -> Tensor:
        """Draw ``n`` images [n, C, H, W] in [0, 1]; sample k depends only on its seed
        (row k of ``as_sample_rng(generator, n)``) and k, never on ``n``."""
        raise NotImplementedError
    # ----- end of the sampling block ---------------------------------------------------

    def __init__(self, config: ModelConfig):
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}")
        cfg.check_fields(config)  # sizes within bounds before a subclass allocates layers
        self.config = config

    # ----- protocol -------------------------------------------------------------------
    @classmethod
    def input_kind(cls, overrides: dict[str, Any]) -> str:
        """The data kind (``binary``, ``grey8``, ...) a config with these options wants.

        Data preparation uses it to resolve ``--binarize auto`` before the model exists.
        """
        return cls.supported_data_kinds[0]

    def loss(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        """The objective on one batch x [B, C, H, W] (labels y [B]): ``{"loss": scalar,
        <named terms>}``; validation calls it in eval mode under no_grad."""
        raise NotImplementedError

    def forward(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        """``model(x, y)`` is ``model.loss(x, y)``: the objective's dict on one batch.

        A generative model has no single "output"; its loss is what a user calling the
        module (or a wrapper such as DDP) expects to get back, so ``model(x)`` returns it
        instead of raising. Sampling and likelihoods stay named methods.

        Args:
            x: images [B, C, H, W] in [0, 1].
            y: labels [B] of a conditional model, else None.

        Returns:
            ``{"loss": scalar, <named terms>}``.
        """
        return self.loss(x, y)

    def log_prob(self, x: Tensor, y: Tensor | None = None, **options: Any) -> Tensor:
        raise UserError(f"{self.name} has no likelihood",
                        "evaluate it with sample-based metrics instead")

    #: estimator options ``log_prob`` takes beyond x and y (``k``, ``generator``)
    likelihood_options: ClassVar[tuple[str, ...]] = ()

    def likelihood_protocol(self, **kwargs: Any) -> dict[str, Any]:
        """How ``log_prob`` is computed, recorded next to every likelihood number."""
        return {"kind": self.likelihood_kind}

    # ----- training protocol ----------------------------------------------------------
    def training_loss(self, x: Tensor, y: Tensor | None, ctx: StepContext
                      ) -> dict[str, Tensor]:
        """The objective of training step ``ctx.step``: :meth:`loss` unless a model has a
        schedule inside its loss (e.g. a KL warm-up)."""
        return self.loss(x, y)

    def phases(self, train: Any) -> list[Phase]:
        """The optimisation phases (see :mod:`genvision.models.protocol`).

        Args:
            train: the run's TrainConfig (``lr``, ``beta1``, ``beta2``, ``weight_decay``,
                ``grad_clip``, ``ema_decay``, ...).

        Default: one AdamW phase ``model`` over every parameter, minimising
        ``training_loss(x, y, ctx)["loss"]`` and logging all its terms.
        """
        spec = OptimizerSpec("adamw", train.lr, (train.beta1, train.beta2),
                             train.weight_decay)

        def objective(x: Tensor, y: Tensor | None, ctx: StepContext
                      ) -> tuple[Tensor, dict[str, Tensor]]:
            out = self.training_loss(x, y, ctx)
            if "loss" not in out:
                raise UserError(f"{self.name}.loss() returned no 'loss' key",
                                "return {'loss': total, ...} from loss()")
            return out["loss"], out

        return [Phase("model", list(self.parameters()), spec, objective)]

    # ----- optional capabilities (defaults: not supported) ---------------------------
    def encode(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Posterior mean and log-variance [N, D] of images x [N, C, H, W]."""
        raise UserError(f"{self.name} has no encoder", "use a latent-variable model (vae)")

    def complete(self, x: Tensor, keep: Tensor, y: Tensor | None = None,
                 generator: torch.Generator | SampleRNG | None = None,
                 sampler: SamplerOptions | None = None) -> Tensor:
        """Sample the values of x [N, C, H, W] that the bool mask ``keep`` (broadcastable
        to x) does not fix, with the model's ``sampler`` options; kept values come back
        unchanged."""
        raise UserError(f"{self.name} cannot complete images",
                        "use a fully visible model (pixelcnn, gated-pixelcnn, row-lstm, "
                        "made, nade) or a diffusion model (ddpm, flow-matching)")

    def init_from_data(self, x: Tensor) -> None:
        """Data-dependent set-up on the training images x [N, C, H, W] (a fresh run only)."""

    def figures(self, x: Tensor, y: Tensor | None = None,
                generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Extra named image batches for the report, each [N, C, H, W] in [0, 1], shown
        in rows of 8 (e.g. 4 input/reconstruction pairs per row, or one interpolation)."""
        return {}

    def objective_warmup(self) -> tuple[int, str] | None:
        """(step, what) when the objective itself ramps up until that step (a VAE's KL
        warm-up): the loop warns of a budget that ends before it. None: no such ramp."""
        return None

    def callbacks(self) -> list[Callback]:
        """Training callbacks the model brings (watchers); the loop adds them."""
        return []

    def ema_pair(self) -> tuple[nn.Module, nn.Module] | None:
        """(live, shadow) when the model keeps its own EMA network in its state dict."""
        return None

    def divergence_fix(self) -> str | None:
        """The fix a NaN error names (None: the loop's generic advice)."""
        return None

    def likelihood_terms(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        """Named parts of ``-log_prob(x, y)``, each [N] in nats per image, that sum to it."""
        raise UserError(f"{self.name} reports no likelihood terms",
                        "use log_prob for the total")

    @classmethod
    def supports(cls, capability: str) -> bool:
        """Whether this model class has the optional ``capability`` (see CAPABILITIES)."""
        if capability not in CAPABILITIES:
            raise ValueError(f"unknown capability {capability!r}")
        if capability == "log_prob":
            return cls.likelihood_kind != "none"
        return getattr(cls, capability) is not getattr(GenerativeModel, capability)

    # ----- helpers --------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def check_input(self, x: Tensor, y: Tensor | None = None) -> None:
        """Raise a one-line :class:`UserError` when ``x``/``y`` do not fit this model."""
        want = self.config.shape
        if x.dim() != 4 or tuple(x.shape[1:]) != want:
            raise UserError(
                f"{self.name} expects images of shape [N, {want[0]}, {want[1]}, {want[2]}], "
                f"got {list(x.shape)}",
                "resize the data with --image-size or train a model for this shape",
            )
        if self.config.num_classes and y is None:
            raise UserError(f"{self.name} is class-conditional and needs labels",
                            "pass --label / use a labelled dataset")
        if y is not None and not self.config.num_classes:
            raise UserError(f"{self.name} is unconditional but labels were given",
                            "drop --label or train with --conditional")
        if y is not None and (y.min() < 0 or y.max() >= self.config.num_classes):
            raise UserError(
                f"label out of range: the model knows classes 0..{self.config.num_classes - 1}",
                "pass a label in that range")

    def check_batch(self, x: Tensor, y: Tensor | None = None) -> None:
        """:meth:`check_input`, plus one label per image and pixels in [0, 1]: the checks
        every model's ``loss`` / ``log_prob`` runs on a batch x [N, C, H, W]."""
        self.check_input(x, y)
        if y is not None and y.reshape(-1).shape[0] != x.shape[0]:
            raise UserError(f"got {x.shape[0]} images but {y.numel()} labels",
                            "pass one label per image")
        if x.numel() and (x.min() < 0 or x.max() > 1):
            raise UserError(f"{self.name} expects pixel values in [0, 1]",
                            "scale the images to [0, 1] (genvision data does this)")

    def _labels_for(self, n: int, y: Tensor | None) -> Tensor | None:
        """Labels for ``n`` samples: None for an unconditional model (a label is refused),
        the classes in turn when a conditional model gets none, one label broadcast, or
        ``n`` labels checked against the class range."""
        shape = torch.zeros(1, *self.config.shape, device=self.device)
        if not self.config.num_classes:
            if y is not None:
                self.check_input(shape, torch.as_tensor(y).reshape(-1)[:1])  # raises
            return None
        if y is None:  # cycle through the classes so a grid shows every one
            return torch.arange(n, device=self.device) % self.config.num_classes
        y = torch.as_tensor(y, device=self.device).long().reshape(-1)
        if y.numel() == 1:
            y = y.expand(n)
        if y.numel() != n:
            raise UserError(f"sample got {y.numel()} labels for {n} images",
                            "pass one label or one per image")
        self.check_input(shape, y)  # label range
        return y

    # ----- save / load ----------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write ``config.json`` and ``model.safetensors`` (each atomically) to ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_tensors(directory / WEIGHTS_FILE, self.state_dict(), metadata={"model": self.name})
        atomic_write_json(directory / CONFIG_FILE,
                          {"model": self.name, "config": cfg.to_dict(self.config)})

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, *,
                        device: str | torch.device = "cpu") -> GenerativeModel:
        """Load a model saved by :meth:`save_pretrained` or trained by ``genvision train``.

        The name follows Hugging Face's ``from_pretrained`` (diffusers, transformers);
        it is :func:`load` with a type check: ``VAE.from_pretrained(run)`` refuses a run
        of another model, ``GenerativeModel.from_pretrained(run)`` takes any. A task run
        (``superres``, ``colorize``) is opened with ``genvision.load``, which finds its
        last trained stage.

        Example:
            >>> from genvision.models.vae import VAE
            >>> model = VAE.from_pretrained("runs/vae")      # doctest: +SKIP

        Raises:
            UserError: the directory holds a model of another class.
            CheckpointError: no model there, or a damaged one.
        """
        model = load(path, device=device)
        if not isinstance(model, cls):
            raise UserError(f"{path} holds a {model.name} model, not a {cls.__name__}",
                            f"use {type(model).__name__}.from_pretrained or genvision.load")
        return model

    @classmethod
    def from_config_dict(cls, data: dict[str, Any], *,
                         where: str | None = None) -> GenerativeModel:
        """The model of a saved config dict (``where``: the file it came from, for errors)."""
        if not isinstance(data, dict):
            raise CheckpointError(f"the model config{' in ' + where if where else ''} is "
                                  f"a {type(data).__name__}, not an object",
                                  "the checkpoint is damaged: restore it or retrain")
        data = cls.config_class.with_saved_before(data)
        return cls(cfg.from_dict(cls.config_class, data, what=f"{cls.name} config",
                                 where=where))


def resolve_model_dir(path: str | os.PathLike) -> Path:
    """Find the directory holding ``config.json`` + weights for a model or a run directory.

    A run directory keeps its checkpoints under ``checkpoints/`` with a ``latest`` pointer.

    Raises:
        CheckpointError: no model there, or ``latest`` names a missing checkpoint, one
            outside ``checkpoints/`` or a symbolic link.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path} does not exist", "check the run or model directory path")
    if (path / CONFIG_FILE).is_file():
        return path
    latest = path / "checkpoints" / "latest"
    if latest.is_file() or latest.is_symlink():
        target = pointed_entry(latest)  # never outside checkpoints/, never through a link
        if (target / CONFIG_FILE).is_file():
            return target
        raise CheckpointError(f"{latest} points to a missing checkpoint {target.name}",
                              "restore the checkpoint or retrain")
    raise CheckpointError(f"{path} holds no model (no config.json, no checkpoints/latest)",
                          "pass a run directory written by `genvision train` or save_pretrained")


def load(path: str | os.PathLike, *, device: str | torch.device = "cpu") -> GenerativeModel:
    """Rebuild a model from a ``save_pretrained`` directory or a run directory.

    Example:
        >>> model = genvision.load("runs/vae")      # doctest: +SKIP
        >>> x = model.sample(16)                     # [16, C, H, W] in [0, 1]
    """
    directory = resolve_model_dir(path)
    meta = read_json(directory / CONFIG_FILE, what="model config")
    if not isinstance(meta, dict) or "model" not in meta or "config" not in meta:
        raise CheckpointError(f"{directory / CONFIG_FILE} is not a genvision model config",
                              "pass a directory written by genvision")
    model_cls = get_model_class(meta["model"])
    try:
        model = model_cls.from_config_dict(meta["config"], where=str(directory / CONFIG_FILE))
    except CheckpointError:
        raise
    except UserError as exc:  # a damaged or hand-edited config: refused before allocating
        raise CheckpointError(exc.problem, "the checkpoint is damaged or from another "
                                           "version: restore it or retrain") from None
    state = load_tensors(directory / WEIGHTS_FILE)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise CheckpointError(f"weights in {directory} do not match its config ({first})",
                              "the checkpoint is damaged or from another version") from None
    return model.to(device).eval()
