"""Diffusion models: DDPM (epsilon or v prediction) and flow matching, one class.

* **DDPM** -- Ho et al. 2020, "Denoising Diffusion Probabilistic Models",
  https://arxiv.org/abs/2006.11239: a U-Net predicts the noise eps in
  ``z = alpha x + sigma eps`` (``parameterization="eps"``, the simple loss), or
  ``v = alpha eps - sigma x`` (Salimans & Ho 2022, https://arxiv.org/abs/2202.00512).
* **Flow matching** -- rectified flow / conditional flow matching (Liu et al. 2022,
  https://arxiv.org/abs/2209.03003; Lipman et al. 2022, https://arxiv.org/abs/2210.02747):
  on the straight path ``z = (1 - t) x + t eps`` the network regresses the velocity
  ``eps - x`` (``parameterization="velocity"``, ``schedule="rectified"``).

Data x in [0, 1] are scaled to [-1, 1]. The network sees the noise level as a log-SNR
(:mod:`.diffusion_schedule`), and every parameterisation is turned into one noise
predictor ``eps_hat(z, lam)`` in variance-preserving coordinates, so the samplers
(:mod:`.diffusion_samplers`: DDPM ancestral, DDIM, Heun, Euler) and the likelihood bound
(:mod:`.diffusion_bound`, VDM) are shared by both models. A class-conditional model
trains with label dropout and samples with classifier-free guidance (the sampler's
``guidance``). A self-conditioned model (``self_condition=K``) conditions the same way on
each training image's k-means cluster instead of a label and samples the clusters at their
data frequencies (as the self-conditioned GAN does; Hu et al. 2023, "Self-Guided Diffusion
Models", https://arxiv.org/abs/2210.06462, use learned clusters the same way). ``complete``
in-paints with RePaint.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from ..errors import UserError
from ..nn.embeddings import NoiseLevelEmbedding
from ..nn.unet import UNet
from . import diffusion_bound as bound
from . import diffusion_samplers as samplers
from .base import GenerativeModel, register
from .diffusion_config import (
    DDIMSampler,
    DDPMSampler,
    DiffusionConfig,
    DiffusionSampler,
    EulerSampler,
    FlowMatchingConfig,
    HeunSampler,
)
from .diffusion_schedule import NoiseSchedule, alpha_sigma
from .sampling import SampleRNG, SamplerOptions, as_sample_rng, resolve_sampler
from .self_condition import SelfConditioned

__all__ = ["DDPM", "FlowMatching"]


@register("ddpm")
class DDPM(SelfConditioned, GenerativeModel):
    """Gaussian diffusion on images [N, C, H, W] in [0, 1] (binary or 8-bit levels).

    The denoiser is the project's U-Net (:class:`~genvision.nn.unet.UNet`) with a
    noise-level (and label) embedding added to every block.
    """

    config_class = DiffusionConfig
    family = "diffusion"
    likelihood_kind = "bound"
    likelihood_options = ("k", "generator")  # timesteps per image, their noise
    supported_data_kinds = ("binary", "grey8", "rgb8")
    #: the first is the default: ancestral DDPM scored a clearly better FID than DDIM at 50
    #: steps after 10 CPU minutes (BENCHMARKS.md, "Diffusion models")
    samplers: ClassVar[dict[str, type[SamplerOptions]]] = {
        "ddpm": DDPMSampler, "ddim": DDIMSampler, "heun": HeunSampler, "euler": EulerSampler}
    train_defaults: ClassVar[dict[str, Any]] = {"lr": 2e-3, "lr_schedule": "cosine",
                                                "warmup_steps": 200, "ema_decay": 0.999}

    def __init__(self, config: DiffusionConfig):
        super().__init__(config)
        c = config
        self.n_levels = bound.levels(c.data_kind)
        if c.parameterization == "logits" and c.data_kind != "binary":
            raise UserError(f"parameterization 'logits' models binary pixels, not "
                            f"{c.data_kind!r} data", "use --parameterization eps or v")
        self.schedule = NoiseSchedule(c.schedule, c.lambda_min, c.lambda_max)
        with torch.random.fork_rng(devices=[]):  # init from config.seed, global RNG untouched
            torch.manual_seed(c.seed)
            self.embed = NoiseLevelEmbedding(c.emb_dim, c.lambda_min, c.lambda_max,
                                             c.num_classes or c.self_condition)
            self.net = UNet(c.width, c.depth, c.channels, c.channels, input_offset=0.0,
                            output="linear", cond_dim=c.emb_dim, block=c.block)
        if c.self_condition:  # filled by init_from_data; saved with the weights
            self.register_buffer("cluster_centroids",
                                 torch.zeros(c.self_condition, c.dims))
            self.register_buffer("cluster_freq", torch.zeros(c.self_condition))

    @classmethod
    def input_kind(cls, overrides: dict[str, Any]) -> str:
        return "binary"

    # ----- the one noise predictor ---------------------------------------------------------
    def _net(self, z: Tensor, lam: Tensor, labels: Tensor | None) -> Tensor:
        return self.net(z, self.embed(lam, labels))

    def eps_hat(self, z: Tensor, lam: Tensor, labels: Tensor | None = None) -> Tensor:
        """Predicted noise of the VP latent z [N, C, H, W] at log-SNR lam [N];
        ``labels`` None is the null label of a conditional model."""
        kind = self.config.parameterization
        if kind == "eps":
            return self._net(z, lam, labels)
        alpha, sigma = alpha_sigma(lam.reshape(-1, 1, 1, 1).to(z.dtype))
        if kind == "v":
            return sigma * z + alpha * self._net(z, lam, labels)
        if kind == "logits":
            return (z - alpha * self.x_hat_binary(z, lam, labels)) / sigma
        # velocity on the rectified path z_fm = (1 - t) x + t eps with t = sigmoid(-lam / 2)
        keep = torch.sigmoid(0.5 * lam).reshape(-1, 1, 1, 1).to(z.dtype)  # 1 - t
        z_fm = z * keep / alpha
        return z_fm + keep * self._net(z_fm, lam, labels)

    def x_hat_binary(self, z: Tensor, lam: Tensor, labels: Tensor | None = None) -> Tensor:
        """E[x | z] of binary data (values +-1) under the ``logits`` parameterisation.

        Pixel i's posterior log-odds split exactly into the evidence of its own noisy
        value, ``2 alpha z_i / sigma^2`` (a Gaussian likelihood ratio), and the log-odds of
        x_i given the *other* noisy pixels, which the network predicts. At high SNR the
        first term decides and the clean image is recovered exactly, where a network
        predicting the noise would have to amplify its error by 1 / sigma; at low SNR the
        network's context term decides.
        """
        alpha, sigma = alpha_sigma(lam.reshape(-1, 1, 1, 1).to(z.dtype))
        logits = self._net(z, lam, labels) + 2.0 * alpha * z / sigma ** 2
        return torch.tanh(0.5 * logits)

    # ----- self-conditioning ---------------------------------------------------------------
    def _labels_or_clusters(self, x: Tensor, y: Tensor | None) -> Tensor | None:
        return self.clusters(x) if self.config.self_condition else y

    def _sample_labels(self, n: int, y: Tensor | None, rng: SampleRNG) -> Tensor | None:
        """Labels for n samples. A self-conditioned model draws clusters at their data
        frequencies, one uniform from each sample's own stream, or takes ``y`` as cluster
        indices (one, or n) to draw from chosen clusters."""
        k = self.config.self_condition
        if not k:
            return self._labels_for(n, y)
        self._require_clusters()
        if y is None:
            return rng.categorical(self.cluster_freq.to(rng.device)).to(self.device)
        y = torch.as_tensor(y, device=self.device).long().reshape(-1)
        if y.numel() not in (1, n) or y.min() < 0 or y.max() >= k:
            raise UserError(f"a self-conditioned {self.name} takes one cluster index in "
                            f"[0, {k}) or one per sample, got {y.numel()} value(s) in "
                            f"[{int(y.min())}, {int(y.max())}]",
                            f"pass cluster indices in [0, {k})")
        return y.expand(n)

    # ----- training ----------------------------------------------------------------------
    def _check(self, x: Tensor, y: Tensor | None) -> None:
        self.check_input(x, y)
        if x.numel() and (x.min() < 0 or x.max() > 1):
            raise UserError(f"{self.name} expects pixel values in [0, 1]",
                            "scale the images to [0, 1] (genvision data does this)")

    def _train_labels(self, y: Tensor | None) -> Tensor | None:
        """Labels with the configured fraction replaced by the null label (CFG training)."""
        n_labels = self.config.num_classes or self.config.self_condition
        if y is None or not n_labels:
            return None
        drop = torch.rand(y.shape, device=y.device) < self.config.label_dropout  # global RNG
        return torch.where(drop, torch.full_like(y, n_labels), y)

    def loss(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        """Mean squared error of the network's target, per pixel, at t ~ U(0, 1).

        Args:
            x: [N, C, H, W] in [0, 1]. y: [N] labels of a conditional model.

        Returns:
            ``loss`` (the regression loss of the parameterisation) and ``eps_mse`` (the
            noise-prediction error, comparable across parameterisations).
        """
        self._check(x, y)
        xs = bound.to_signed(x)
        t = torch.rand(len(x), device=x.device)  # global RNG: the loop checkpoints it
        eps = torch.randn_like(xs)
        lam = self.schedule.log_snr(t)
        alpha, sigma = alpha_sigma(lam.reshape(-1, 1, 1, 1))
        z = alpha * xs + sigma * eps
        y = self._labels_or_clusters(x, y)
        labels = self._train_labels(y) if self.training else y
        kind = self.config.parameterization
        if kind == "velocity":
            keep = torch.sigmoid(0.5 * lam).reshape(-1, 1, 1, 1)
            z_fm = keep * xs + (1 - keep) * eps
            out = self._net(z_fm, lam, labels)
            loss = (out - (eps - xs)).pow(2).mean()
            eps_pred = z_fm + keep * out
        elif kind == "logits":  # the noise-prediction loss through the exact posterior
            eps_pred = (z - alpha * self.x_hat_binary(z, lam, labels)) / sigma
            loss = (eps_pred - eps).pow(2).mean()
        else:
            out = self._net(z, lam, labels)
            target = eps if kind == "eps" else alpha * eps - sigma * xs
            loss = (out - target).pow(2).mean()
            eps_pred = out if kind == "eps" else sigma * z + alpha * out
        return {"loss": loss, "eps_mse": (eps_pred - eps).detach().pow(2).mean()}

    # ----- likelihood bound --------------------------------------------------------------
    @torch.no_grad()
    def bound_terms(self, x: Tensor, y: Tensor | None = None, k: int | None = None,
                    generator: torch.Generator | SampleRNG | None = None) -> dict[str, Tensor]:
        """The terms of the bound on -log P(x), nats per image, each [N]: ``prior``,
        ``diffusion`` (k stratified timesteps) and ``decoder``; a self-conditioned model
        adds ``cluster``, -log pi_c of the image's own cluster c(x): P(x) = sum_c pi_c
        P(x | c) >= pi_c(x) P(x | c(x)), so the sum stays an upper bound on -log P(x)."""
        self._check(x, y)
        extra: dict[str, Tensor] = {}
        if self.config.self_condition:
            y = self.clusters(x)
            extra["cluster"] = -self.cluster_freq.clamp_min(1e-30).log()[y].to(x.dtype)
        k = int(k or self.config.eval_timesteps)
        if k < 1:
            raise UserError(f"the bound needs k >= 1 timesteps, got {k}", "pass k >= 1")
        rng = as_sample_rng(generator, len(x), x.device)
        xs = bound.to_signed(x)
        c = self.config

        def eps_hat(z: Tensor, lam: Tensor) -> Tensor:
            return self.eps_hat(z, lam, y)

        alpha, sigma = alpha_sigma(torch.tensor(c.lambda_max, dtype=torch.float64))
        z0 = float(alpha) * xs + float(sigma) * rng.randn(*xs.shape[1:], device=x.device)
        return {"prior": bound.prior_kl(xs, c.lambda_min),
                "diffusion": bound.diffusion_loss(eps_hat, xs, self.schedule, rng, k),
                "decoder": bound.decoder_nll(xs, z0, c.lambda_max, self.n_levels), **extra}

    @torch.no_grad()
    def log_prob(self, x: Tensor, y: Tensor | None = None, k: int | None = None,
                 generator: torch.Generator | SampleRNG | None = None) -> Tensor:
        """Lower bound on log P(x) of the discrete images (VDM), nats per image [N]:
        minus the sum of the terms of :meth:`bound_terms`."""
        return -sum(self.bound_terms(x, y, k, generator).values())

    def likelihood_protocol(self, k: int | None = None, **kwargs: Any) -> dict[str, Any]:
        c = self.config
        k = int(k or c.eval_timesteps)
        return {"kind": "bound",
                "estimator": f"VDM bound, continuous time, {k} stratified timesteps",
                "k": k, "terms": "prior KL + diffusion + discrete decoder"
                + (" + -log pi of the image's cluster" if c.self_condition else ""),
                "schedule": c.schedule, "lambda_range": [c.lambda_min, c.lambda_max],
                "decoder_levels": self.n_levels, **kwargs}

    # ----- sampling ----------------------------------------------------------------------
    def _denoiser(self, y: Tensor | None, guidance: float) -> samplers.Denoiser:
        if y is None:
            return lambda z, lam: self.eps_hat(z, lam, None)
        return samplers.guided(self.eps_hat, y, guidance)

    def _run(self, opts: DiffusionSampler, z: Tensor, y: Tensor | None, rng: SampleRNG,
             on_step: Any = None) -> Tensor:
        """Walk the sampler's grid from noise z to the data end; returns z at lambda_max."""
        grid = self.schedule.grid(opts.steps, z.device)
        eps_hat = self._denoiser(y, opts.guidance)
        if opts.name == "heun":
            return samplers.heun(eps_hat, z, grid, on_step=on_step)
        eta = 1.0 if opts.name == "ddpm" else getattr(opts, "eta", 0.0)
        return samplers.ddim(eps_hat, z, grid, eta=eta, rng=rng, clip=opts.clip,
                             on_step=on_step)

    def decode(self, z: Tensor, rng: SampleRNG | None, mean: bool = False) -> Tensor:
        """Pixels from the discrete decoder p(x | z) at lambda_max: z [N, C, H, W] ->
        [N, C, H, W] in [0, 1] on the data's levels (``mean``: the most likely level)."""
        lam = self.config.lambda_max
        if self.n_levels == 2:
            p = torch.sigmoid(bound.decoder_logits_binary(z, lam))
            return (p > 0.5).to(z.dtype) if mean or rng is None else rng.bernoulli(p)
        logp = bound.decoder_log_probs(z, lam, self.n_levels)  # [N, C, H, W, L]
        if not (mean or rng is None):  # Gumbel-max: one draw per pixel from p(v | z)
            u = rng.rand(*logp.shape[1:], dtype=torch.float64, device=z.device)
            logp = logp - torch.log(-torch.log(u.clamp_min(1e-300)))
        return logp.argmax(-1).to(z.dtype) / (self.n_levels - 1)

    @torch.no_grad()
    def sample(self, n: int, y: Tensor | None = None,
               generator: torch.Generator | SampleRNG | None = None,
               sampler: SamplerOptions | None = None) -> Tensor:
        """Draw ``n`` images [n, C, H, W] in [0, 1]: z ~ N(0, I) at lambda_min, the
        sampler's steps to lambda_max, then the discrete decoder. Image k uses only
        stream k of ``generator``."""
        opts = resolve_sampler(self, sampler)
        rng = as_sample_rng(generator, n, self.device)
        y = self._sample_labels(n, y, rng)
        z = rng.randn(*self.config.shape)
        return self.decode(self._run(opts, z, y, rng), rng)

    @torch.no_grad()
    def complete(self, x: Tensor, keep: Tensor, y: Tensor | None = None,
                 generator: torch.Generator | SampleRNG | None = None,
                 sampler: SamplerOptions | None = None) -> Tensor:
        """In-paint the pixels ``keep`` does not fix, with RePaint (Lugmayr et al. 2022):
        ancestral steps (the sampler's ``steps`` and ``guidance``), each repeated
        ``config.complete_resample`` times after renoising. Plain replacement (one
        repeat) pastes the known half beside an unrelated one; the repeats let the
        unknown pixels agree with the known ones. Kept pixels come back unchanged."""
        self._check(x, y)
        opts = resolve_sampler(self, sampler)
        keep = torch.as_tensor(keep, device=x.device).bool().expand_as(x)
        rng = as_sample_rng(generator, len(x), x.device)
        grid = self.schedule.grid(opts.steps, x.device)
        eps_hat = self._denoiser(y, opts.guidance)

        def step(z: Tensor, lam_t: Tensor, lam_s: Tensor) -> Tensor:
            return samplers.ddim_step(eps_hat, z, lam_t, lam_s, 1.0, rng, True)

        z = rng.randn(*self.config.shape)
        z = samplers.inpaint(step, z, grid, bound.to_signed(x), keep, rng,
                             self.config.complete_resample)
        return torch.where(keep, x, self.decode(z, rng))

    figure_captions: ClassVar[dict[str, str]] = {
        "denoising": "denoising: one sample per row; columns are x_t at 8 points of a DDIM "
                     "path, pure noise (left) to the data (right)",
        "steps": "steps: the same 8 seeds per row, drawn with 5, 10, 20 and 50 DDIM steps "
                 "(top to bottom)",
    }

    @torch.no_grad()
    def figures(self, x: Tensor, y: Tensor | None = None,
                generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """``denoising``: 4 samples' x_hat at 8 points of a DDIM path (noise -> data),
        one sample per row; ``steps``: the same 8 seeds drawn with 5, 10, 20 and 50 DDIM
        steps, one step count per row."""
        rng_seeds = as_sample_rng(generator, 8).seeds
        labels = self._sample_labels(8, None, SampleRNG(rng_seeds, self.device))
        opts = DDIMSampler(steps=self.config.sample_steps)
        frames: list[Tensor] = []
        keep_at = set(torch.linspace(0, opts.steps - 1, 8).round().long().tolist())

        def on_step(i: int, z: Tensor) -> Tensor:
            if i in keep_at:
                frames.append(z)
            return z

        rng = SampleRNG(rng_seeds[:4], self.device)
        y4 = None if labels is None else labels[:4]
        z = rng.randn(*self.config.shape)
        self._run(opts, z, y4, rng, on_step)
        # x_t itself (the VP latent, clipped to the data range): noise fading into digits
        strip = torch.stack([(f.clamp(-1, 1) + 1) / 2 for f in frames], 1).flatten(0, 1)
        rows = [self.sample(8, labels, SampleRNG(rng_seeds, self.device),
                            DDIMSampler(steps=s)) for s in (5, 10, 20, 50)]
        return {"denoising": strip, "steps": torch.cat(rows)}


@register("flow-matching")
class FlowMatching(DDPM):
    """Rectified flow / conditional flow matching: the straight path, a velocity target,
    Euler sampling by default; same network, samplers and bound as :class:`DDPM`."""

    config_class = FlowMatchingConfig
    samplers: ClassVar[dict[str, type[SamplerOptions]]] = {
        "euler": EulerSampler, "heun": HeunSampler, "ddim": DDIMSampler, "ddpm": DDPMSampler}

