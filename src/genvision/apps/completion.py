"""``genvision sample RUN --complete IMAGE``: keep an image's top rows, sample the rest.

Fully visible models factorise p(x) over pixels in raster order, so the rows below a kept
top part can be drawn from p(x_rest | x_top) exactly (van den Oord et al. 2016,
https://arxiv.org/abs/1601.06759, fig. 1 shows such completions). Any model with a
``complete(x, keep, y, generator)`` method qualifies.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from ..errors import DataError, UserError
from ..models.base import GenerativeModel
from ..models.sampling import SampleRNG, SamplerOptions

_GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def read_image_for(model: GenerativeModel, path: Path) -> Tensor:
    """The image at ``path`` as the model's data: float [1, C, H, W] in [0, 1].

    Binary models get it thresholded at 0.5; 8-bit models get ``pixel / 255``.

    Raises:
        DataError: unreadable file, or a size / channel count the model does not generate.
    """
    try:
        with Image.open(path) as im:
            im.load()
            grey = im.mode in _GREY_MODES
            arr = np.asarray(im.convert("L" if grey else "RGB"), dtype=np.float32) / 255.0
    except FileNotFoundError:
        raise DataError(f"image {path} does not exist", "check the path") from None
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError,
            Image.DecompressionBombError) as exc:
        raise DataError(f"cannot read image {path} ({type(exc).__name__})",
                        "pass a PNG or JPEG file") from None
    x = torch.from_numpy(arr)
    x = x[None] if grey else x.permute(2, 0, 1)
    c, h, w = model.config.shape
    if x.shape[0] != c:
        want = "grey" if c == 1 else "RGB"
        have = "grey" if x.shape[0] == 1 else "colour"
        raise DataError(f"{path.name} is a {have} image but the model generates {want} images",
                        f"convert the image to {want}")
    if tuple(x.shape[1:]) != (h, w):
        raise DataError(f"{path.name} is {x.shape[2]}x{x.shape[1]} pixels but the model "
                        f"generates {w}x{h}", f"resize the image to {w}x{h}")
    if model.config.data_kind == "binary":
        x = (x >= 0.5).float()
    return x[None]


def complete_image(model: GenerativeModel, path: Path, *, n: int, keep_rows: int | None,
                   label: int | None, seed: int, device: torch.device,
                   sampler: SamplerOptions | None = None) -> Tensor:
    """``n`` completions of the image at ``path`` with its top ``keep_rows`` rows kept.

    Returns:
        [n + 2, C, H, W] on the CPU: the original, the kept part (the rest black), then the
        ``n`` completions.
    """
    if not model.supports("complete"):
        raise UserError(f"{model.name} cannot complete images",
                        "use a fully visible model (pixelcnn, gated-pixelcnn, row-lstm, "
                        "made, nade) or a diffusion model (ddpm, flow-matching)")
    x = read_image_for(model, path).to(device)
    c, h, w = model.config.shape
    rows = h // 2 if keep_rows is None else keep_rows
    if not 0 <= rows < h:
        raise UserError(f"--keep-rows {rows} is out of range for {h}-row images",
                        f"pass a value from 0 to {h - 1}")
    keep = torch.zeros(1, c, h, w, dtype=torch.bool, device=device)
    keep[:, :, :rows] = True
    y = None if label is None else torch.full((n,), label, dtype=torch.long, device=device)
    rng = SampleRNG(range(seed, seed + n))  # completion k: seed + k, as `sample`
    filled = model.complete(x.expand(n, -1, -1, -1), keep, y, rng, sampler)
    return torch.cat([x, x * keep, filled]).cpu()
