"""Differentiable augmentation for GANs on small datasets (DiffAugment).

Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training",
https://arxiv.org/abs/2006.10738: the *same* random, differentiable transform T is applied
to real and generated images every time the discriminator sees them (D step and G step),
so D cannot memorise a small training set while G still learns the un-augmented
distribution (T is applied to both sides, and its gradients flow back into G).

Policies (comma-separated): ``color`` (brightness, saturation for RGB, contrast),
``translation`` (integer shifts of up to 1/8 of the side, zero padding), ``cutout`` (one
zeroed square of half the side). Images are [N, C, H, W] in [0, 1]; all randomness comes
from the global torch RNG, which the training loop checkpoints, so a resumed run
augments exactly as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["POLICIES", "diff_augment", "parse_policy"]


def _brightness(x: Tensor) -> Tensor:
    return x + (torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)


def _saturation(x: Tensor) -> Tensor:
    if x.shape[1] == 1:  # grey images have no saturation
        return x
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) * 2) \
        + mean


def _contrast(x: Tensor) -> Tensor:
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) \
        + mean


def _translation(x: Tensor, ratio: float = 0.125) -> Tensor:
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dev = x.device
    tx = torch.randint(-sh, sh + 1, (n, 1, 1), device=dev)
    ty = torch.randint(-sw, sw + 1, (n, 1, 1), device=dev)
    gb, gx, gy = torch.meshgrid(torch.arange(n, device=dev), torch.arange(h, device=dev),
                                torch.arange(w, device=dev), indexing="ij")
    # index into a copy padded by one zero pixel: shifted-out positions read the padding
    gx = (gx + tx + 1).clamp(0, h + 1)
    gy = (gy + ty + 1).clamp(0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1])
    return padded.permute(0, 2, 3, 1)[gb, gx, gy].permute(0, 3, 1, 2)


def _cutout(x: Tensor, ratio: float = 0.5) -> Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dev = x.device
    ox = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=dev)
    oy = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=dev)
    gb, gx, gy = torch.meshgrid(torch.arange(n, device=dev), torch.arange(ch, device=dev),
                                torch.arange(cw, device=dev), indexing="ij")
    gx = (gx + ox - ch // 2).clamp(0, h - 1)
    gy = (gy + oy - cw // 2).clamp(0, w - 1)
    mask = torch.ones(n, h, w, device=dev, dtype=x.dtype)
    mask[gb, gx, gy] = 0
    return x * mask.unsqueeze(1)


#: policy name -> the transforms it applies, in order
POLICIES: dict[str, tuple[Callable[[Tensor], Tensor], ...]] = {
    "color": (_brightness, _saturation, _contrast),
    "translation": (_translation,),
    "cutout": (_cutout,),
}


def parse_policy(policy: str) -> list[str]:
    """``"translation,cutout"`` -> ``["translation", "cutout"]``; ``""``/``"none"`` -> []."""
    names = [p.strip().lower() for p in policy.split(",") if p.strip()]
    if names == ["none"]:
        return []
    unknown = [p for p in names if p not in POLICIES]
    if unknown:
        raise ValueError(f"unknown DiffAugment policy {', '.join(unknown)}; "
                         f"use a comma list of {', '.join(POLICIES)} (or none)")
    return names


def diff_augment(x: Tensor, policy: str | list[str]) -> Tensor:
    """Apply the policy's random transforms to a batch, differentiably.

    Args:
        x: [N, C, H, W] images. policy: a comma list (see :func:`parse_policy`) or its parse.

    Returns:
        [N, C, H, W], same dtype and device; ``x`` itself when the policy is empty.
    """
    names = parse_policy(policy) if isinstance(policy, str) else policy
    for name in names:
        for fn in POLICIES[name]:
            x = fn(x)
    return x.contiguous()
