"""Interpolation between two samples of a latent model: decode points on the path between
the latents that seeds A and B draw, so that (VAE with decoder means, GAN, flow) the two
ends are the images ``sample`` draws for those seeds with the same sampler options.

Which models qualify, and how (each adapter draws its latent exactly as the model's
``sample`` does, then decodes with the same network):

* VAE (Kingma & Welling 2013, https://arxiv.org/abs/1312.6114): z ~ N(0, I), spherical
  interpolation, decoder means or sampled pixels as the sampler's ``decoder`` says (every
  frame draws its pixel noise from seed A's stream, so frames differ only by z, and with
  sampled pixels only the left end is seed A's sample).
* GANs: z ~ N(0, I) (truncated as the sampler says), spherical interpolation (White 2016,
  https://arxiv.org/abs/1609.04468), G_ema or G as the sampler's ``ema`` says.
* Flows (RealNVP / Glow): the latents at the sampler's temperature, linear interpolation
  (the prior is a Gaussian whose mean may depend on the label), decoded by f^-1.
* Diffusion (DDPM, flow matching): the initial noise, spherical interpolation, then a
  deterministic sampler (DDIM with eta 0, Heun or Euler; a stochastic one is replaced by
  DDIM eta 0 with the same steps), decoded at the most likely level (so the ends are the
  deterministic sampler's images, not pixel draws) (Song et al. 2020,
  https://arxiv.org/abs/2010.02502, section 5.3 interpolates DDIM latents this way).

GANs and diffusion models keep the steps of ``sample`` in private methods (``_run``,
``_sample_g_input``, ``_sample_labels``); this module calls them so that the two ends of a
path match ``sample`` exactly, rather than re-implementing them.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import UserError
from ..models.base import GenerativeModel
from ..models.diffusion import DDPM
from ..models.diffusion_config import DDIMSampler
from ..models.flow import Flow
from ..models.gan import GAN
from ..models.sampling import SampleRNG, SamplerOptions, resolve_sampler
from ..models.vae import VAE

#: model classes whose samples interpolate, in the order :func:`latent_kind` tests them
LATENT_CLASSES: dict[str, type[GenerativeModel]] = {"vae": VAE, "gan": GAN, "flow": Flow,
                                                     "diffusion": DDPM}


def latent_kind(model: GenerativeModel) -> str | None:
    """``vae``, ``gan``, ``flow`` or ``diffusion`` when ``model`` interpolates, else None."""
    return next((k for k, cls in LATENT_CLASSES.items() if isinstance(model, cls)), None)


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation of a [D] and b [D] at t [T] -> [T, D] (linear when the two
    are nearly parallel, where the sphere's formula divides by ~0)."""
    a, b, t = a.reshape(-1), b.reshape(-1), t.reshape(-1, 1)
    cos = torch.dot(a, b) / (a.norm() * b.norm()).clamp_min(1e-12)
    omega = torch.acos(cos.clamp(-1.0, 1.0))
    if float(omega.sin().abs()) < 1e-4:
        return a * (1 - t) + b * t
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / omega.sin()


def interpolate(model: GenerativeModel, seed_a: int, seed_b: int, frames: int,
                label: int | None, sampler: SamplerOptions | None = None
                ) -> tuple[Tensor, str | None]:
    """``frames`` images [frames, C, H, W] in [0, 1] on the path from seed A's sample to
    seed B's, and a note for the page (None, or what was changed).

    Raises:
        UserError: the model has no latent to interpolate.
    """
    kind = latent_kind(model)
    if kind is None:
        raise UserError(f"{model.name} has no latent space to interpolate in",
                        "interpolate with a vae, a GAN, a flow or a diffusion model")
    opts = resolve_sampler(model, sampler)
    t = torch.linspace(0, 1, frames)
    y = None if label is None else torch.tensor([label], device=model.device)
    with torch.no_grad():
        return _ADAPTERS[kind](model, seed_a, seed_b, t, y, opts)


def _frames_rng(seed: int, frames: int) -> SampleRNG:
    """One stream per frame, all seeded alike: the noise a frame draws besides its latent
    is the same in every frame."""
    return SampleRNG([seed] * frames)


def _continued(rng: SampleRNG, frames: int) -> SampleRNG:
    """``frames`` copies of the one stream of ``rng`` in its current state: every frame
    goes on drawing exactly as ``sample`` goes on after the latent."""
    state = rng.generators[0].get_state()
    gens = []
    for _ in range(frames):
        g = torch.Generator()
        g.set_state(state)
        gens.append(g)
    return SampleRNG(rng.seeds * frames, _generators=gens)


def _expand(y: Tensor | None, frames: int) -> Tensor | None:
    return None if y is None else y.reshape(-1)[:1].expand(frames)


def _vae(model: VAE, a: int, b: int, t: Tensor, y: Tensor | None, opts: SamplerOptions
         ) -> tuple[Tensor, str | None]:
    y = model._labels_for(1, y)  # a conditional model given no label: class 0
    rng_a, rng_b = SampleRNG([a]), SampleRNG([b])
    d = model.config.latent_dim
    z_a, z_b = rng_a.randn(d)[0], rng_b.randn(d)[0]  # what sample() draws first
    path = slerp(z_a, z_b, t).to(model.device)
    x = model.generate(path, _expand(y, len(t)), _continued(rng_a, len(t)),
                       opts.decoder == "mean")
    return x, None


def _gan(model: GAN, a: int, b: int, t: Tensor, y: Tensor | None, opts: SamplerOptions
         ) -> tuple[Tensor, str | None]:
    y = model._labels_for(1, y)
    rng_a, rng_b = SampleRNG([a]), SampleRNG([b])
    z_a = model.latents(1, rng_a, opts.truncation)
    z_b = model.latents(1, rng_b, opts.truncation)
    g_in = model._sample_g_input(1, y, rng_a)  # seed A's label, code or cluster
    path = slerp(z_a[0].cpu(), z_b[0].cpu(), t).to(model.device)
    net = model.G_ema if opts.ema else model.G
    return model._run(net, path, _expand(g_in, len(t))), None


def _flow(model: Flow, a: int, b: int, t: Tensor, y: Tensor | None, opts: SamplerOptions
          ) -> tuple[Tensor, str | None]:
    y = model._labels_for(1, y)
    z_a = model.sample_latents(1, y, SampleRNG([a]), opts.temperature)[0]
    z_b = model.sample_latents(1, y, SampleRNG([b]), opts.temperature)[0]
    tt = t.to(z_a.device, z_a.dtype).view(-1, 1)
    return model.decode(z_a * (1 - tt) + z_b * tt), None


def _diffusion(model: DDPM, a: int, b: int, t: Tensor, y: Tensor | None,
               opts: SamplerOptions) -> tuple[Tensor, str | None]:
    note = None
    if opts.name == "ddpm" or getattr(opts, "eta", 0.0) > 0:
        note = (f"the {opts.name} sampler draws fresh noise at every step, so its path would "
                f"not be smooth: interpolated with DDIM (eta 0, {opts.steps} steps)")
        opts = DDIMSampler(steps=opts.steps, guidance=opts.guidance, clip=opts.clip)
    shape = model.config.shape
    ends, labels = [], []
    for seed in (a, b):  # sample() draws the label (or cluster) first, then the noise
        rng = SampleRNG([seed], model.device)
        labels.append(model._sample_labels(1, y, rng))
        ends.append(rng.randn(*shape).cpu())
    y_a = labels[0]  # every frame takes seed A's label or cluster
    path = slerp(ends[0], ends[1], t).reshape(len(t), *shape).to(model.device)
    rng = _frames_rng(a, len(t)).to(model.device)
    z = model._run(opts, path, _expand(y_a, len(t)), rng)
    return model.decode(z, None, mean=True), note


_ADAPTERS = {"vae": _vae, "gan": _gan, "flow": _flow, "diffusion": _diffusion}
