"""``genvision colorize train|apply|compare``.

    genvision colorize train --minutes 10 --out runs/color
    genvision colorize train --config runs/color/config.toml --out runs/color2   (same options)
    genvision colorize apply runs/color grey.png -o color.png [--method gan]
    genvision colorize compare runs/color --images heldout

Flags for data, training and the models are derived from their config dataclasses; a
``--config`` TOML file has the same fields (see :mod:`genvision.apps.common.task_config`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..apps.colorize.compare import compare_colorizers, table, write_outputs
from ..apps.colorize.tiled import DEFAULT_TILE, colorize_tiled
from ..apps.colorize.train import SPEC, STAGES, load_colorizer, train_colorize
from ..apps.common.images import check_output_path, evaluation_images, read_image, write_image
from ..apps.common.runs import record_comparison, require_task, trained_stages
from ..apps.common.tiling import check_tiling
from ..errors import UserError
from ..runs.layout import RunLayout
from ..train.device import resolve_device
from .parser import add_tiling_flags
from .stages import add_stage_flags, dispatch, stage_request, task_parser

USAGE = __doc__.strip().split("\n\n")[1]


def _parser(action: str, description: str) -> argparse.ArgumentParser:
    return task_parser("colorize", action, description)


def cmd_colorize(argv: list[str]) -> int:
    """Entry point of ``genvision colorize``; returns the exit status."""
    return dispatch("colorize", "predict colour (Lab ab) from lightness (L)", USAGE,
                    {"train": _train, "apply": _apply, "compare": _compare}, argv)


def _train(argv: list[str]) -> int:
    p = _parser("train", "Train the L1 regression colorizer, then the pix2pix GAN from it, on "
                         "Lab patches of the training images (the training defaults below "
                         "are each stage's).")
    p.add_argument("--out", help="run directory (default runs/colorize)")
    p.add_argument("--resume", action="store_true", help="continue --method's stage in --out")
    add_stage_flags(p, SPEC, "U-Net generator", "GAN")
    args = p.parse_args(argv)
    req = stage_request(args, SPEC, argv, lambda task: "runs/colorize")
    train_colorize(req)
    print(f"compare: genvision colorize compare {req.out} --images heldout")
    return 0


def _apply(argv: list[str]) -> int:
    p = _parser("apply", "Colour a greyscale image (a colour image is coloured anew from its "
                         "lightness), in tiles with bounded memory.")
    p.add_argument("run", help="run directory of `genvision colorize train`")
    p.add_argument("image", help="image file (grey or colour)")
    p.add_argument("-o", "--output", required=True, help="output image (.png, .jpg, ...)")
    p.add_argument("--method", choices=["regression", "gan"],
                   help="default: regression when the run has it")
    add_tiling_flags(p, DEFAULT_TILE, "pixels")
    p.add_argument("--device", default="auto")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction,
                   default=sys.stderr.isatty(), help="show a progress bar over the tiles")
    args = p.parse_args(argv)
    check_tiling(args.tile, args.overlap or 0)
    out = check_output_path(args.output)
    model = load_colorizer(args.run, args.method, device=resolve_device(args.device))
    img = read_image(args.image)
    t0 = time.perf_counter()
    result = colorize_tiled(model, img.image, tile=args.tile, overlap=args.overlap,
                            progress=args.progress)
    write_image(out, result)
    note = "" if img.grey else " (a colour image: its own colours were replaced)"
    print(f"coloured {args.image} with {model.name} in {time.perf_counter() - t0:.1f} s"
          f"{note}: {out}")
    return 0


def _compare(argv: list[str]) -> int:
    p = _parser("compare", "Regression vs GAN colorization: PSNR/SSIM, colourfulness and a "
                           "grid (grey input | regression | GAN | truth).")
    p.add_argument("run", help="run directory of `genvision colorize train`")
    p.add_argument("--images", default="heldout",
                   help="heldout (the test images of the run's data, never trained on; "
                        "default), val, folder:DIR, or colour image files separated by commas")
    p.add_argument("--out", help="directory for compare.md/.json/.png (default RUN/compare)")
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    info = require_task(args.run, "colorize")
    device = resolve_device(args.device)
    models = {s: load_colorizer(args.run, s, device=device)
              for s in trained_stages(Path(args.run), info, STAGES)}
    data = info["patch_options"]
    images = evaluation_images(args.images, data["data"], data["split_seed"])
    grey = [im.name for im in images if im.grey]
    if grey:
        raise UserError(f"{grey[0]} is a greyscale image: there is no true colour to score "
                        "against", "compare on colour images (apply works on grey ones)")
    results, outputs = compare_colorizers(models, images)
    results["images_spec"] = args.images
    paths = write_outputs(results, outputs, Path(args.out or RunLayout(args.run).compare_dir))
    record_comparison(args.run, "colorize", results, [im.name for im in images], args.images,
                      data["data"])
    print(table(results))
    print(f"table: {paths['table']}  grid: {paths['figure']}  numbers: {paths['json']}")
    return 0
