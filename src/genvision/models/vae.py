"""Variational autoencoder: VAE, beta-VAE, conditional VAE, IWAE bound, PixelVAE-style head.

* VAE -- Kingma & Welling 2013, "Auto-Encoding Variational Bayes",
  https://arxiv.org/abs/1312.6114: q(z|x) = N(mu(x), diag sigma(x)^2), p(z) = N(0, I),
  trained on the evidence lower bound (ELBO) with the reparameterisation trick.
* beta-VAE -- Higgins et al. 2017, "beta-VAE: Learning Basic Visual Concepts with a
  Constrained Variational Framework" (ICLR): the KL term is weighted by ``beta``; here it
  is also warmed up linearly from 0 over ``kl_warmup_steps`` (Bowman et al. 2015,
  Sonderby et al. 2016), with optional free bits (Kingma et al. 2016).
* IWAE -- Burda et al. 2015, "Importance Weighted Autoencoders",
  https://arxiv.org/abs/1509.00519: ``log_prob`` is the IWAE-k bound
  log (1/k) sum_i p(x, z_i) / q(z_i|x) <= log p(x), tight as k grows; ``train_k > 1``
  trains on it too.
* Optional autoregressive head -- Gulrajani et al. 2016, "PixelVAE",
  https://arxiv.org/abs/1611.05013: p(x|z) = prod_i p(x_i | x_<i, z) through masked
  convolutions on x fused with the decoder's features. The masked stack sees x only, so
  it runs once per image in ``log_prob`` however many z are drawn, and log p(x|z) stays
  exact; ``sample`` draws pixels one at a time.

Pixel likelihoods (``likelihood``): ``bernoulli`` for binary data; ``logistic`` -- the
discretised logistic of PixelCNN++ (Salimans et al. 2017, https://arxiv.org/abs/1701.05517)
with the edge bins at 0 and 255 extended to -inf / +inf, a true discrete likelihood over
256 levels; ``gaussian`` for continuous data, with one learned standard deviation per
channel (the sigma-VAE choice of Rybkin et al. 2021, https://arxiv.org/abs/2006.13202:
a fixed variance is a hidden beta, a learned shared one is calibrated and stable), giving
a density in nats. ``auto`` picks the one that fits the data kind.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..distributions import Bernoulli, DiscretizedLogistic
from ..errors import UserError
from ..nn.blocks import ResBlock, pad_to_multiple
from ..nn.masked import CausalConv2d
from .base import GenerativeModel, register
from .protocol import StepContext
from .sampling import SampleRNG, SamplerOptions, as_sample_rng, resolve_sampler
from .vae_config import AUTO_LIKELIHOOD, LIKELIHOOD_DATA_KINDS, VAEConfig

__all__ = ["VAE", "VAEConfig", "LIKELIHOOD_DATA_KINDS"]

_LOG2PI = math.log(2 * math.pi)


@dataclasses.dataclass(frozen=True)
class VAESampler(SamplerOptions):
    """Ancestral sampling z ~ p(z), x ~ p(x|z)."""

    name: ClassVar[str] = "ancestral"
    #: ``sample``: draw the pixels (what the likelihood scores); ``mean``: the decoder's
    #: pixel means (Bernoulli probabilities; smoother, not data values)
    decoder: Literal["sample", "mean"] = "sample"


@register("vae")
class VAE(GenerativeModel):
    """Convolutional VAE for any image size and channel count.

    Images [N, C, H, W] are zero-padded to a multiple of ``2**len(hidden)``, encoded by
    stride-2 conv stages into q(z|x), decoded by the mirrored transposed convs, and cropped
    back to H x W. With ``num_classes > 0`` a label embedding enters the encoder's and the
    decoder's dense layer (conditional VAE, Sohn et al. 2015).

    The training loop's step (``training_loss``'s context) drives the KL warm-up;
    :meth:`loss` alone (evaluation) uses the full ``beta``.
    """

    config_class = VAEConfig
    family = "explicit latent variable"
    likelihood_kind = "bound"
    likelihood_options = ("k", "generator")  # IWAE importance samples, their noise
    supported_data_kinds = ("binary", "grey8", "rgb8", "continuous")
    samplers: ClassVar[dict[str, type[SamplerOptions]]] = {"ancestral": VAESampler}

    def __init__(self, config: VAEConfig):
        super().__init__(config)
        c = config
        self.likelihood = AUTO_LIKELIHOOD[c.data_kind] if c.likelihood == "auto" else c.likelihood
        if c.data_kind not in LIKELIHOOD_DATA_KINDS[self.likelihood]:
            fits = ", ".join(k for k, v in LIKELIHOOD_DATA_KINDS.items() if c.data_kind in v)
            raise UserError(
                f"likelihood {self.likelihood!r} does not fit {c.data_kind!r} data "
                f"(it models {'/'.join(LIKELIHOOD_DATA_KINDS[self.likelihood])} data)",
                f"use --likelihood {fits} or auto")
        with torch.random.fork_rng(devices=[]):  # init from config.seed, global RNG untouched
            torch.manual_seed(c.seed)
            self._build()

    @classmethod
    def input_kind(cls, overrides: dict[str, Any]) -> str:
        """Data kind for ``--likelihood``: logistic -> 8-bit levels, gaussian -> continuous,
        bernoulli or auto -> binary (the MNIST-5k benchmark's dynamic binarisation)."""
        lik = overrides.get("likelihood", "auto")
        return {"logistic": "grey8", "gaussian": "continuous"}.get(lik, "binary")

    # ----- network -----------------------------------------------------------------------
    def _build(self) -> None:
        c = self.config
        ch, h, w = c.shape
        self._mult = 2 ** len(c.hidden)
        hp, wp = -(-h // self._mult), -(-w // self._mult)
        self._low = (c.hidden[-1], hp, wp)
        flat = c.hidden[-1] * hp * wp
        emb = c.label_dim if c.num_classes else 0
        self.label_emb = nn.Embedding(c.num_classes, c.label_dim) if c.num_classes else None

        enc: list[nn.Module] = [nn.Conv2d(ch, c.hidden[0], 3, padding=1)]
        prev = c.hidden[0]
        for width in c.hidden:
            # activation before each strided conv: the stack must stay nonlinear even
            # with res_blocks = 0
            enc += [nn.SiLU(), nn.Conv2d(prev, width, 4, stride=2, padding=1)]
            enc += [ResBlock(width, dropout=c.dropout) for _ in range(c.res_blocks)]
            prev = width
        enc += [nn.SiLU(), nn.Flatten()]
        self.enc_conv = nn.Sequential(*enc)
        self.enc_fc = self._mlp(flat + emb, 2 * c.latent_dim)
        self.dec_fc = nn.Sequential(self._mlp(c.latent_dim + emb, flat), nn.SiLU())

        self._nparams = {"bernoulli": ch, "gaussian": ch, "logistic": 2 * ch}[self.likelihood]
        dec: list[nn.Module] = []
        widths = list(reversed(c.hidden))
        for i, width in enumerate(widths):
            dec += [ResBlock(width, dropout=c.dropout) for _ in range(c.res_blocks)]
            nxt = widths[i + 1] if i + 1 < len(widths) else c.hidden[0]
            dec += [nn.ConvTranspose2d(width, nxt, 4, stride=2, padding=1), nn.SiLU()]
        out = c.ar_channels if c.ar_layers else self._nparams
        dec.append(nn.Conv2d(c.hidden[0], out, 3, padding=1))
        self.dec_conv = nn.Sequential(*dec)
        if self.likelihood == "gaussian":
            # one learned log-std per channel (sigma-VAE); starts at sigma = 0.1
            self.log_sigma = nn.Parameter(torch.full((ch,), math.log(0.1)))
        if c.ar_layers:
            f = c.ar_channels
            # data_channels=1: a spatial mask only, so the channels of one pixel are
            # conditionally independent given the pixels before it (any channel count)
            self.ar_in = CausalConv2d(ch, f, c.ar_kernel, data_channels=1, mask_type="A")
            self.ar_stack = nn.ModuleList(
                [CausalConv2d(f, f, 3, data_channels=1, mask_type="B")
                 for _ in range(c.ar_layers - 1)])
            self.ar_out = nn.Sequential(nn.SiLU(), nn.Conv2d(f, f, 1), nn.SiLU(),
                                        nn.Conv2d(f, self._nparams, 1))
            # rows above a pixel that the masked stack can see (for cheap sequential sampling)
            self._ar_reach = c.ar_kernel // 2 + (c.ar_layers - 1)

    def _mlp(self, d_in: int, d_out: int) -> nn.Module:
        f = self.config.fc_dim
        if not f:
            return nn.Linear(d_in, d_out)
        return nn.Sequential(nn.Linear(d_in, f), nn.SiLU(), nn.Linear(f, d_out))

    def _label(self, y: Tensor | None, n: int) -> Tensor | None:
        if self.label_emb is None:
            return None
        return self.label_emb(y.to(self.device).long().reshape(-1)).expand(n, -1)

    def encode(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """q(z|x): [N, C, H, W] -> (mean [N, D], log-variance [N, D])."""
        h = self.enc_conv(pad_to_multiple(2 * x - 1, self._mult))
        e = self._label(y, x.shape[0])
        if e is not None:
            h = torch.cat([h, e], 1)
        mu, logvar = self.enc_fc(h).chunk(2, dim=1)
        return mu, logvar.clamp(-12.0, 8.0)  # keeps exp() finite early in training

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """z [N, D] -> decoder output [N, P, H, W]: likelihood parameters, or with an
        autoregressive head the z-features that the head fuses with x."""
        e = self._label(y, z.shape[0])
        if e is not None:
            z = torch.cat([z, e], 1)
        out = self.dec_conv(self.dec_fc(z).view(-1, *self._low))
        h, w = self.config.image_size
        return out[..., :h, :w]

    def _ar_context(self, x: Tensor) -> Tensor:
        """Masked-conv features of x [N, C, H, W] -> [N, F, H, W]; (i, j) sees x_<(i, j)."""
        h = self.ar_in(2 * x - 1)
        for layer in self.ar_stack:
            h = h + layer(F.silu(h))
        return h

    def _params(self, dec: Tensor, ctx: Tensor | None) -> Tensor:
        return dec if ctx is None else self.ar_out(dec + ctx)

    # ----- pixel likelihoods -------------------------------------------------------------
    def _log_px(self, params: Tensor, x: Tensor) -> Tensor:
        """log p(x|z) summed over pixels: params [..., P, H, W], x [..., C, H, W] -> [...].

        Leading dimensions broadcast, so k samples can share one copy of x.
        """
        if self.likelihood == "bernoulli":
            return Bernoulli(params).log_prob(x)
        if self.likelihood == "gaussian":
            ls = self.log_sigma.clamp(-7.0, 2.0).view(-1, 1, 1)
            lp = -0.5 * ((x - params) / ls.exp()) ** 2 - ls - 0.5 * _LOG2PI
            return lp.flatten(-3).sum(-1)
        mean, log_s = params.chunk(2, dim=-3)
        return DiscretizedLogistic(mean, log_s).log_prob(x)

    def _draw(self, params: Tensor, generator: torch.Generator | SampleRNG | None,
              mean: bool) -> Tensor:
        """Pixels from p(x|z): params [N, P, ...] -> [N, C, ...] in [0, 1]."""
        if self.likelihood == "bernoulli":
            bern = Bernoulli(params)
            return bern.mean if mean else bern.from_uniform(_noise(params, generator, "rand"))
        if self.likelihood == "gaussian":
            if mean:
                return params.clamp(0, 1)
            sigma = self.log_sigma.clamp(-7.0, 2.0).exp().view(1, -1, *[1] * (params.dim() - 2))
            noise = _noise(params, generator, "randn")
            return (params + sigma * noise).clamp(0, 1)
        logistic = DiscretizedLogistic(*params.chunk(2, dim=1))
        if mean:
            return logistic.mean  # on the 256 levels
        return logistic.from_uniform(_noise(logistic.loc, generator, "rand"))

    # ----- objective ---------------------------------------------------------------------
    def beta_at(self, step: int | None) -> float:
        """KL weight at training step ``step``: linear warm-up to ``beta``; the full beta
        when ``step`` is None (evaluation)."""
        c = self.config
        if step is None or c.kl_warmup_steps <= 0:
            return c.beta
        return c.beta * min(1.0, max(0, step) / c.kl_warmup_steps)

    def objective_warmup(self) -> tuple[int, str] | None:
        """The KL warm-up: before its end the loss is not yet the ELBO."""
        steps = self.config.kl_warmup_steps
        return (steps, "KL warm-up (--kl-warmup-steps)") if steps > 0 else None

    def training_loss(self, x: Tensor, y: Tensor | None, ctx: StepContext
                      ) -> dict[str, Tensor]:
        """:meth:`loss` with the KL weight of step ``ctx.step`` (the warm-up)."""
        return self.loss(x, y, step=ctx.step)

    def _check(self, x: Tensor, y: Tensor | None) -> None:
        self.check_batch(x, y)

    def loss(self, x: Tensor, y: Tensor | None = None, step: int | None = None
             ) -> dict[str, Tensor]:
        """Negative (beta-weighted) ELBO, or IWAE-k bound when ``train_k > 1``.

        Args:
            x: [N, C, H, W] images in [0, 1]. y: [N] labels (conditional models only).
            step: the training step whose KL warm-up weight applies (None: full beta).

        Returns:
            Scalars in nats per image: ``loss`` (what is minimised: recon + beta_t * KL,
            free bits applied), ``recon`` (-log p(x|z)), ``kl`` (KL(q(z|x) || p(z))),
            ``elbo`` (with beta = 1, one z sample) and ``beta`` (beta_t).
        """
        self._check(x, y)
        c, beta = self.config, self.beta_at(step)
        mu, logvar = self.encode(x, y)
        std = (0.5 * logvar).exp()
        # closed-form KL of diagonal Gaussians, per latent dimension: [N, D]
        kl_d = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar)
        k = c.train_k
        eps = torch.randn((x.shape[0], k, c.latent_dim), device=x.device)  # global RNG
        z = mu[:, None] + std[:, None] * eps
        yk = None if y is None else y.repeat_interleave(k)
        xk = x.repeat_interleave(k, 0)
        dec = self.decode(z.reshape(-1, c.latent_dim), yk)
        ctx = self._ar_context(xk) if c.ar_layers else None
        log_px = self._log_px(self._params(dec, ctx), xk).view(-1, k)  # [N, k]
        kl = kl_d.sum(1)
        if k == 1:
            kl_term = kl_d.mean(0).clamp(min=c.free_bits).sum() if c.free_bits else kl.mean()
            objective = -log_px[:, 0].mean() + beta * kl_term
        else:
            # annealed IWAE: log w = log p(x|z) + beta_t * (log p(z) - log q(z|x))
            log_ratio = (-0.5 * z.pow(2) + 0.5 * eps.pow(2) + 0.5 * logvar[:, None]).sum(2)
            log_w = log_px + beta * log_ratio
            objective = -(torch.logsumexp(log_w, 1) - math.log(k)).mean()
        recon = -log_px[:, 0]
        return {"loss": objective, "recon": recon.mean(), "kl": kl.mean(),
                "elbo": -(recon + kl).mean(), "beta": torch.tensor(float(beta), device=x.device)}

    # ----- likelihood --------------------------------------------------------------------
    @torch.no_grad()
    def log_prob(self, x: Tensor, y: Tensor | None = None, k: int | None = None,
                 generator: torch.Generator | None = None, chunk: int = 256) -> Tensor:
        """IWAE-k lower bound on log p(x) (Burda et al. 2015), nats per image.

        ``log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x)``, z_i ~ q(z|x), via logsumexp. The
        encoder (and the autoregressive head's masked stack) runs once per image; the
        decoder runs on at most ``chunk`` (image, z) pairs at a time so memory stays flat.
        Noise is drawn per image from ``generator`` (else the global RNG), so the result
        does not depend on ``chunk`` or on the batch size.

        Args:
            x: [N, C, H, W] in [0, 1]. y: [N] labels (conditional models only).
            k: importance samples (default ``config.iwae_k_eval``); k = 1 is the ELBO.
            generator: torch.Generator for the z samples. chunk: decoder batch size.

        Returns:
            [N] log-likelihood bound in nats per image (no gradients).
        """
        self._check(x, y)
        k = int(k or self.config.iwae_k_eval)
        if k < 1 or chunk < 1:
            raise UserError("log_prob needs k >= 1 and chunk >= 1", "pass positive values")
        mu, logvar = self.encode(x, y)
        ctx = self._ar_context(x) if self.config.ar_layers else None
        s = min(k, chunk)  # z samples per decoder pass
        g = max(1, chunk // s)  # images per decoder pass
        out = torch.empty(x.shape[0], device=x.device)
        for i0 in range(0, x.shape[0], g):
            sl = slice(i0, i0 + g)
            out[sl] = self._iwae_group(x[sl], None if y is None else y[sl], mu[sl], logvar[sl],
                                       None if ctx is None else ctx[sl], k, s, generator)
        return out

    def _iwae_group(self, x: Tensor, y: Tensor | None, mu: Tensor, logvar: Tensor,
                    ctx: Tensor | None, k: int, s: int,
                    generator: torch.Generator | None) -> Tensor:
        """IWAE-k for a group of g images, decoding s samples per image at a time -> [g]."""
        g, d = mu.shape
        eps = torch.stack([_noise(mu.new_empty(k, d), generator, "randn")
                           for _ in range(g)])  # per image: invariant to chunking
        std = (0.5 * logvar).exp()
        log_w = []
        for j0 in range(0, k, s):
            e = eps[:, j0:j0 + s]
            n = e.shape[1]
            z = mu[:, None] + std[:, None] * e
            # log p(z) - log q(z|x); the 2*pi terms cancel
            log_ratio = (-0.5 * z.pow(2) + 0.5 * e.pow(2) + 0.5 * logvar[:, None]).sum(2)
            dec = self.decode(z.reshape(-1, d), None if y is None else y.repeat_interleave(n))
            dec = dec.view(g, n, *dec.shape[1:])
            if ctx is not None:  # x's masked features broadcast over the n samples
                dec = self.ar_out((dec + ctx[:, None]).flatten(0, 1)).view(g, n, -1, *x.shape[2:])
            log_w.append(self._log_px(dec, x[:, None]) + log_ratio)
        return torch.logsumexp(torch.cat(log_w, 1), 1) - math.log(k)

    @torch.no_grad()
    def elbo(self, x: Tensor, y: Tensor | None = None,
             generator: torch.Generator | None = None) -> Tensor:
        """One-sample ELBO (beta = 1, analytic KL), nats per image: [N]."""
        self._check(x, y)
        mu, logvar = self.encode(x, y)
        z = mu + (0.5 * logvar).exp() * _noise(mu, generator, "randn")
        ctx = self._ar_context(x) if self.config.ar_layers else None
        log_px = self._log_px(self._params(self.decode(z, y), ctx), x)
        return log_px - 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)

    def likelihood_protocol(self, k: int | None = None, **kwargs: Any) -> dict[str, Any]:
        k = int(k or self.config.iwae_k_eval)
        return {"kind": "bound", "estimator": "ELBO" if k == 1 else f"IWAE-{k}", "k": k,
                "likelihood": self.likelihood, **kwargs}

    # ----- sampling ----------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, z: Tensor, y: Tensor | None = None,
                 generator: torch.Generator | SampleRNG | None = None,
                 mean: bool = False) -> Tensor:
        """Images from latent codes: z [N, D] -> [N, C, H, W] in [0, 1].

        Pixel noise comes from ``generator``: a :class:`SampleRNG` gives image k its own
        stream (what :meth:`sample` passes); a torch.Generator or None draws batch-wide.

        ``mean=True`` returns the pixel means (Bernoulli probabilities); with an
        autoregressive head pixels are still drawn one at a time (each conditions the next)
        and the returned image holds each pixel's mean given the drawn ones before it.
        """
        dec = self.decode(z, y)
        if not self.config.ar_layers:
            return self._draw(dec, generator, mean)
        n, (ch, hh, ww) = z.shape[0], self.config.shape
        x = torch.zeros(n, ch, hh, ww, device=z.device)
        shown = torch.zeros_like(x)
        for i in range(hh):
            r0 = max(0, i - self._ar_reach)  # the stack sees no further up: crop for speed
            for j in range(ww):
                ctx = self._ar_context(x[:, :, r0:i + 1])[:, :, -1:, j:j + 1]
                params = self.ar_out(dec[:, :, i:i + 1, j:j + 1] + ctx)
                x[:, :, i, j] = self._draw(params, generator, False)[:, :, 0, 0]
                shown[:, :, i, j] = self._draw(params, generator, True)[:, :, 0, 0] \
                    if mean else x[:, :, i, j]
        return shown

    @torch.no_grad()
    def sample(self, n: int, y: Tensor | None = None,
               generator: torch.Generator | SampleRNG | None = None,
               sampler: SamplerOptions | None = None) -> Tensor:
        """Draw ``n`` images: z ~ N(0, I), then x ~ p(x|z), image k from its own stream.

        By default the images are true model samples in the data's value range (binary for
        a Bernoulli model, 256 levels for the logistic one) -- what the likelihood scores.
        ``VAESampler(decoder="mean")`` shows the decoder means instead (smoother digits).

        Args:
            n: number of images. y: one label or [n] labels; a conditional model given none
                cycles through the classes.
            generator: None, a torch.Generator (n seeds drawn from it) or a per-sample
                :class:`SampleRNG`; image k's latent and pixel noise use only stream k.
            sampler: :class:`VAESampler` options (None = sampled pixels).

        Returns:
            [n, C, H, W] in [0, 1].
        """
        opts = resolve_sampler(self, sampler)
        y = self._labels_for(n, y)
        rng = as_sample_rng(generator, n)
        z = rng.randn(self.config.latent_dim, device=self.device)
        return self.generate(z, y, rng, opts.decoder == "mean")

    @torch.no_grad()
    def figures(self, x: Tensor, y: Tensor | None = None,
                generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Report grids, each [M, C, H, W] in [0, 1].

        ``reconstructions``: up to 8 inputs each followed by its reconstruction (decoder
        means at the posterior mean). ``interpolations``: up to 4 rows of 8 images decoded
        along the straight line between the posterior means of two inputs.
        """
        self._check(x, y)
        x, y = x[:8], None if y is None else y[:8]
        mu, _ = self.encode(x, y)
        rec = self.generate(mu, y, generator, mean=True)
        pairs = torch.stack([x, rec], 1).flatten(0, 1)
        figs = {"reconstructions": pairs}
        m = x.shape[0] // 2
        if m:
            t = torch.linspace(0, 1, 8, device=x.device).view(1, 8, 1)
            z = (mu[:m, None] * (1 - t) + mu[m:2 * m, None] * t).flatten(0, 1)
            yi = None if y is None else y[:m].repeat_interleave(8)
            figs["interpolations"] = self.generate(z, yi, generator, mean=True)
        return figs


def _noise(like: Tensor, generator: torch.Generator | SampleRNG | None,
           kind: Literal["rand", "randn"]) -> Tensor:
    """Uniform / normal noise shaped like ``like``, drawn on the generator's device.

    Drawing where the generator lives (then moving) lets a CPU generator seed a CUDA
    model, so a seed gives the same images on any device. A :class:`SampleRNG` draws
    row k of ``like`` [n, ...] from its generator k (per-sample seeds).
    """
    if isinstance(generator, SampleRNG):
        draw = generator.rand if kind == "rand" else generator.randn
        return draw(*like.shape[1:], dtype=like.dtype, device=like.device)
    fn = torch.rand if kind == "rand" else torch.randn
    dev = generator.device if generator is not None else like.device
    return fn(like.shape, generator=generator, device=dev, dtype=like.dtype).to(like.device)

