"""Pixel transforms: float scaling, binarisation, quantisation, dequantisation, resize, grey.

Binarisation follows the shared benchmark protocol (the design guide, section 3):
*static* binarisation draws one Bernoulli sample per pixel, once, with a fixed seed, so
every implementation scores the same binary test set; *dynamic* binarisation draws a new
sample for every batch (Salakhutdinov & Murray 2008, https://doi.org/10.1145/1390156.1390266),
which acts as data augmentation during training.

Uniform dequantisation turns 8-bit data into a continuous density problem
(Theis et al. 2016, https://arxiv.org/abs/1511.01844): ``(x * 255 + u) / 256`` with
``u ~ U[0, 1)``, so that a continuous log-density on [0, 1) lower-bounds the discrete one.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import Tensor

#: ITU-R BT.601 luma weights (R, G, B), the ones JPEG and Pillow's "L" mode use.
BT601 = (0.299, 0.587, 0.114)


def to_float(x: Tensor) -> Tensor:
    """uint8 [..] pixels -> float32 in [0, 1] (pixel / 255)."""
    return x.to(torch.float32) / 255.0


def binarize_static(x: Tensor, seed: int = 0) -> Tensor:
    """Binarise once with a fixed seed: the benchmark's exact call, do not change it.

    Args:
        x: float32 [N, C, H, W] in [0, 1], the WHOLE split in file order (the result for an
            image depends on its position, so binarising a subset gives different bits).
        seed: seed of a fresh CPU ``torch.Generator``.

    Returns:
        float32 [N, C, H, W] in {0, 1}.
    """
    return torch.bernoulli(x, generator=torch.Generator().manual_seed(seed))


def binarize_dynamic(x: Tensor, generator: torch.Generator) -> Tensor:
    """Draw a fresh Bernoulli(x) sample, all randomness from ``generator``.

    Uniforms are drawn on the generator's device and moved to ``x``'s, so a CPU generator
    gives the same bits whether the batch sits on CPU or GPU.

    Args:
        x: float [B, C, H, W] probabilities in [0, 1].
        generator: the training loop's generator.

    Returns:
        float [B, C, H, W] in {0, 1}, same dtype and device as ``x``.
    """
    u = torch.rand(x.shape, generator=generator, device=generator.device)
    return (u.to(x.device) < x).to(x.dtype)


def quantize(x: Tensor, bits: int) -> Tensor:
    """Reduce 8-bit pixels to ``2**bits`` levels (e.g. 5-bit as in Glow).

    Args:
        x: uint8 [..] pixels 0..255.
        bits: 1..8.

    Returns:
        uint8 [..] levels 0..2**bits - 1 (the top ``bits`` bits of each pixel).
    """
    if not 1 <= bits <= 8:
        raise ValueError(f"bits must be in 1..8, got {bits}")
    return torch.bitwise_right_shift(x.to(torch.uint8), 8 - bits)


def dequantize(x: Tensor, generator: torch.Generator, bits: int = 8) -> Tensor:
    """Uniform dequantisation: ``(level + u) / 2**bits`` with ``u ~ U[0, 1)``.

    Args:
        x: float [B, C, H, W] in [0, 1] holding ``level / (2**bits - 1)`` (for 8 bits,
            pixel / 255).
        generator: source of all the noise (drawn on its device, then moved to ``x``'s).
        bits: bits per pixel of ``x``.

    Returns:
        float [B, C, H, W] in [0, 1); ``floor(out * 2**bits)`` recovers the level.
    """
    levels = 2**bits
    level = torch.round(x * (levels - 1))
    u = torch.rand(x.shape, generator=generator, device=generator.device).to(x.device)
    # (level + u) can round up to level + 1 in float; capping at the largest float below
    # (level + 1) / levels (exact: levels is a power of two) keeps floor(out * levels) == level.
    upper = torch.nextafter((level + 1) / levels, torch.zeros_like(level))
    return torch.minimum((level + u) / levels, upper)


def to_grayscale(x: Tensor) -> Tensor:
    """RGB -> grey with BT.601 weights, rounded; grey input is returned unchanged.

    Args:
        x: uint8 [N, 3, H, W] (or [N, 1, H, W]).

    Returns:
        uint8 [N, 1, H, W].
    """
    if x.shape[1] == 1:
        return x
    w = torch.tensor(BT601, dtype=torch.float32).view(1, 3, 1, 1)
    grey = (x.to(torch.float32) * w).sum(dim=1, keepdim=True)
    return grey.round().clamp(0, 255).to(torch.uint8)


def resize_pad_array(img: np.ndarray, size: int) -> np.ndarray:
    """Resize one image keeping its aspect ratio, then pad it to ``size x size``.

    The longer side becomes ``size`` (Pillow bicubic, which filters over the whole source
    footprint when shrinking, i.e. antialiased); the shorter side is centred and padded with
    zeros (black), so no content is cropped or stretched.

    Args:
        img: uint8 [H, W] or [H, W, C].
        size: output side in pixels.

    Returns:
        uint8 [size, size] or [size, size, C].
    """
    h, w = img.shape[:2]
    if (h, w) == (size, size):
        return img
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    channels = [img] if img.ndim == 2 else [img[..., c] for c in range(img.shape[2])]
    # Resize channel by channel in "L" mode: Pillow then handles any channel count.
    out = np.zeros((size, size, len(channels)), dtype=np.uint8)
    top, left = (size - nh) // 2, (size - nw) // 2
    for c, ch in enumerate(channels):
        small = Image.fromarray(np.ascontiguousarray(ch)).resize((nw, nh), Image.Resampling.BICUBIC)
        out[top:top + nh, left:left + nw, c] = np.asarray(small)
    return out[..., 0] if img.ndim == 2 else out


def resize_pad(x: Tensor, size: int) -> Tensor:
    """Batch version of :func:`resize_pad_array`.

    Args:
        x: uint8 [N, C, H, W].
        size: output side.

    Returns:
        uint8 [N, C, size, size].
    """
    if tuple(x.shape[2:]) == (size, size):
        return x
    arr = x.permute(0, 2, 3, 1).numpy()
    out = np.stack([resize_pad_array(a, size) for a in arr]) if len(arr) else \
        np.zeros((0, size, size, x.shape[1]), np.uint8)
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()
