"""Samplers as first-class pieces: per-sample random streams and sampler options.

**Per-sample seeds.** :class:`SampleRNG` holds one ``torch.Generator`` per sample, seeded
from a list of integers, the way NVlabs/edm's ``StackedRandomGenerator`` does
(Karras et al. 2022, https://arxiv.org/abs/2206.00364, ``generate.py``): row k of every
draw uses generator k alone, so sample k depends only on its seed and on k, never on the
batch it is drawn in. Every model's ``sample`` turns its ``generator`` argument into one
with :func:`as_sample_rng`.

Cost: a draw is one small ``torch.rand``/``torch.randn`` call *per sample* (all of that
sample's values at once), so an autoregressive sampler that draws per value pays about
2 microseconds per image per value on the CPU -- e.g. ~0.2 s for 100 binary 28x28 images,
small next to the network passes it interleaves with. Generators live on the CPU and the
values are moved to the requested device, so a seed gives the same images on any device.

**Sampler options.** A model class declares ``samplers: dict[name, SamplerOptions
subclass]`` (the first is the default); :func:`make_sampler` builds an instance from the
CLI's ``--sampler NAME --sampler-opt key=value`` strings and :func:`sampler_protocol`
records it next to every result.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Sequence
from typing import Any, ClassVar, Literal, Union

import torch
from torch import Tensor

from ..errors import UserError

#: the most images one ``genvision sample`` call draws: the samples are held in memory
#: (100,000 RGB 64x64 images are 5 GB of float32); more is a typo or needs several calls
MAX_SAMPLES = 100_000

__all__ = ["SampleRNG", "as_sample_rng", "SamplerOptions", "AncestralSampler",
           "make_sampler", "resolve_sampler", "sampler_protocol", "SEED_SCHEME"]

#: how evaluation seeds its samples, recorded in every result's protocol
SEED_SCHEME = "per-sample: sample i of the evaluation set uses seed base_seed + i"

_SEED_HIGH = 2 ** 62  # seeds drawn from a generator: any non-negative 63-bit value


class SampleRNG:
    """One ``torch.Generator`` per sample; draws return [n, *shape] tensors, row k from
    generator k alone.

    Args:
        seeds: one integer seed per sample (n = ``len(seeds)``).
        device: where drawn values are returned (the generators themselves stay on the
            CPU so a seed means the same numbers on every device).
    """

    def __init__(self, seeds: Sequence[int], device: str | torch.device = "cpu",
                 *, _generators: list[torch.Generator] | None = None):
        self.device = torch.device(device)
        if _generators is not None:
            self.generators = _generators
            self.seeds: list[int] = list(seeds)
            return
        self.seeds = [int(s) for s in seeds]
        self.generators = [torch.Generator().manual_seed(s) for s in self.seeds]

    def __len__(self) -> int:
        return len(self.generators)

    def __getitem__(self, rows: Tensor | Sequence[int] | slice) -> SampleRNG:
        """The streams of a subset of rows; they share state with this one (a draw from
        the subset advances the same generators)."""
        if isinstance(rows, slice):
            idx = list(range(len(self)))[rows]
        else:
            idx = [int(i) for i in torch.as_tensor(rows).reshape(-1).tolist()]
        return SampleRNG([self.seeds[i] for i in idx], self.device,
                         _generators=[self.generators[i] for i in idx])

    def to(self, device: str | torch.device) -> SampleRNG:
        """The same streams, returning values on ``device``."""
        return SampleRNG(self.seeds, device, _generators=self.generators)

    # ----- draws ---------------------------------------------------------------------------
    def _draw(self, fn: Any, shape: tuple[int, ...], dtype: torch.dtype | None,
              device: str | torch.device | None) -> Tensor:
        dtype = dtype or torch.get_default_dtype()
        out = torch.stack([fn(shape, generator=g, dtype=dtype) for g in self.generators]) \
            if self.generators else torch.empty(0, *shape, dtype=dtype)
        return out.to(device if device is not None else self.device)

    def rand(self, *shape: int, dtype: torch.dtype | None = None,
             device: str | torch.device | None = None) -> Tensor:
        """Uniform [0, 1) values, [n, *shape]."""
        return self._draw(torch.rand, shape, dtype, device)

    def randn(self, *shape: int, dtype: torch.dtype | None = None,
              device: str | torch.device | None = None) -> Tensor:
        """Standard normal values, [n, *shape]."""
        return self._draw(torch.randn, shape, dtype, device)

    def randint(self, high: int, *shape: int,
                device: str | torch.device | None = None) -> Tensor:
        """Uniform integers in [0, high), [n, *shape] int64."""
        out = torch.stack([torch.randint(high, shape, generator=g) for g in self.generators]) \
            if self.generators else torch.empty(0, *shape, dtype=torch.long)
        return out.to(device if device is not None else self.device)

    def bernoulli(self, p: Tensor) -> Tensor:
        """x ~ Bernoulli(p) elementwise: p [n, ...] -> {0, 1} in p's dtype and device."""
        return (self.rand(*p.shape[1:], dtype=p.dtype, device=p.device) < p).to(p.dtype)

    def categorical(self, probs: Tensor | None = None, logits: Tensor | None = None) -> Tensor:
        """One class per row by inverse CDF (one uniform each): [n, K] -> [n] int64.

        ``probs`` may be a single [K] vector shared by every row.
        """
        if (probs is None) == (logits is None):
            raise ValueError("pass exactly one of probs and logits")
        p = torch.softmax(logits.double(), -1) if logits is not None else probs.double()
        p = p / p.sum(-1, keepdim=True)
        p = p.expand(len(self), -1) if p.dim() == 1 else p
        u = self.rand(1, dtype=torch.float64, device=p.device)
        return (p.cumsum(-1) < u).sum(-1).clamp_(max=p.shape[-1] - 1)

    def truncated_randn(self, *shape: int, bound: float,
                        device: str | torch.device | None = None) -> Tensor:
        """Standard normal values with every |value| > ``bound`` redrawn (bound > 0),
        [n, *shape]; each row redraws from its own generator."""
        rows = []
        for g in self.generators:
            z = torch.randn(shape, generator=g)
            while (bad := z.abs() > bound).any():
                z[bad] = torch.randn(int(bad.sum()), generator=g)
            rows.append(z)
        out = torch.stack(rows) if rows else torch.empty(0, *shape)
        return out.to(device if device is not None else self.device)


def as_sample_rng(generator: torch.Generator | SampleRNG | None, n: int,
                  device: str | torch.device = "cpu") -> SampleRNG:
    """Per-sample streams for ``n`` samples from what a ``sample`` call was given.

    Args:
        generator: None (seeds drawn from torch's global RNG), a ``torch.Generator`` (n
            seeds drawn from it, so old callers stay deterministic), or a
            :class:`SampleRNG`, which must have ``n`` rows.
        n: number of samples. device: where drawn values are returned.
    """
    if isinstance(generator, SampleRNG):
        if len(generator) != n:
            raise UserError(f"a SampleRNG with {len(generator)} seeds was given for {n} samples",
                            "pass one seed per sample")
        return generator.to(device)
    dev = generator.device if generator is not None else "cpu"
    seeds = torch.randint(_SEED_HIGH, (n,), generator=generator, device=dev).tolist()
    return SampleRNG(seeds, device)


# ----- sampler options ---------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class SamplerOptions:
    """Base of every sampler's options: a dataclass whose fields are the options.

    Subclasses set ``name`` and may override :meth:`resolve` to fill defaults that come
    from the model (e.g. a GAN's configured truncation).
    """

    name: ClassVar[str] = "?"

    def resolve(self, model: Any) -> SamplerOptions:
        """These options with every model-dependent default filled in."""
        return self


@dataclasses.dataclass(frozen=True)
class AncestralSampler(SamplerOptions):
    """Draw each variable from its model conditional in order; no options."""

    name: ClassVar[str] = "ancestral"


def _samplers_of(model: Any) -> dict[str, type[SamplerOptions]]:
    samplers = getattr(model, "samplers", None) or {"ancestral": AncestralSampler}
    return dict(samplers)


def resolve_sampler(model: Any, sampler: SamplerOptions | None) -> SamplerOptions:
    """``sampler`` (None = the model's default sampler) with model defaults filled in.

    Raises:
        UserError: options of a sampler the model does not have.
    """
    samplers = _samplers_of(model)
    if sampler is None:
        sampler = next(iter(samplers.values()))()
    if not isinstance(sampler, tuple(samplers.values())):
        raise UserError(f"{getattr(model, 'name', model)} has no sampler "
                        f"{type(sampler).__name__}", f"use one of: {', '.join(samplers)}")
    return sampler.resolve(model)


def _parse(key: str, text: str, tp: Any, sampler: str) -> Any:
    """One option value from its string, by the field's type (bool/int/float/str/Literal,
    optionally ``| None``)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType) and type(None) in args:
        if text.lower() == "none":
            return None
        tp = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(tp), typing.get_args(tp)
    bad = UserError(f"sampler {sampler!r} option {key}={text!r} is not a valid "
                    f"{getattr(tp, '__name__', None) or ' | '.join(map(repr, args))}",
                    f"pass --sampler-opt {key}=VALUE with a value of that type")
    if origin is Literal:
        if text not in [str(a) for a in args]:
            raise UserError(f"sampler {sampler!r} option {key}={text!r} is not one of "
                            f"{', '.join(map(str, args))}",
                            f"pass --sampler-opt {key}={args[0]}")
        return next(a for a in args if str(a) == text)
    if tp is bool:
        low = text.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise bad
    try:
        return tp(text)
    except (TypeError, ValueError):
        raise bad from None


def make_sampler(model: Any, name: str | None = None,
                 opts: Sequence[str] = ()) -> SamplerOptions:
    """Sampler options from CLI strings: ``name`` (None = the model's default sampler) and
    ``opts`` like ``["truncation=0.7", "ema=false"]``, typed by the dataclass fields.

    Args:
        model: a model instance or class (anything with a ``samplers`` mapping).

    Raises:
        UserError: an unknown sampler, an unknown key, a malformed or ill-typed value.
    """
    samplers = _samplers_of(model)
    what = getattr(model, "name", None) or getattr(model, "__name__", "the model")
    if name is None:
        name = next(iter(samplers))
    if name not in samplers:
        raise UserError(f"{what} has no sampler {name!r}",
                        f"use --sampler with one of: {', '.join(samplers)}")
    cls = samplers[name]
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for opt in opts:
        key, eq, text = opt.partition("=")
        key = key.strip().replace("-", "_")
        if not eq or not key:
            raise UserError(f"--sampler-opt {opt!r} is not key=value",
                            "write it like --sampler-opt truncation=0.7")
        if key not in fields:
            known = ", ".join(fields) or "none"
            raise UserError(f"sampler {name!r} of {what} has no option {key!r}",
                            f"its options: {known}")
        values[key] = _parse(key, text.strip(), hints[key], name)
    try:
        return cls(**values)
    except ValueError as exc:
        raise UserError(f"sampler {name!r}: {exc}", "fix the --sampler-opt value") from None


def sampler_protocol(options: SamplerOptions) -> dict[str, Any]:
    """The sampler's name and every option, for a result's protocol record."""
    return {"name": options.name, **dataclasses.asdict(options)}
