"""What the demo's buttons do: sample, interpolate, complete, apply a task. Each action
takes the request's JSON object, checks every field (a one-line :class:`UserError`, which
the server sends as a 400) and returns a JSON object with PNG data URLs.

The demo caps the work one click asks for (:data:`MAX_N`, :data:`MAX_OPTION_INT`, ...):
the server is shared by whoever opens the page, and a typo must not hold it for an hour.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..apps.colorize.tiled import colorize_tiled
from ..apps.superres.tiling import upscale_to_pil
from ..apps.translate.scores import to8bit
from ..errors import UserError
from ..models.sampling import SampleRNG, SamplerOptions, make_sampler
from .images import decode_upload, grid_data_url, png_data_url, require_channels
from .latent import interpolate
from .runs import ServedRun

#: the most images one "sample" or "complete" click draws
MAX_N = 64
#: the most frames of one interpolation
MAX_FRAMES = 16
#: the largest integer sampler option the page may set (diffusion steps, Gibbs sweeps, ...)
MAX_OPTION_INT = 1000
#: the largest seed (seeds are non-negative 63-bit integers in the library)
MAX_SEED = 2 ** 62
#: the largest input of super-resolution, in pixels: its output is scale^2 times larger
MAX_SR_PIXELS = 512 * 512

Body = dict[str, Any]


def int_field(body: Body, key: str, default: int | None, lo: int, hi: int) -> int:
    """``body[key]`` as an integer in [lo, hi] (``default`` when absent)."""
    value = body.get(key, default)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{key} must be a whole number, got {value!r}",
                        f"enter a number from {lo} to {hi:,}")
    if not lo <= value <= hi:
        raise UserError(f"{key} must be in [{lo}, {hi:,}], got {value:,}",
                        f"enter a number from {lo} to {hi:,}")
    return value


def label_field(body: Body, run: ServedRun) -> int | None:
    """The requested class label, None for "any"; checked against the model's classes."""
    value = body.get("label")
    if value is None or value == "":
        return None
    k = run.model.config.num_classes
    if not k:
        raise UserError(f"{run.model.name} of run {run.name} is unconditional: it takes no "
                        "label", "leave the label empty")
    return int_field(body, "label", None, 0, k - 1)


def sampler_field(body: Body, run: ServedRun) -> SamplerOptions:
    """The sampler and its options, typed and checked by the model's own sampler class."""
    name = body.get("sampler") or None
    options = body.get("options") or {}
    if not isinstance(options, dict) or (name is not None and not isinstance(name, str)):
        raise UserError("sampler options must be an object of name: value",
                        "reload the page")
    strings = []
    for key, value in options.items():
        if value is None or value == "":
            continue  # the model's default
        if isinstance(value, bool):
            value = "true" if value else "false"
        if isinstance(value, float) and not math.isfinite(value):
            raise UserError(f"sampler option {key} is not a finite number", "enter a number")
        strings.append(f"{key}={value}")
    try:  # types and the sampler's own bounds
        opts = make_sampler(run.model, name, strings)
    except UserError as err:  # its fixes name the CLI's flags; the page has none
        fix = (err.fix or "").replace("--sampler-opt ", "the option ").replace(
            "--sampler-opt", "the option").replace("use --sampler with", "use")
        raise UserError(err.problem, fix or None) from None
    for key, value in dataclasses.asdict(opts).items():
        if isinstance(value, int) and not isinstance(value, bool) and \
                not 0 <= value <= MAX_OPTION_INT:
            raise UserError(f"sampler option {key}={value:,} is outside what the demo runs",
                            f"enter 0 to {MAX_OPTION_INT:,}")
    return opts


def _labels(run: ServedRun, n: int, label: int | None) -> torch.Tensor | None:
    if label is None:
        return None  # the model's own choice: a conditional one cycles through its classes
    return torch.full((n,), label, dtype=torch.long, device=run.model.device)


def sample(run: ServedRun, body: Body) -> Body:
    """``n`` samples with seeds ``seed``..``seed + n - 1`` as one grid."""
    n = int_field(body, "n", 16, 1, MAX_N)
    seed = int_field(body, "seed", 0, 0, MAX_SEED)
    label = label_field(body, run)
    opts = sampler_field(body, run)
    with torch.no_grad():
        x = run.model.sample(n, y=_labels(run, n, label), generator=SampleRNG(
            range(seed, seed + n)), sampler=opts).cpu()
    return {"image": grid_data_url(x, math.ceil(math.sqrt(n))),
            "caption": f"{n} samples, seeds {seed} to {seed + n - 1}"}


def interpolation(run: ServedRun, body: Body) -> Body:
    """``frames`` images from seed A's sample to seed B's, as one strip."""
    a = int_field(body, "seed_a", 0, 0, MAX_SEED)
    b = int_field(body, "seed_b", 1, 0, MAX_SEED)
    frames = int_field(body, "frames", 8, 2, MAX_FRAMES)
    x, note = interpolate(run.model, a, b, frames, label_field(body, run),
                          sampler_field(body, run))
    return {"image": grid_data_url(x.cpu(), frames),
            "caption": f"seed {a} (left) to seed {b} (right), {frames} frames", "note": note}


def completion(run: ServedRun, body: Body) -> Body:
    """``n`` completions of the uploaded or drawn image, its top ``keep_rows`` rows kept."""
    model = run.model
    c, h, w = model.config.shape
    if not model.supports("complete"):
        raise UserError(f"{model.name} cannot complete images",
                        "use a fully visible (pixelcnn, made, ...) or diffusion model run")
    upload = decode_upload(body.get("image"))
    require_channels(upload, c, f"{model.name} of run {run.name}")
    note = None
    rgb = upload.rgb
    if upload.size != (w, h):
        note = f"the image was resized from {upload.size[0]}x{upload.size[1]} to {w}x{h}"
        rgb = np.asarray(Image.fromarray(rgb).resize((w, h), Image.BILINEAR))
    n = int_field(body, "n", 8, 1, MAX_N)
    keep = int_field(body, "keep_rows", h // 2, 0, h - 1)
    seed = int_field(body, "seed", 0, 0, MAX_SEED)
    label = label_field(body, run)
    opts = sampler_field(body, run)
    x = torch.from_numpy(rgb.copy()).permute(2, 0, 1).float()[None, :c] / 255.0
    if model.config.data_kind == "binary":
        x = (x >= 0.5).float()  # as `genvision sample --complete` reads an image
    x = x.to(model.device)
    mask = torch.zeros(1, c, h, w, dtype=torch.bool, device=model.device)
    mask[:, :, :keep] = True
    with torch.no_grad():  # completion k uses seed + k, as `genvision sample --complete`
        filled = model.complete(x.expand(n, -1, -1, -1), mask, _labels(run, n, label),
                                SampleRNG(range(seed, seed + n)), opts)
    x = torch.cat([x, x * mask, filled]).cpu()
    return {"image": grid_data_url(x, n + 2),
            "caption": f"the image, its top {keep} rows (kept), then {n} completions",
            "note": note}


def apply_task(run: ServedRun, body: Body) -> Body:
    """Super-resolve, colorize or translate the uploaded image with one of the run's methods."""
    model = run.method(body.get("method"))
    upload = decode_upload(body.get("image"))
    with torch.no_grad():
        if run.kind == "superres":
            out, note = _superres(run, model, upload)
        elif run.kind == "colorize":
            out = colorize_tiled(model, upload.rgb)
            note = None if upload.grey else "a colour image: its colours were replaced"
        else:
            out, note = _translate(run, model, upload, body.get("direction") or "a2b")
    w, h = upload.size
    oh, ow = np.asarray(out).shape[:2]
    return {"image": png_data_url(out), "caption": f"{model.name}: {w}x{h} in, {ow}x{oh} out",
            "note": note}


def _superres(run: ServedRun, model: Any, upload: Any) -> tuple[Image.Image, str | None]:
    w, h = upload.size
    if w * h > MAX_SR_PIXELS:
        raise UserError(f"the image is {w}x{h} pixels; the demo super-resolves at most "
                        f"{MAX_SR_PIXELS:,}", "crop or downscale it to at most 512x512 "
                                              "(`genvision superres apply` takes any size)")
    require_channels(upload, 3, f"super-resolution run {run.name}")
    return upscale_to_pil(model, upload.rgb), None


def _translate(run: ServedRun, model: Any, upload: Any, direction: object
               ) -> tuple[np.ndarray, str | None]:
    if direction not in ("a2b", "b2a"):
        raise UserError(f"direction must be a2b or b2a, got {direction!r}", "choose a2b or b2a")
    if direction == "b2a" and model.name != "cyclegan":
        raise UserError(f"{model.name} translates a2b only", "choose the cyclegan method")
    channels = run.info["directions"][direction]
    require_channels(upload, channels, f"domain {direction[0].upper()} of run {run.name}")
    x = upload.tensor(channels).to(model.device)
    out = to8bit(model.translate(x, direction).cpu())[0]
    arr = (out * 255).round().byte().permute(1, 2, 0).numpy()
    th, tw = run.info["image_size"]
    note = None if (upload.size == (tw, th)) else (
        f"the run was trained on {tw}x{th} images; other sizes translate, but outside what "
        "it learnt")
    return arr, note


#: the actions by the name the page posts to (``POST /api/NAME``)
ACTIONS = {"sample": sample, "interpolate": interpolation, "complete": completion,
           "apply": apply_task}
