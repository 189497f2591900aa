"""Implicit models: generative adversarial networks (no density, a sampler x = G(z)).

Goodfellow et al. 2014, "Generative Adversarial Nets", https://arxiv.org/abs/1406.2661:
G maps z ~ N(0, I) to an image and is trained through a discriminator (critic) D that
tells real from generated images. Three objectives share one G/D implementation
(:mod:`genvision.nn.gan_nets`), registered as three models:

* ``dcgan`` -- Radford et al. 2015, https://arxiv.org/abs/1511.06434, with the
  non-saturating loss: D minimises softplus(-D(x)) + softplus(D(G(z))), G minimises
  softplus(-D(G(z))); the R1 penalty is on by default (see :class:`DCGANConfig`).
* ``wgan-gp`` -- Gulrajani et al. 2017, "Improved Training of Wasserstein GANs",
  https://arxiv.org/abs/1704.00028: the critic minimises D(G(z)) - D(x) + lambda (||grad
  D(x_hat)|| - 1)^2 on random interpolates x_hat, ``n_critic`` critic updates per G update,
  plus the 1e-3 D(x)^2 drift term of ProGAN (Karras et al. 2017) that keeps scores bounded.
* ``sngan`` -- Miyato et al. 2018, "Spectral Normalization for GANs",
  https://arxiv.org/abs/1802.05957: hinge loss, relu(1 - D(x)) + relu(1 + D(G(z))) for D
  and -D(G(z)) for G, with every D weight spectrally normalised and TTUR rates.

Any of them is class-conditional with ``--conditional`` (label embedding in G, projection
discriminator). Without labels, ``--info-codes K`` (InfoGAN, Chen et al. 2016,
https://arxiv.org/abs/1606.03657) gives G a uniform K-way code c beside z, through the same
embedding, and D a Q head that predicts c from G(z, c); D/Q and G both minimise the
cross-entropy of Q on c, a lower bound on the mutual information I(c; G(z, c)) up to H(c).
A smooth map from one Gaussian must put images *between* separated modes (digit classes)
somewhere; a discrete code lets G jump between modes instead. ``--self-condition K``
(Liu et al. 2020, https://arxiv.org/abs/2006.10728) finds the modes in the data instead:
before training, k-means splits the training images into K pixel-space clusters
(:mod:`genvision.nn.pixel_clusters`); G and the projection D are conditioned on each real
image's cluster exactly as on a label, and sampling draws clusters at their data
frequencies, so no mode is over- or under-drawn and no label is used.

Options: two learning rates (TTUR, Heusel et al. 2017, https://arxiv.org/abs/1706.08500),
Adam betas, an EMA of G that sampling uses (its decay is the training loop's
``--ema-decay``), the R1 penalty (Mescheder et al. 2018, https://arxiv.org/abs/1801.04406),
DiffAugment (:mod:`genvision.nn.diffaugment`) and latent
truncation (Brock et al. 2018, https://arxiv.org/abs/1809.11096).

Training declares two phases (``n_critic`` D steps, then a G step; the loop runs them) and
G_ema as the loop's EMA target. A watcher callback (:mod:`genvision.models.gan_watch`)
reports when D wins outright or the samples collapse; the loop writes those warnings into
metrics.jsonl and the report shows them.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from ..callbacks import Callback
from ..errors import UserError
from ..nn.adversarial import d_objective, g_objective, gradient_penalty
from ..nn.diffaugment import diff_augment, parse_policy
from ..nn.gan_nets import Discriminator, Generator
from .base import GenerativeModel, register
from .gan_config import DCGANConfig, GANConfig, SNGANConfig, WGANGPConfig
from .gan_watch import GANWatcher
from .protocol import OptimizerSpec, Phase, PhaseLoss, StepContext
from .sampling import SampleRNG, SamplerOptions, as_sample_rng, resolve_sampler
from .self_condition import SelfConditioned

__all__ = ["DCGAN", "GAN", "GANConfig", "LatentSampler", "SNGAN", "WGANGP", "gradient_penalty"]


def _slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation of latents (White 2016): stays at the norm z ~ N(0, I) has."""
    cos = (F.normalize(a, dim=-1) * F.normalize(b, dim=-1)).sum(-1, keepdim=True)
    omega = torch.acos(cos.clamp(-1 + 1e-6, 1 - 1e-6))
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / so


@dataclasses.dataclass(frozen=True)
class LatentSampler(SamplerOptions):
    """x = G(z) for z ~ N(0, I), optionally truncated (Brock et al. 2018)."""

    name: ClassVar[str] = "latent"
    #: redraw latent values beyond +-truncation (0 = plain normal; None = the config's)
    truncation: float | None = None
    #: sample from G's moving average (False: the raw G as last trained)
    ema: bool = True

    def __post_init__(self) -> None:
        if self.truncation is not None and not self.truncation >= 0:
            raise ValueError(f"truncation must be >= 0, got {self.truncation}")

    def resolve(self, model: Any) -> LatentSampler:
        if self.truncation is not None:
            return self
        return dataclasses.replace(self, truncation=float(model.config.truncation))


class GAN(SelfConditioned, GenerativeModel):
    """A generator G, a discriminator D and G's moving average ``G_ema`` (used to sample).

    Images are [N, C, H, W] in [0, 1] with H and W multiples of 4. The state dict holds
    all three networks, so a resumed run continues exactly.
    """

    config_class = GANConfig
    family = "implicit (GAN)"
    likelihood_kind = "none"
    supported_data_kinds = ("grey8", "rgb8", "continuous")
    samplers: ClassVar[dict[str, type[SamplerOptions]]] = {"latent": LatentSampler}
    #: one Adam per network with the model config's rates and betas (see :meth:`phases`)
    unused_train_options: ClassVar[tuple[str, ...]] = ("lr", "beta1", "beta2", "weight_decay")

    def __init__(self, config: GANConfig):
        super().__init__(config)
        c = config
        ch, h, w = c.shape
        if h % 4 or w % 4 or min(h, w) < 4:
            side = max(8, 4 * round(max(h, w) / 4))
            raise UserError(f"{self.name} generates images whose sides are multiples of 4, "
                            f"not {h}x{w}", f"resize the data with --image-size {side}")
        with torch.random.fork_rng(devices=[]):  # init from config.seed, global RNG untouched
            torch.manual_seed(c.seed)
            # an InfoGAN code or a cluster enters G exactly like a label (learned
            # embedding next to z); a cluster also enters the projection D like a label
            labels = c.num_classes or c.self_condition
            self.G = Generator(c.latent_dim, ch, h, w, c.g_width, labels or c.info_codes,
                               c.label_dim)
            self.D = Discriminator(ch, h, w, c.d_width, labels, c.spectral_norm,
                                   c.info_codes)
        self.G_ema = copy.deepcopy(self.G).requires_grad_(False)
        if c.self_condition:  # filled by init_from_data; saved with the weights
            self.register_buffer("cluster_centroids",
                                 torch.zeros(c.self_condition, ch * h * w))
            self.register_buffer("cluster_freq", torch.zeros(c.self_condition))
        self._policy = parse_policy(c.diffaug)

    @classmethod
    def input_kind(cls, overrides: dict[str, Any]) -> str:
        """8-bit levels, never binarised: a generator's sigmoid output is grey."""
        return "grey8"

    def num_parameters(self) -> int:
        """Trainable parameters of G and D (G_ema is a copy of G)."""
        return sum(p.numel() for m in (self.G, self.D) for p in m.parameters())

    def _labels(self, x: Tensor, y: Tensor | None) -> Tensor | None:
        """The labels G and D see for real images x: the dataset's (conditional), each
        image's cluster (self-conditioned), or None."""
        if not self.config.self_condition:
            return y
        return self.clusters(x)

    # ----- objective ----------------------------------------------------------------------
    def _check(self, x: Tensor, y: Tensor | None) -> None:
        self.check_batch(x, y)

    def _d(self, x: Tensor, y: Tensor | None) -> Tensor:
        """D's scores [N] of (augmented) images."""
        return self._d_codes(x, y)[0]

    def _d_codes(self, x: Tensor, y: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """D's scores [N] and Q's code logits [N, codes] (None without codes) of
        (augmented) images, one pass: every D call goes through here."""
        return self.D.score_and_codes(diff_augment(x, self._policy) if self._policy else x, y)

    def _z(self, n: int) -> Tensor:
        return torch.randn(n, self.config.latent_dim, device=self.device)  # global RNG

    def _g_input(self, n: int, y: Tensor | None,
                 generator: torch.Generator | None = None) -> Tensor | None:
        """What G gets beside z: the labels, a uniform InfoGAN code [n], clusters [n] drawn
        at their data frequencies (self-conditioned, when ``y`` is None), or None."""
        c = self.config
        dev = generator.device if generator is not None else self.device
        if c.info_codes:
            return torch.randint(c.info_codes, (n,), generator=generator,
                                 device=dev).to(self.device)
        if c.self_condition and y is None:
            self._require_clusters()
            return torch.multinomial(self.cluster_freq.to(dev), n, replacement=True,
                                     generator=generator).to(self.device)
        return y

    def _info_term(self, logits: Tensor | None, code: Tensor | None) -> Tensor | None:
        """InfoGAN's lower bound on I(c; G(z, c)), up to H(c): cross-entropy of Q on c."""
        if logits is None or code is None:
            return None
        return F.cross_entropy(logits, code)

    def _d_loss(self, x: Tensor, y: Tensor | None, fake: Tensor, penalties: bool,
                code: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """D's objective (penalties and Q's code term included) on real ``x`` and (detached)
        ``fake`` made from InfoGAN ``code``, plus the logged terms (``loss`` is the
        adversarial part alone)."""
        c = self.config
        r1 = penalties and c.r1_gamma > 0
        xr = x.detach().requires_grad_(True) if r1 else x
        real = self._d(xr, y)
        fake_s, logits = self._d_codes(fake, y)
        adversarial = d_objective(c.loss, real, fake_s)
        loss = adversarial
        terms = {"d_real": real.mean().detach(), "d_fake": fake_s.mean().detach()}
        info = self._info_term(logits, code)
        if info is not None:
            loss = loss + c.info_weight * info
            terms["info_ce"] = info.detach()
        if c.loss == "wgan-gp":
            terms["w_dist"] = terms["d_real"] - terms["d_fake"]
            loss = loss + 1e-3 * real.pow(2).mean()  # ProGAN's drift term
            if penalties and c.gp_weight > 0:
                gp = gradient_penalty(lambda v: self._d(v, y), x, fake)
                loss = loss + c.gp_weight * gp
                terms["gp"] = gp.detach()
        if r1:
            (grad,) = torch.autograd.grad(real.sum(), xr, create_graph=True)
            penalty = grad.pow(2).flatten(1).sum(1).mean()
            loss = loss + 0.5 * c.r1_gamma * penalty
            terms["r1"] = penalty.detach()
        return loss, {"loss": adversarial.detach(), **terms}

    def loss(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        """Both players' objectives on one batch, without updating anything.

        Args:
            x: [N, C, H, W] real images in [0, 1]. y: [N] labels (conditional models).

        Returns:
            Scalars: ``loss`` (D's adversarial objective; the penalties D also minimises are
            logged on their own, so train and validation values compare), ``g_loss``,
            ``d_real`` / ``d_fake`` (mean scores), ``w_dist`` (wgan-gp), ``gp`` and ``r1``
            (when used, and only with gradients on). The loop's validation pass logs these:
            D's scores on held-out real images show when D starts memorising the training
            set.
        """
        self._check(x, y)
        y = self._labels(x, y)
        code = self._g_input(x.shape[0], y)
        fake = self.G(self._z(x.shape[0]), code)
        _, terms = self._d_loss(x, y, fake.detach(), penalties=torch.is_grad_enabled(),
                                code=code if self.config.info_codes else None)
        terms["g_loss"] = g_objective(self.config.loss, self._d(fake, y)).detach()
        return terms

    # ----- training -----------------------------------------------------------------------
    def phases(self, train: Any) -> list[Phase]:
        """``n_critic`` D phases, then one G phase on the last critic step's fakes.

        One Adam per network with the TTUR rates of the model config; the run's
        ``--grad-clip`` clips both networks and its ``--ema-decay`` drives G_ema (see
        :meth:`ema_pair`). Logged terms: those of :meth:`loss` plus ``d_grad_norm`` /
        ``g_grad_norm`` (before clipping, added by the loop).
        """
        defaults = {f.name: f.default for f in dataclasses.fields(train)}
        uses = {"lr": "--lr-g and --lr-d", "beta1": "--adam-betas", "beta2": "--adam-betas",
                "weight_decay": "no weight decay"}
        for name in self.unused_train_options:
            use = uses[name]
            if getattr(train, name) != defaults[name]:
                raise UserError(f"--{name.replace('_', '-')} does not apply to {self.name}: "
                                "it trains one Adam per network", f"use {use}")
        c = self.config
        betas = (float(c.adam_betas[0]), float(c.adam_betas[1]))
        return [Phase("d", self.D.parameters(), OptimizerSpec("adam", c.lr_d, betas),
                      self._d_phase, repeats=c.n_critic),
                Phase("g", self.G.parameters(), OptimizerSpec("adam", c.lr_g, betas),
                      self._g_phase, frozen=(self.D,))]

    def _d_phase(self, x: Tensor, y: Tensor | None, ctx: StepContext) -> PhaseLoss:
        """One critic step on the batch's real images and fresh fakes; the last repeat
        keeps G's graph for the G phase."""
        c = self.config
        if ctx.repeat == 0:
            self._check(x, y)
            ctx.scratch["y"] = self._labels(x, y)  # real images' clusters when self-conditioned
        y = ctx.scratch["y"]
        z = self._z(x.shape[0])
        g_in = self._g_input(x.shape[0], y)
        code = g_in if c.info_codes else None
        if ctx.repeat == c.n_critic - 1:  # a branch, not set_grad_enabled(flag): under
            fake = self.G(z, g_in)          # --compile the repeat may be symbolic
        else:
            with torch.no_grad():
                fake = self.G(z, g_in)
        ctx.scratch.update(fake=fake, code=code)
        ctx.ema_inputs = (z, g_in)  # G_ema's own BatchNorm statistics (see ema_pair)
        return self._d_loss(x, y, fake.detach(), penalties=True, code=code)

    def _g_phase(self, x: Tensor, y: Tensor | None, ctx: StepContext) -> PhaseLoss:
        c, fake, code = self.config, ctx.scratch["fake"], ctx.scratch["code"]
        score, logits = self._d_codes(fake, ctx.scratch["y"])
        g_loss = g_objective(c.loss, score)
        info = self._info_term(logits, code)
        return (g_loss if info is None else g_loss + c.info_weight * info), {
            "g_loss": g_loss.detach()}

    def ema_pair(self) -> tuple[torch.nn.Module, torch.nn.Module]:
        """G and its moving average G_ema, which sampling uses.

        G's BatchNorm statistics belong to G's weights, not to their average (copied over,
        they cost G_ema ~4 FID points in a short MNIST run), so G_ema keeps its own: the
        loop runs it once on the step's latents in training mode after averaging.
        """
        return self.G, self.G_ema

    def callbacks(self) -> list[Callback]:
        """The watcher that warns when D wins outright or the samples collapse."""
        return [GANWatcher(self)]

    def divergence_fix(self) -> str:
        """What to do when the loop finds a NaN (named in its one-line error)."""
        c = self.config
        return (f"start again with lower --lr-d/--lr-g (now {c.lr_d:g}/{c.lr_g:g}) or "
                "--r1-gamma 1, or --resume with --grad-clip 1.0")

    # ----- sampling -----------------------------------------------------------------------
    def log_prob(self, x: Tensor, y: Tensor | None = None, **kwargs: Any) -> Tensor:
        raise UserError(f"{self.name} has no likelihood: a GAN learns a sampler, not a density",
                        "evaluate it with sample metrics: --metrics fid,kid,pr,dc")

    def latents(self, n: int, generator: torch.Generator | SampleRNG | None = None,
                truncation: float | None = None) -> Tensor:
        """z [n, latent_dim] ~ N(0, I), truncated at +-``truncation`` when > 0 (values
        outside are redrawn; default ``config.truncation``). Latent k comes from its own
        stream of ``as_sample_rng(generator, n)`` (CPU generators), so it depends only on
        its seed, on any device and in any batch."""
        t = self.config.truncation if truncation is None else truncation
        rng = as_sample_rng(generator, n)
        d = self.config.latent_dim
        z = rng.truncated_randn(d, bound=t) if t > 0 else rng.randn(d)
        return z.to(self.device)

    def _sample_g_input(self, n: int, y: Tensor | None, rng: SampleRNG) -> Tensor | None:
        """What G gets beside z when sampling (see ``_g_input``), each image's InfoGAN code
        or cluster drawn from its own stream: [n] or None."""
        c = self.config
        if c.info_codes:
            return rng.randint(c.info_codes, device=self.device)
        if c.self_condition and y is None:
            self._require_clusters()
            return rng.categorical(probs=self.cluster_freq.cpu()).to(self.device)
        return y

    def _run(self, net: torch.nn.Module, z: Tensor, y: Tensor | None) -> Tensor:
        """net(z, y) in eval mode (BatchNorm running statistics), mode restored after."""
        was = net.training
        net.eval()
        try:
            x = net(z, y)
        finally:
            net.train(was)
        if self.config.data_kind in ("grey8", "rgb8"):
            x = (x * 255).round() / 255  # back onto the data's 256 levels
        return x

    @torch.no_grad()
    def sample(self, n: int, y: Tensor | None = None,
               generator: torch.Generator | SampleRNG | None = None,
               sampler: SamplerOptions | None = None) -> Tensor:
        """Draw ``n`` images x = G_ema(z) (``LatentSampler(ema=False)``: the raw G).

        Args:
            n: number of images. y: one label or [n] labels; a conditional model given none
                cycles through the classes.
            generator: None, a torch.Generator (n seeds drawn from it) or a per-sample
                :class:`SampleRNG`: image k's latent, then its InfoGAN code or cluster, come
                from stream k alone. G runs in eval mode, so BatchNorm is per-image too.
            sampler: :class:`LatentSampler` options (None = config truncation, G_ema).

        Returns:
            [n, C, H, W] in [0, 1] (on the 256 levels for 8-bit data).
        """
        opts = resolve_sampler(self, sampler)
        y = self._labels_for(n, y)
        rng = as_sample_rng(generator, n)
        z = self.latents(n, rng, opts.truncation)
        return self._run(self.G_ema if opts.ema else self.G, z, self._sample_g_input(n, y, rng))

    @torch.no_grad()
    def figures(self, x: Tensor, y: Tensor | None = None,
                generator: torch.Generator | SampleRNG | None = None) -> dict[str, Tensor]:
        """``interpolations``: 4 rows of 8 images along the great circle between two
        random latents (one class per row for conditional models, one InfoGAN code or
        cluster per row with ``info_codes`` / ``self_condition``), from G_ema. With
        ``info_codes``, also ``codes``: one row per code value, the same 8 latents in every
        row (what the code learned); with ``self_condition``, ``clusters`` likewise, the
        clusters from most to least frequent."""
        c = self.config
        z0, z1 = self.latents(4, generator), self.latents(4, generator)
        t = torch.linspace(0, 1, 8, device=self.device).view(1, 8, 1)
        z = _slerp(z0[:, None], z1[:, None], t).flatten(0, 1)
        k = c.num_classes or c.info_codes or c.self_condition  # one class/code per row
        labels = (torch.arange(4, device=self.device) % k).repeat_interleave(8) if k else None
        figs = {"interpolations": self._run(self.G_ema, z, labels)}
        rows = None
        if c.info_codes:
            rows, name = torch.arange(c.info_codes, device=self.device), "codes"
        elif c.self_condition:
            rows, name = self.cluster_freq.argsort(descending=True, stable=True), "clusters"
        if rows is not None:
            figs[name] = self._run(self.G_ema, self.latents(8, generator).repeat(len(rows), 1),
                                   rows.repeat_interleave(8))
        return figs


@register("dcgan")
class DCGAN(GAN):
    config_class = DCGANConfig


@register("wgan-gp")
class WGANGP(GAN):
    config_class = WGANGPConfig


@register("sngan")
class SNGAN(GAN):
    config_class = SNGANConfig
