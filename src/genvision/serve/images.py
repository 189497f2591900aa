"""Images in and out of the demo's JSON: uploads are checked before a pixel is decoded.

The page sends an image (a file the user picked, or the drawing canvas) as a
``data:image/...;base64,`` URL inside a JSON body; replies carry PNG data URLs. Every
upload is refused with a one-line :class:`~genvision.errors.UserError` (the server turns it
into a 400) when it is not base64, not an image, or larger than :data:`MAX_UPLOAD_PIXELS`
(read from the header, so a small file that decompresses to gigapixels allocates nothing).
"""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from ..apps.common.images import GREY_MODES
from ..data.files import image_rgb8
from ..errors import UserError
from ..grids import make_grid

#: the largest upload, in pixels; the task models run on it in tiles, but their output (a
#: x4 super-resolution is 16 times larger) is held and encoded in memory
MAX_UPLOAD_PIXELS = 1024 * 1024
#: the largest upload, in bytes of the decoded file (the request body is capped above it)
MAX_UPLOAD_BYTES = 8 * 1024 * 1024
#: the side under which a reply's grid is enlarged (nearest neighbour) for the page
DISPLAY_SIDE = 256


@dataclass(frozen=True)
class Upload:
    """A decoded upload: ``rgb`` uint8 [H, W, 3]; ``one_channel`` when the file itself is
    grey (its mode has one channel)."""

    rgb: np.ndarray
    one_channel: bool

    @property
    def grey(self) -> bool:
        """A grey file, or an RGB(A) one whose three channels are equal (a canvas drawing,
        a grey photo saved as RGB): grey content either way."""
        r, g, b = self.rgb[..., 0], self.rgb[..., 1], self.rgb[..., 2]
        return self.one_channel or bool((r == g).all() and (g == b).all())

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.rgb.shape[1], self.rgb.shape[0]

    def tensor(self, channels: int) -> Tensor:
        """float [1, channels, H, W] in [0, 1]; the caller has checked the channel count."""
        x = torch.from_numpy(self.rgb.copy()).permute(2, 0, 1).float() / 255.0
        return (x[:1] if channels == 1 else x)[None]


def decode_upload(data_url: object, what: str = "image") -> Upload:
    """An uploaded image from its data URL (or bare base64).

    Raises:
        UserError: missing, not base64, not a readable image, or too large.
    """
    if not isinstance(data_url, str) or not data_url:
        raise UserError(f"no {what} was sent", "choose an image file (PNG or JPEG) first")
    payload = data_url.split(",", 1)[1] if data_url.startswith("data:") else data_url
    if len(payload) > MAX_UPLOAD_BYTES * 4 // 3 + 4:
        raise UserError(f"the {what} file is over {MAX_UPLOAD_BYTES // 2**20} MB",
                        "send a smaller image")
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise UserError(f"the {what} is not base64 image data", "upload a PNG or JPEG file") \
            from None
    try:
        with Image.open(io.BytesIO(raw)) as im:
            w, h = im.size
            if w * h > MAX_UPLOAD_PIXELS:  # from the header, before decoding
                raise UserError(f"the {what} is {w}x{h} pixels, more than the demo takes "
                                f"({MAX_UPLOAD_PIXELS:,} pixels)",
                                "downscale or crop it to at most 1024x1024")
            im.load()
            grey = im.mode in GREY_MODES
            rgb = image_rgb8(im)
    except UserError:
        raise
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError,
            Image.DecompressionBombError) as exc:
        raise UserError(f"the {what} is not a readable image ({type(exc).__name__})",
                        "upload a PNG, JPEG, BMP or WEBP file") from None
    return Upload(np.ascontiguousarray(rgb), grey)


def require_channels(upload: Upload, channels: int, who: str) -> None:
    """Refuse a colour image where ``who`` takes grey ones, and a one-channel file where it
    takes colour ones (an RGB file with grey content is a colour image that happens to be
    grey, and passes)."""
    if channels == 1 and not upload.grey:
        raise UserError(f"this is a colour image but {who} takes grey images",
                        "upload a greyscale image")
    if channels == 3 and upload.one_channel:
        raise UserError(f"this is a greyscale image but {who} takes colour images",
                        "upload a colour (RGB) image")


def png_data_url(image: np.ndarray | Image.Image) -> str:
    """A PNG data URL of uint8 [H, W, C] (C in 1, 3) or a Pillow image."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def grid_data_url(images: Tensor, nrow: int | None = None) -> str:
    """A PNG data URL of a grid of images [N, C, H, W] in [0, 1], enlarged (nearest
    neighbour) so that small images stay crisp and readable on the page."""
    arr = make_grid(images, nrow=nrow)
    side = max(arr.shape[:2])
    scale = min(8, max(1, DISPLAY_SIDE // side))
    if scale > 1:
        arr = arr.repeat(scale, axis=0).repeat(scale, axis=1)
    return png_data_url(arr)
