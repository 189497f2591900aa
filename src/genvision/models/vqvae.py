"""VQ-VAE with a Gated PixelCNN prior over its code map, trained in two stages in one run.

van den Oord et al. 2017, "Neural Discrete Representation Learning",
https://arxiv.org/abs/1711.00937. A conv encoder maps an image to a map of D-dim vectors
z_e [h, w]; each is replaced by its nearest code of a K-vector codebook
(:mod:`genvision.nn.vector_quantizer`: EMA updates, Laplace smoothing, dead-code
restarts, the straight-through estimator, the commitment loss); a conv decoder gives
p(x|z) with the data kind's pixel likelihood (Bernoulli for binary data, the discretised
logistic of the VAE for 8-bit data). Then an autoregressive prior p(z) over the code map:
the existing Gated PixelCNN (van den Oord et al. 2016, https://arxiv.org/abs/1606.05328)
with a K-way categorical head, reading the codes through a learned embedding (code
indices are unordered, so the pixel models' ``2x - 1`` input would mean nothing),
class-conditional when the run is.

**Likelihood.** The encoder's code z*(x) is deterministic: a posterior q(z|x) that puts
all its mass on z* has entropy 0, so the ELBO is ``log p(x|z*) + log p(z*)`` and

    -log p(x) = -log sum_z p(z) p(x|z) <= -log p(x|z*) - log p(z*)   (nats per image),

true for any z* since every term of the sum is non-negative. ``log_prob`` returns this
bound (``likelihood_kind = "bound"``); :meth:`VQVAE.rate_distortion` gives its two terms,
the *distortion* -log p(x|z*) and the *rate* -log p(z*) (what the prior pays for the code),
and :meth:`loss` reports both (so validation logs them).

**Two stages, one run directory.** The model declares two optimisation phases with step
ranges (:class:`~genvision.models.protocol.Phase` ``steps``): ``autoencoder`` for steps
[0, ae_steps) (reconstruction + beta * commitment; the codebook follows by EMA), then
``prior`` from ``ae_steps`` on (the prior's exact NLL of the codes of the frozen encoder).
This is simpler than the task stage mechanism (:mod:`genvision.apps.common.staged`,
separate sub-runs with their own model classes, made for an image-to-image base model and
a GAN started from it): here both stages are one model, one checkpoint, one
``genvision train vqvae`` call, and ``--resume`` continues whichever stage the step is
in, with each stage's optimiser state and loss range kept apart by its phase name.
A budget that ends before ``ae_steps`` leaves the prior untrained (the bound is still
valid, just loose).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..distributions import Bernoulli, DiscretizedLogistic
from ..errors import UserError
from ..nn.blocks import ResBlock, pad_to_multiple
from ..nn.vector_quantizer import Quantized, VectorQuantizer, codebook_usage
from .base import GenerativeModel, register
from .gated_pixelcnn import GatedLayer, GatedPixelCNN, GatedPixelCNNConfig
from .pixel_heads import CategoricalHead
from .protocol import OptimizerSpec, Phase, StepContext
from .sampling import SampleRNG, SamplerOptions, as_sample_rng, resolve_sampler
from .vae import VAESampler
from .vqvae_config import LIKELIHOOD_DATA_KINDS, VQVAEConfig

__all__ = ["CodePrior", "VQVAE", "VQVAEConfig", "VQVAESampler"]

_AUTO_LIKELIHOOD = {"binary": "bernoulli", "grey8": "logistic", "rgb8": "logistic"}


class CodeHead(CategoricalHead):
    """K-way categorical head over code indices whose network input is a learned
    embedding of each code: values k/(K-1) [N, 1, ...] -> [N, E, ...]."""

    def __init__(self, codes: int, dim: int):
        super().__init__(codes)
        self.embed = nn.Embedding(codes, dim)

    def network_input(self, x: Tensor) -> Tensor:
        k = torch.round(x[:, 0] * (self.levels - 1)).long().clamp(0, self.levels - 1)
        return self.embed(k).movedim(-1, 1)


class CodePrior(GatedPixelCNN):
    """The Gated PixelCNN over a one-channel map of K codes, stored as k / (K-1).

    Its exact likelihood, sampler (row-cached) and completion are the Gated PixelCNN's;
    only the first layer reads an E-dim code embedding instead of the raw value. Not
    registered: it lives inside a :class:`VQVAE`.
    """

    def __init__(self, config: GatedPixelCNNConfig, embed_dim: int):
        super().__init__(config)
        c = config
        with torch.random.fork_rng(devices=[]):  # init from config.seed, global RNG untouched
            torch.manual_seed(c.seed + 1)
            self.head = CodeHead(c.levels, embed_dim)
            self.layers[0] = GatedLayer(embed_dim, self.p, c.input_kernel, 1, True,
                                        c.num_classes, c.vertical_residual, 1)

    def to_values(self, codes: Tensor) -> Tensor:
        """Code indices [N, h, w] -> the prior's images [N, 1, h, w] in [0, 1]."""
        return codes[:, None].float() / (self.config.levels - 1)

    def to_codes(self, values: Tensor) -> Tensor:
        """Inverse of :meth:`to_values`."""
        return torch.round(values[:, 0] * (self.config.levels - 1)).long()


#: the VAE's ancestral sampler: a code map z ~ p(z) (the prior, value by value), then
#: x ~ p(x|z), with the same ``decoder`` option (``sample`` or ``mean``)
VQVAESampler = VAESampler


@register("vqvae")
class VQVAE(GenerativeModel):
    """VQ-VAE + Gated PixelCNN prior; see the module docstring.

    Images [N, C, H, W] are zero-padded to a multiple of ``2**len(hidden)``, encoded by
    stride-2 conv stages to z_e [N, D, h, w], quantised, decoded by the mirrored
    transposed convs and cropped back to H x W.
    """

    config_class = VQVAEConfig
    family = "explicit latent variable"
    likelihood_kind = "bound"
    supported_data_kinds = ("binary", "grey8", "rgb8")
    samplers: ClassVar[dict[str, type[SamplerOptions]]] = {"ancestral": VQVAESampler}
    #: no weight EMA: the codebook has its own, the prior starts training mid-run (an
    #: average would still hold its initialisation) and an averaged encoder would not
    #: match the live codebook it was trained with. lr 1e-3 with clipping: at 2e-3 the
    #: Bernoulli distortion spiked by an order of magnitude early in a short MNIST-5k run
    train_defaults: ClassVar[dict[str, Any]] = {"ema_decay": 0.0, "lr": 1e-3,
                                                "grad_clip": 1.0}

    def __init__(self, config: VQVAEConfig):
        super().__init__(config)
        c = config
        if c.data_kind not in self.supported_data_kinds:
            raise UserError(f"vqvae models binary or 8-bit images, not {c.data_kind!r} data",
                            "train it on binary (--binarize) or 8-bit data")
        self.likelihood = _AUTO_LIKELIHOOD[c.data_kind] if c.likelihood == "auto" \
            else c.likelihood
        if c.data_kind not in LIKELIHOOD_DATA_KINDS[self.likelihood]:
            raise UserError(f"likelihood {self.likelihood!r} does not fit {c.data_kind!r} data",
                            "use --likelihood auto")
        with torch.random.fork_rng(devices=[]):  # init from config.seed, global RNG untouched
            torch.manual_seed(c.seed)
            self._build()
        h, w = c.code_shape
        self.prior = CodePrior(GatedPixelCNNConfig(
            channels=1, image_size=(h, w), num_classes=c.num_classes, data_kind="grey8",
            seed=c.seed, head="categorical", levels=c.codebook_size, hidden=c.prior_hidden,
            layers=c.prior_layers, kernel=c.prior_kernel, input_kernel=c.prior_input_kernel,
            out_hidden=c.prior_out_hidden, dilation=c.prior_dilation), c.prior_embedding)

    @classmethod
    def input_kind(cls, overrides: dict[str, Any]) -> str:
        """8-bit levels for ``--likelihood logistic``, else binary (MNIST-5k protocol)."""
        return "grey8" if overrides.get("likelihood") == "logistic" else "binary"

    def _build(self) -> None:
        c = self.config
        ch = c.channels
        self._mult = 2 ** len(c.hidden)
        enc: list[nn.Module] = [nn.Conv2d(ch, c.hidden[0], 3, padding=1)]
        prev = c.hidden[0]
        for width in c.hidden:
            enc += [nn.SiLU(), nn.Conv2d(prev, width, 4, stride=2, padding=1)]
            prev = width
        enc += [ResBlock(prev) for _ in range(c.res_blocks)]
        enc += [nn.SiLU(), nn.Conv2d(prev, c.embedding_dim, 1)]
        self.encoder = nn.Sequential(*enc)
        self.quantizer = VectorQuantizer(c.codebook_size, c.embedding_dim, c.codebook_decay,
                                         c.codebook_eps, c.restart_threshold)
        widths = list(reversed(c.hidden))
        dec: list[nn.Module] = [nn.Conv2d(c.embedding_dim, widths[0], 3, padding=1)]
        dec += [ResBlock(widths[0]) for _ in range(c.res_blocks)]
        for i, width in enumerate(widths):
            nxt = widths[i + 1] if i + 1 < len(widths) else c.hidden[0]
            dec += [nn.SiLU(), nn.ConvTranspose2d(width, nxt, 4, stride=2, padding=1)]
        per_channel = 1 if self.likelihood == "bernoulli" else 2
        dec += [nn.SiLU(), nn.Conv2d(c.hidden[0], per_channel * ch, 3, padding=1)]
        self.decoder = nn.Sequential(*dec)

    def autoencoder_parameters(self) -> list[nn.Parameter]:
        """What stage 1 trains (the codebook is a buffer, updated by EMA)."""
        return [*self.encoder.parameters(), *self.decoder.parameters()]

    # ----- the autoencoder -------------------------------------------------------------
    def encode_codes(self, x: Tensor) -> Quantized:
        """Images [N, C, H, W] in [0, 1] -> the quantised code map (see :class:`Quantized`)."""
        return self.quantizer(self.encoder(pad_to_multiple(2 * x - 1, self._mult)))

    def decode(self, z_q: Tensor) -> Tensor:
        """Code vectors [N, D, h, w] -> likelihood parameters [N, P*C, H, W]."""
        h, w = self.config.image_size
        return self.decoder(z_q)[..., :h, :w]

    def _log_px(self, params: Tensor, x: Tensor) -> Tensor:
        """log p(x|z) in nats per image, [N]."""
        if self.likelihood == "bernoulli":
            return Bernoulli(params).log_prob(x)
        return DiscretizedLogistic(*params.chunk(2, dim=1)).log_prob(x)

    def _draw(self, params: Tensor, rng: SampleRNG | None, mean: bool) -> Tensor:
        """Pixels from p(x|z): params [N, P*C, H, W] -> [N, C, H, W]; image k's noise
        from stream k of ``rng`` (unused for the means)."""
        dist = (Bernoulli(params) if self.likelihood == "bernoulli"
                else DiscretizedLogistic(*params.chunk(2, dim=1)))
        if mean:
            return dist.mean
        rng = as_sample_rng(rng, params.shape[0])
        u = rng.rand(*self.config.shape, dtype=params.dtype, device=params.device)
        return dist.from_uniform(u)

    def _check(self, x: Tensor, y: Tensor | None) -> None:
        self.check_batch(x, y)

    def _labels(self, y: Tensor | None) -> Tensor | None:
        return None if y is None or not self.config.num_classes else y.reshape(-1).long()

    # ----- objectives --------------------------------------------------------------------
    def autoencoder_loss(self, x: Tensor, update: bool = False) -> dict[str, Tensor]:
        """Stage 1 on a batch x [N, C, H, W]: ``loss`` = distortion + beta * commitment
        (nats per image; the commitment is the squared distance summed over the code
        map, as in the paper's ||z_e - sg(e)||^2), its terms, and the batch's codebook
        ``perplexity`` and ``codes_used``. ``update``: take the codebook's EMA step and
        dead-code restarts on this batch (the training phase only)."""
        q = self.encode_codes(x)
        distortion = -self._log_px(self.decode(q.z_q), x).mean()
        commitment = q.commitment.mean()
        perplexity, used = codebook_usage(q.codes, self.config.codebook_size)
        out = {"loss": distortion + self.config.commitment * commitment,
               "distortion": distortion.detach(), "commitment": commitment.detach(),
               "perplexity": perplexity, "codes_used": used}
        if update:
            out["codes_restarted"] = torch.tensor(float(self.quantizer.update(q)))
        return out

    def prior_loss(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        """Stage 2 on a batch: the prior's exact NLL of the encoder's codes (the rate,
        nats per image); the encoder runs without gradients."""
        with torch.no_grad():
            codes = self.encode_codes(x).codes
        rate = -self.prior.log_prob(self.prior.to_values(codes), self._labels(y)).mean()
        return {"loss": rate, "rate": rate.detach()}

    def loss(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        """Evaluation terms (validation calls it): ``loss`` = the bound -log p(x|z*) -
        log p(z*) in nats per image, ``distortion``, ``rate``, ``commitment``,
        ``perplexity`` and ``codes_used``. Changes no buffer."""
        self._check(x, y)
        ae = self.autoencoder_loss(x)
        rate = self.prior_loss(x, y)["rate"]
        return {**ae, "loss": ae["distortion"] + rate, "rate": rate}

    def phases(self, train: Any) -> list[Phase]:
        """Stage 1 ``autoencoder`` at steps [0, ae_steps), stage 2 ``prior`` after it."""
        spec = OptimizerSpec("adamw", train.lr, (train.beta1, train.beta2), train.weight_decay)
        split = self.config.ae_steps

        def stage1(x: Tensor, y: Tensor | None, ctx: StepContext
                   ) -> tuple[Tensor, dict[str, Tensor]]:
            self._check(x, y)
            out = self.autoencoder_loss(x, update=True)
            return out["loss"], out

        def stage2(x: Tensor, y: Tensor | None, ctx: StepContext
                   ) -> tuple[Tensor, dict[str, Tensor]]:
            self._check(x, y)
            out = self.prior_loss(x, y)
            return out["loss"], out

        return [Phase("autoencoder", self.autoencoder_parameters(), spec, stage1,
                      steps=(0, split), frozen=[self.prior]),
                Phase("prior", list(self.prior.parameters()), spec, stage2,
                      steps=(split, None), frozen=[self.encoder, self.decoder])]

    # ----- likelihood --------------------------------------------------------------------
    @torch.no_grad()
    def rate_distortion(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The bound's two terms for images x [N, C, H, W]: (distortion -log p(x|z*),
        rate -log p(z*)), each [N] in nats per image, z* the encoder's code map."""
        self._check(x, y)
        q = self.encode_codes(x)
        distortion = -self._log_px(self.decode(q.z_q), x)
        rate = -self.prior.log_prob(self.prior.to_values(q.codes), self._labels(y))
        return distortion, rate

    @torch.no_grad()
    def log_prob(self, x: Tensor, y: Tensor | None = None, **options: Any) -> Tensor:
        """Lower bound log p(x|z*) + log p(z*) <= log p(x), nats per image [N]."""
        distortion, rate = self.rate_distortion(x, y)
        return -(distortion + rate)

    def likelihood_terms(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        """``distortion`` and ``rate`` [N] (nats per image; their sum is -log_prob), which
        ``genvision evaluate`` reports beside the bound."""
        distortion, rate = self.rate_distortion(x, y)
        return {"distortion": distortion, "rate": rate}

    def likelihood_protocol(self, **kwargs: Any) -> dict[str, Any]:
        c = self.config
        return {"kind": "bound",
                "estimator": "ELBO of the encoder's code z*: log p(x|z*) + log p(z*) "
                             "(q(z|x) a point mass, entropy 0)",
                "terms": "distortion -log p(x|z*) + rate -log p(z*) (Gated PixelCNN prior)",
                "likelihood": self.likelihood, "codebook_size": c.codebook_size,
                "code_map": list(c.code_shape), **kwargs}

    # ----- sampling ----------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, codes: Tensor, rng: SampleRNG | None = None, mean: bool = False
                 ) -> Tensor:
        """Images [N, C, H, W] in [0, 1] from code maps [N, h, w]: pixels drawn from
        p(x|z) with ``rng`` (per-sample streams; None: seeds from the global RNG), or the
        decoder's means."""
        return self._draw(self.decode(self.quantizer.lookup(codes)), rng, mean)

    @torch.no_grad()
    def sample(self, n: int, y: Tensor | None = None,
               generator: torch.Generator | SampleRNG | None = None,
               sampler: SamplerOptions | None = None) -> Tensor:
        """Draw ``n`` images: a code map from the prior (row-cached Gated PixelCNN
        sampler), then pixels from p(x|z); image k uses only its own stream.

        Args:
            n: number of images. y: one label or [n] labels; a conditional model given
                none cycles through the classes.
            generator: None, a torch.Generator (n seeds drawn from it) or a
                :class:`SampleRNG`.
            sampler: :class:`VQVAESampler` options (None = sampled pixels).

        Returns:
            [n, C, H, W] in [0, 1] (binary or on the 256 levels, as the data).
        """
        opts = resolve_sampler(self, sampler)
        y = self._labels_for(n, y)
        rng = as_sample_rng(generator, n)
        codes = self.prior.to_codes(self.prior.sample(n, y, rng))
        return self.generate(codes, rng, opts.decoder == "mean")

    @torch.no_grad()
    def figures(self, x: Tensor, y: Tensor | None = None,
                generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """``reconstructions``: up to 8 inputs each followed by the decoder means at its
        code map, [M, C, H, W] in [0, 1]."""
        x = x[:8]
        self._check(x, None)
        rec = self.generate(self.encode_codes(x).codes, mean=True)
        return {"reconstructions": torch.stack([x, rec], 1).flatten(0, 1)}
