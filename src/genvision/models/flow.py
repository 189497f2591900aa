"""Normalizing flows: RealNVP and Glow, on discrete images through dequantisation.

* RealNVP -- Dinh et al. 2016, "Density estimation using Real NVP",
  https://arxiv.org/abs/1605.08803: affine couplings with checkerboard and channel
  masks, squeezes and a multi-scale factor-out.
* Glow -- Kingma & Dhariwal 2018, "Glow: Generative Flow with Invertible 1x1
  Convolutions", https://arxiv.org/abs/1807.03039: actnorm with data-dependent
  initialisation (:meth:`Flow.init_from_data`), invertible 1x1 convolutions in LU form,
  affine couplings; sampling temperature (:class:`~.flow_config.FlowSampler`).

A flow is a bijection f between values v in the unit cube and latents z ~ N(0, I)
(a class-conditional model learns a mean and scale of z per class, Glow's conditional
prior), so the density ``log p(v) = log N(f(v)) + log |det df/dv|`` is exact.

**Discrete data** (Theis et al. 2016, https://arxiv.org/abs/1511.01844, section 3.1): a
pixel with value k of L levels (L = 2 for binary data, 256 for 8-bit data) is the bin
[k / L, (k + 1) / L) of v, and ``P(x) = int_[0,1)^D p((x_int + u) / L) L^-D du``. For any
noise distribution q(u | x) on the unit cube, Jensen's inequality gives the bound

    ``log P(x) >= E_q[log p((x_int + u) / L) - D log L - log q(u | x)]``

with ``q`` uniform (``dequantization="uniform"``, log q = 0) or a learned conditional flow
(``"variational"``, Flow++, Ho et al. 2019, https://arxiv.org/abs/1902.00275). With
k > 1 noise samples ``log_prob`` returns the importance-weighted bound
``log (1/k) sum_i exp(w_i)`` (Burda et al. 2015), tighter and still a bound in
expectation. The density is deficient -- the mass the flow puts outside the cube belongs
to no bin -- which only loosens the bound. ``likelihood_kind`` is ``"bound"``; the
estimator is in :meth:`Flow.likelihood_protocol`.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..errors import UserError
from ..nn.flow_layers import data_init
from .base import GenerativeModel, register
from .flow_arch import (
    MultiScaleFlow,
    VariationalDequantizer,
    build_glow,
    build_realnvp,
    standard_normal_log_prob,
)
from .flow_config import FlowConfig, FlowSampler, GlowConfig, RealNVPConfig
from .sampling import SampleRNG, SamplerOptions, as_sample_rng, resolve_sampler

__all__ = ["Flow", "RealNVP", "Glow", "levels"]


def levels(data_kind: str) -> int:
    """Values a pixel can take: 2 for binary data, 256 for 8-bit data."""
    return 2 if data_kind == "binary" else 256


class Flow(GenerativeModel):
    """Shared body of the flows: dequantisation, the bound, the prior and sampling.

    Subclasses build ``self.flow`` (a :class:`MultiScaleFlow`) in :meth:`_build_flow`.
    """

    config_class: ClassVar[type[FlowConfig]] = FlowConfig
    family = "change of variables (flow)"
    likelihood_kind = "bound"
    likelihood_options = ("k", "generator")  # dequantisation noise samples, their noise
    supported_data_kinds = ("binary", "grey8", "rgb8")
    samplers: ClassVar[dict[str, type[SamplerOptions]]] = {"ancestral": FlowSampler}
    train_defaults: ClassVar[dict[str, Any]] = {"lr": 1e-3, "warmup_steps": 100,
                                                "grad_clip": 100.0}

    def __init__(self, config: FlowConfig):
        super().__init__(config)
        c = config
        if c.data_kind not in self.supported_data_kinds:
            raise UserError(f"{self.name} models discrete pixels, not {c.data_kind!r} data",
                            "drop --dequantize (the flow dequantises itself)")
        self.bins = levels(c.data_kind)
        with torch.random.fork_rng(devices=[]):  # init from config.seed, global RNG untouched
            torch.manual_seed(c.seed)
            self.flow = self._build_flow()
            self.dequantizer = VariationalDequantizer(c.shape, c.deq_width, c.deq_depth) \
                if c.dequantization == "variational" else None
        if c.num_classes:  # Glow's class-conditional prior: a mean and log-scale per class
            self.prior_mean = nn.Parameter(torch.zeros(c.num_classes, c.dims))
            self.prior_log_scale = nn.Parameter(torch.zeros(c.num_classes, c.dims))

    def _build_flow(self) -> MultiScaleFlow:
        raise NotImplementedError

    # ----- density ------------------------------------------------------------------------
    def _prior(self, labels: Tensor | None, like: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log-scale [N, D] (or broadcastable zeros) of z's Gaussian prior."""
        if labels is None or not self.config.num_classes:
            zero = like.new_zeros(1, like.shape[1])
            return zero, zero
        return self.prior_mean[labels], self.prior_log_scale[labels]

    def log_density(self, v: Tensor, y: Tensor | None = None) -> Tensor:
        """Exact log-density of continuous values v [N, C, H, W] (nats, [N])."""
        z, logdet = self.flow(v)
        mean, log_scale = self._prior(y, z)
        eps = (z - mean) * (-log_scale).exp()
        return standard_normal_log_prob(eps) - log_scale.expand_as(z).sum(1) + logdet

    def _check(self, x: Tensor, y: Tensor | None) -> Tensor:
        """The integer level of every pixel of x [N, C, H, W] (values k / (L - 1))."""
        self.check_input(x, y)
        scaled = x * (self.bins - 1)
        idx = scaled.round()
        if x.numel() and (x.min() < 0 or x.max() > 1 or (scaled - idx).abs().max() > 1e-3):
            what = "binary {0, 1}" if self.bins == 2 else "8-bit (k / 255)"
            raise UserError(f"{self.name} for {self.config.data_kind} data expects "
                            f"{what} pixel values in [0, 1]",
                            "pass images of the data kind the model was trained on")
        return idx

    def bound_samples(self, x: Tensor, y: Tensor | None, k: int,
                      rng: SampleRNG | None) -> Tensor:
        """Importance weights w [N, k] in nats: ``log p(v) - D log L - log q(u | x)`` at
        k noise draws per image (``rng`` None: the global RNG, as in training)."""
        idx = self._check(x, y)
        n, shape = x.shape[0], self.config.shape
        xk, idxk = x.repeat_interleave(k, 0), idx.repeat_interleave(k, 0)
        yk = None if y is None else y.repeat_interleave(k)
        if self.dequantizer is None:
            u = torch.rand_like(xk) if rng is None else \
                rng.rand(k, *shape, dtype=x.dtype, device=x.device).flatten(0, 1)
            log_q = x.new_zeros(n * k)
        else:
            eps = torch.randn_like(xk) if rng is None else \
                rng.randn(k, *shape, dtype=x.dtype, device=x.device).flatten(0, 1)
            u, log_q = self.dequantizer(eps, xk)
        v = (idxk + u) / self.bins
        w = self.log_density(v, yk) - self.config.dims * math.log(self.bins) - log_q
        return w.view(n, k)

    def loss(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        """The negative dequantised bound with one noise draw per image.

        Returns:
            ``loss`` (nats per image, what is minimised) and ``bits_per_dim`` (the same
            in bits per pixel value).
        """
        nll = -self.bound_samples(x, y, 1, None)[:, 0].mean()
        return {"loss": nll,
                "bits_per_dim": nll.detach() / (self.config.dims * math.log(2))}

    @torch.no_grad()
    def log_prob(self, x: Tensor, y: Tensor | None = None, k: int | None = None,
                 generator: torch.Generator | SampleRNG | None = None) -> Tensor:
        """Lower bound on log P(x) of the discrete images, nats per image [N]: the
        dequantised bound, importance-weighted over ``k`` noise draws (default
        ``config.eval_k``); image i's noise comes from stream i of ``generator``."""
        k = int(k or self.config.eval_k)
        if k < 1:
            raise UserError(f"the bound needs k >= 1 noise samples, got {k}", "pass k >= 1")
        rng = as_sample_rng(generator, len(x), x.device)
        w = self.bound_samples(x, y, k, rng)
        return torch.logsumexp(w, 1) - math.log(k)

    def likelihood_protocol(self, k: int | None = None, **kwargs: Any) -> dict[str, Any]:
        c = self.config
        k = int(k or c.eval_k)
        how = "uniform noise" if c.dequantization == "uniform" else \
            "a learned conditional flow q(u|x) (Flow++)"
        estimator = (f"dequantised bound (Theis et al. 2016), {how}, "
                     + ("one noise sample" if k == 1 else
                        f"importance-weighted log-mean-exp over {k} noise samples"))
        return {"kind": "bound", "estimator": estimator, "k": k,
                "dequantization": c.dequantization, "bins": self.bins,
                "logit_alpha": c.logit_alpha, **kwargs}

    # ----- data-dependent initialisation ------------------------------------------------------
    @torch.no_grad()
    def init_from_data(self, x: Tensor) -> None:
        """Initialise every actnorm from ``config.init_images`` training images x
        [N, C, H, W] (a seeded subset, uniformly dequantised; binary data given as
        probabilities, as under dynamic binarisation, are drawn once), so each actnorm's
        output has zero mean and unit variance per channel on that batch (Glow 3.1)."""
        g = torch.Generator().manual_seed(self.config.seed)
        batch = x[torch.randperm(len(x), generator=g)[:self.config.init_images]]
        batch = batch.to(dtype=next(self.parameters()).dtype)
        if self.bins == 2 and not torch.equal(batch, batch.round()):
            batch = torch.bernoulli(batch, generator=g)
        idx = (batch * (self.bins - 1)).round()
        v = ((idx + torch.rand(batch.shape, generator=g, dtype=batch.dtype)) / self.bins)
        was = self.training
        self.train()
        data_init(self.flow, lambda: self.flow(v.to(self.device)))
        self.train(was)

    # ----- sampling ---------------------------------------------------------------------------
    def sample_latents(self, n: int, y: Tensor | None = None,
                       generator: torch.Generator | SampleRNG | None = None,
                       temperature: float = 1.0) -> Tensor:
        """Latents z [n, D]: the prior's mean plus ``temperature`` times its scale times
        N(0, I) noise (row k from stream k of ``generator``)."""
        rng = as_sample_rng(generator, n, self.device)
        eps = rng.randn(self.config.dims, dtype=next(self.parameters()).dtype)
        mean, log_scale = self._prior(self._labels_for(n, y), eps)
        return mean + temperature * log_scale.exp() * eps

    def decode(self, z: Tensor) -> Tensor:
        """Latents z [n, D] -> pixels [n, C, H, W] in [0, 1]: the bin each value of
        f^-1(z) falls in (values outside the cube go to the nearest edge bin)."""
        v, _ = self.flow.inverse(z)
        idx = torch.floor(v * self.bins).clamp(0, self.bins - 1)
        return idx / (self.bins - 1)

    @torch.no_grad()
    def sample(self, n: int, y: Tensor | None = None,
               generator: torch.Generator | SampleRNG | None = None,
               sampler: SamplerOptions | None = None) -> Tensor:
        """Draw ``n`` images [n, C, H, W] in [0, 1] on the data's levels at the sampler's
        temperature; image k uses only stream k of ``generator``."""
        opts = resolve_sampler(self, sampler)
        return self.decode(self.sample_latents(n, y, generator, opts.temperature))

    @torch.no_grad()
    def figures(self, x: Tensor, y: Tensor | None = None,
                generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """``temperature``: the same 8 seeds drawn at temperatures 0, 0.5, 0.7 and 1,
        one temperature per row."""
        seeds = as_sample_rng(generator, 8).seeds
        labels = self._labels_for(8, None)
        rows = [self.sample(8, labels, SampleRNG(seeds, self.device), FlowSampler(t))
                for t in (0.0, 0.5, 0.7, 1.0)]
        return {"temperature": torch.cat(rows)}


@register("realnvp")
class RealNVP(Flow):
    """RealNVP: affine couplings (checkerboard and channel masks), squeezes, factor-out."""

    config_class = RealNVPConfig

    def _build_flow(self) -> MultiScaleFlow:
        c = self.config
        return build_realnvp(c.shape, c.levels, c.depth, c.width, c.net_blocks, c.logit_alpha)


@register("glow")
class Glow(Flow):
    """Glow: actnorm (data-initialised), LU 1x1 convolutions, affine couplings."""

    config_class = GlowConfig

    def _build_flow(self) -> MultiScaleFlow:
        c = self.config
        return build_glow(c.shape, c.levels, c.depth, c.width, c.net_blocks, c.logit_alpha)
