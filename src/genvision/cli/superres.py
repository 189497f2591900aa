"""``genvision superres train|apply|compare``.

    genvision superres train --scale 4 --minutes 10 --out runs/sr4
    genvision superres train --config runs/sr4/config.toml --out runs/sr4b   (same options)
    genvision superres apply runs/sr4 photo.png -o photo_x4.png [--method srgan]
    genvision superres compare runs/sr4 --images heldout

Flags for data, training and the models are derived from their config dataclasses; a
``--config`` TOML file has the same fields (see :mod:`genvision.apps.common.task_config`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..apps.common.images import check_output_path, evaluation_images, read_image, write_image
from ..apps.common.runs import record_comparison, require_task, trained_stages
from ..apps.superres.compare import compare_methods, table, write_outputs
from ..apps.superres.tiling import DEFAULT_TILE, upscale_to_pil
from ..apps.superres.train import SPEC, STAGES, load_sr_model, train_superres
from ..data.degrade import Bicubic
from ..errors import UserError
from ..nn.perceptual import load_vgg19, parse_spec
from ..runs.layout import RunLayout
from ..train.device import resolve_device
from .parser import add_tiling_flags
from .stages import add_stage_flags, dispatch, stage_request, task_parser

USAGE = __doc__.strip().split("\n\n")[1]


def _parser(action: str, description: str) -> argparse.ArgumentParser:
    return task_parser("superres", action, description)


def cmd_superres(argv: list[str]) -> int:
    """Entry point of ``genvision superres``; returns the exit status."""
    return dispatch("superres", "single-image super-resolution", USAGE,
                    {"train": _train, "apply": _apply, "compare": _compare}, argv)


# ----- train --------------------------------------------------------------------------------
def _train_parser() -> argparse.ArgumentParser:
    p = _parser("train", "Train SRResNet, then SRGAN from it, on patches of the training "
                         "images (the training defaults below are each stage's).")
    p.add_argument("--out", help="run directory (default runs/srSCALE)")
    p.add_argument("--resume", action="store_true", help="continue --method's stage in --out")
    add_stage_flags(p, SPEC, "SRResNet generator", "SRGAN")
    return p


def _train(argv: list[str]) -> int:
    args = _train_parser().parse_args(argv)
    req = stage_request(args, SPEC, argv, lambda task: f"runs/sr{task.get('scale') or 4}")
    perceptual = req.task.get("perceptual")
    if perceptual:  # refuse a bad spec or VGG19 file before minutes of SRResNet training
        kind, path = parse_spec(perceptual)
        if kind == "vgg19" and req.method != "srresnet":
            load_vgg19(path, req.gan.get("perceptual_layer", "relu5_4"))
    train_superres(req)
    print(f"compare: genvision superres compare {req.out} --images heldout")
    return 0


# ----- apply --------------------------------------------------------------------------------
def _apply(argv: list[str]) -> int:
    p = _parser("apply", "Upscale an image with a trained run (in tiles, bounded memory).")
    p.add_argument("run", help="run directory of `genvision superres train`")
    p.add_argument("image", help="image file to upscale (colour)")
    p.add_argument("-o", "--output", required=True, help="output image (.png, .jpg, ...)")
    p.add_argument("--method", choices=["srresnet", "srgan", "bicubic"],
                   help="default: srresnet when the run has it")
    add_tiling_flags(p, DEFAULT_TILE, "input pixels")
    p.add_argument("--device", default="auto")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction,
                   default=sys.stderr.isatty(), help="show a progress bar over the tiles")
    args = p.parse_args(argv)
    out = check_output_path(args.output)
    device = resolve_device(args.device)
    if args.method == "bicubic":
        model = Bicubic(require_task(args.run, "superres")["scale"])
    else:
        model = load_sr_model(args.run, args.method, device=device)
    img = read_image(args.image)
    if img.grey:
        raise UserError(f"{args.image} is a greyscale image but the model upscales colour "
                        "images", "convert it to RGB first (its three channels then match), "
                                  "or colour it with `genvision colorize apply`")
    t0 = time.perf_counter()
    result = upscale_to_pil(model, img.image, tile=args.tile, overlap=args.overlap,
                            progress=args.progress)
    seconds = time.perf_counter() - t0
    write_image(out, result)
    h, w = img.image.shape[:2]
    print(f"upscaled {args.image} ({w}x{h}) x{model.scale} with {model.name} to "
          f"{result.width}x{result.height} in {seconds:.1f} s: {out}")
    return 0


# ----- compare ------------------------------------------------------------------------------
def _compare(argv: list[str]) -> int:
    p = _parser("compare", "Bicubic vs SRResNet vs SRGAN: PSNR/SSIM table (Y channel and "
                           "RGB) and a side-by-side figure of zoomed crops.")
    p.add_argument("run", help="run directory of `genvision superres train`")
    p.add_argument("--images", default="heldout",
                   help="heldout (the test images of the run's data, never trained on; "
                        "default), val, folder:DIR, or image files separated by commas")
    p.add_argument("--out", help="directory for compare.md/.json/.png (default RUN/compare)")
    p.add_argument("--tile", type=int, default=DEFAULT_TILE)
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    info = require_task(args.run, "superres")
    device = resolve_device(args.device)
    stages = trained_stages(Path(args.run), info, STAGES)
    models = {s: load_sr_model(args.run, s, device=device) for s in stages}
    data = info["patch_options"]
    images = evaluation_images(args.images, data["data"], data["split_seed"])
    results, outputs = compare_methods(models, images, info["scale"], tile=args.tile)
    results["images_spec"] = args.images
    results["perceptual"] = info["stages"].get("srgan", {}).get("perceptual")
    paths = write_outputs(results, outputs, Path(args.out or RunLayout(args.run).compare_dir))
    record_comparison(args.run, "superres", results, [im.name for im in images], args.images,
                      data["data"])
    print(table(results))
    if results["perceptual"]:
        print(f"SRGAN {results['perceptual']}")
    print(f"table: {paths['table']}  figure: {paths['figure']}  numbers: {paths['json']}")
    return 0
