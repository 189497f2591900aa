"""Whole images for the image-to-image tasks: reading and writing files, and split sources.

Image-to-image tasks train on patches but evaluate on *whole* images of any size, so they
do not go through :func:`genvision.data.load_dataset` (which needs one image size). The
split is by image, as in :mod:`genvision.data.photos`: an image of the ``test`` split never
contributes a pixel to training.

Sources:
    ``photos``: the colour photographs shipped with scikit-image, split by name
    (:data:`genvision.data.photos.PHOTO_SPLITS`: test = chelsea, coffee; val = rocket).
    ``folder:DIR``: every image file under DIR, split 80/10/10 by a seeded permutation of
    the sorted file list (:func:`genvision.data.base.split_indices`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ...data.base import check_split, split_indices
from ...data.files import IMAGE_EXTENSIONS, _image_files, image_rgb8
from ...data.photos import PHOTO_SPLITS, load_photos
from ...errors import DataError, UserError
from ...runs.layout import RunLayout
from ...storage import atomic_write_json, atomic_write_text, atomic_writer

#: PIL modes that hold one grey channel (with or without alpha)
GREY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
#: file types genvision writes
WRITE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP",
                 ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF"}


@dataclass(frozen=True)
class NamedImage:
    """One whole image: ``image`` is uint8 [H, W, 3]; ``grey`` says the file had one channel."""

    name: str
    image: np.ndarray
    grey: bool = False


def read_image(path: str | os.PathLike) -> NamedImage:
    """Read one image file as uint8 RGB [H, W, 3] (alpha dropped, first frame of a GIF).

    Raises:
        DataError: the file is missing, not an image, truncated or corrupt.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"image {p} does not exist", "check the path")
    try:
        with Image.open(p) as im:
            im.load()
            grey = im.mode in GREY_MODES
            rgb = image_rgb8(im)
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError,
            Image.DecompressionBombError) as exc:
        raise DataError(f"cannot read image {p} ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:120] if str(exc) else 'corrupt'})",
                        "pass a PNG/JPEG/BMP/WEBP file that opens in an image viewer") from None
    return NamedImage(p.stem, rgb, grey)


def check_output_path(path: str | os.PathLike) -> Path:
    """The output path, refused early (before minutes of work) when its type is unknown."""
    p = Path(path)
    if p.suffix.lower() not in WRITE_FORMATS:
        raise UserError(f"cannot write an image to {p.name}: unknown file type",
                        f"end the name with one of {', '.join(WRITE_FORMATS)}")
    return p


def write_image(path: str | os.PathLike, image: np.ndarray | Image.Image) -> Path:
    """Write uint8 [H, W, 3] (or a PIL image) atomically, the format from the suffix.

    The file is encoded straight into a temporary file beside ``path`` and renamed over it
    (no in-memory copy of the encoded file: a 16000x12000 PNG is hundreds of MB).
    """
    p = check_output_path(path)
    pil = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    fmt = WRITE_FORMATS[p.suffix.lower()]
    # PNG level 1: large upscaled photos compress several times faster, files ~10% larger.
    options = {"compress_level": 1} if fmt == "PNG" else {"quality": 95} if fmt == "JPEG" else {}
    with atomic_writer(p) as fh:
        pil.save(fh, format=fmt, **options)
    return p


# ----- split sources -----------------------------------------------------------------------
def split_images(data: str, split: str, split_seed: int = 0) -> list[NamedImage]:
    """The whole images of ``split`` of ``data`` (``photos`` or ``folder:DIR``).

    Raises:
        DataError: unknown source, missing folder, unreadable file, or an empty split.
    """
    check_split(split)
    if data == "photos":
        return [NamedImage(p.name, p.image) for p in load_photos(split)]
    prefix, _, path = data.partition(":")
    if prefix != "folder" or not path:
        raise DataError(f"unknown image source {data!r}",
                        "use photos (the scikit-image colour photos) or folder:DIR")
    files = folder_files(path)
    idx = split_indices(len(files), split, split_seed)
    if len(idx) == 0:
        raise DataError(f"{data} has {len(files)} images: too few for a {split} split "
                        "(10% of the images, rounded down)",
                        "add images, or evaluate on another folder with --images folder:DIR")
    return [read_image(files[i]) for i in idx]


def split_names(data: str, split: str, split_seed: int = 0) -> list[str]:
    """Names of the images of ``split`` without reading them (for the data protocol)."""
    if data == "photos":
        return list(PHOTO_SPLITS[split])
    files = folder_files(data.partition(":")[2])
    return [files[i].stem for i in split_indices(len(files), split, split_seed)]


def folder_files(path: str) -> list[Path]:
    """The sorted image files under ``path`` (hidden files and folders skipped)."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise DataError(f"folder {folder} does not exist", "check the path after folder:")
    files = _image_files(folder)
    if not files:
        raise DataError(f"no images found in {folder}",
                        f"put {'/'.join(e[1:] for e in IMAGE_EXTENSIONS)} files in it")
    return files


def evaluation_images(spec: str, data: str, split_seed: int = 0) -> list[NamedImage]:
    """Images named on the command line (``--images``).

    Args:
        spec: ``heldout`` (the test split of the run's training source), ``val``,
            ``folder:DIR`` (every image in DIR) or comma-separated image files.
        data: the run's training source, for ``heldout`` and ``val``.
    """
    if spec in ("heldout", "test"):
        return split_images(data, "test", split_seed)
    if spec == "val":
        return split_images(data, "val", split_seed)
    if spec.startswith("folder:"):
        return [read_image(f) for f in folder_files(spec.partition(":")[2])]
    return [read_image(p) for p in spec.split(",") if p]


def write_comparison(out_dir: Path, results: dict, table: str,
                     figure: np.ndarray) -> dict[str, Path]:
    """A task comparison's compare.md (table), compare.json (numbers with their protocol)
    and compare.png (figure) in ``out_dir``, each written atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = RunLayout(out_dir).compare_files(out_dir)
    atomic_write_text(paths["table"], table)
    atomic_write_json(paths["json"], results)
    write_image(paths["figure"], figure)
    return paths
