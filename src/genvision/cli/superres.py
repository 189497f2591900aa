"""``genvision superres train|apply|compare``.

    genvision superres train --scale 4 --minutes 10 --out runs/sr4
    genvision superres apply runs/sr4 photo.png -o photo_x4.png [--method srgan]
    genvision superres compare runs/sr4 --images heldout

Flags for data, training and the models are derived from their config dataclasses.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..apps.common.images import check_output_path, evaluation_images, read_image, write_image
from ..apps.common.runs import record_comparison, require_task, trained_stages
from ..apps.common.staged import TaskRequest
from ..apps.superres.compare import compare_methods, table, write_outputs
from ..apps.superres.tiling import DEFAULT_TILE, upscale_to_pil
from ..apps.superres.train import STAGES, TRAIN_DEFAULTS, load_sr_model, train_superres
from ..data.degrade import SCALES, Bicubic
from ..errors import UserError
from ..models.superres import SRGANConfig, SRResNetConfig
from ..nn.perceptual import load_vgg19, parse_spec
from ..runs.layout import RunLayout
from ..train.device import resolve_device
from .parser import add_tiling_flags
from .stages import add_stage_flags, data_and_train_flags, dispatch, stage_flags, task_parser

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
    p.add_argument("--scale", type=int, choices=SCALES, help="up-scaling factor (default 4)")
    p.add_argument("--method", choices=["both", "srresnet", "srgan"], default="both",
                   help="stages to train (default both: SRResNet, then SRGAN from it)")
    p.add_argument("--out", help="run directory (default runs/srSCALE)")
    p.add_argument("--resume", action="store_true", help="continue --method's stage in --out")
    p.add_argument("--gan-share", type=float, default=0.3,
                   help="share of the budget for SRGAN with --method both (default 0.3)")
    p.add_argument("--init", help="SRResNet to start SRGAN from (default OUT/srresnet)")
    p.add_argument("--perceptual", help="SRGAN feature loss: disc (the discriminator's "
                                        "features, default), none, or vgg19:PATH (a local "
                                        "torchvision VGG19 weights file)")
    add_stage_flags(p, SRResNetConfig, SRGANConfig, "SRResNet generator", "SRGAN",
                    TRAIN_DEFAULTS)
    return p


def _train(argv: list[str]) -> int:
    args = _train_parser().parse_args(argv)
    model, gan = stage_flags(args, SRResNetConfig, SRGANConfig)
    if args.resume and (model or gan or args.perceptual or args.init):
        raise UserError("--resume continues a stage with its own model options",
                        "pass only budget/training flags with --resume")
    if args.perceptual:  # refuse a bad spec or VGG19 file before minutes of SRResNet training
        kind, path = parse_spec(args.perceptual)
        if kind == "vgg19" and args.method != "srresnet":
            load_vgg19(path, gan.get("perceptual_layer", "relu5_4"))
    out = Path(args.out or f"runs/sr{args.scale or 4}")
    patches, train = data_and_train_flags(args)
    req = TaskRequest(out=out, method=args.method, patches=patches, train=train,
                      model=model, gan=gan,
                      task={"scale": args.scale, "perceptual": args.perceptual},
                      init=args.init, gan_share=args.gan_share, resume=args.resume,
                      command=" ".join(["genvision", "superres", "train", *argv]))
    train_superres(req)
    print(f"compare: genvision superres compare {out} --images heldout")
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
