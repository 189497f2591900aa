"""``genvision translate train|apply|compare``.

    genvision translate train --method cyclegan --pair mnist-mnistm --minutes 10 --out runs/mm
    genvision translate train --method pix2pix --out runs/mm --minutes 10   (same data)
    genvision translate train --method cyclegan --a folder:A --b folder:B --out runs/ab
    genvision translate train --config runs/mm/config.toml --out runs/mm2   (same options)
    genvision translate apply runs/mm digit.png [--method pix2pix] [--direction b2a] --out DIR
    genvision translate compare runs/mm --images heldout [--n 500]

Flags for data, training and the models are derived from their config dataclasses; a
``--config`` TOML file has the same fields ([task], [data], [training], [model]).
"""

from __future__ import annotations

from pathlib import Path

from ..apps.common.runs import require_task
from ..apps.common.task_config import check_resume_options
from ..apps.translate.apply import check_sources, translate_files
from ..apps.translate.compare import classifiers, compare_translations, heldout_sides, table
from ..apps.translate.compare import write_outputs as write_comparison
from ..apps.translate.data import parse_options
from ..apps.translate.record import record_translation
from ..apps.translate.train import (
    METHODS,
    SECTIONS,
    TASK,
    TranslateRequest,
    load_translator,
    train_translate,
    trained_methods,
)
from ..errors import UserError
from ..runs.layout import RunLayout
from ..train.device import resolve_device
from .stages import add_section_flags, dispatch, task_parser, with_config

USAGE = __doc__.strip().split("\n\n")[1]


def cmd_translate(argv: list[str]) -> int:
    """Entry point of ``genvision translate``; returns the exit status."""
    return dispatch(TASK, "cross-domain image translation: pix2pix vs CycleGAN", USAGE,
                    {"train": _train, "apply": _apply, "compare": _compare}, argv)


def _train(argv: list[str]) -> int:
    p = task_parser(TASK, "train", "Train pix2pix or CycleGAN on a pair of domains (train "
                                   "split; val split for validation), into OUT/METHOD. "
                                   "Defaults: Adam 2e-4, beta1 0.5; batch 16 (pix2pix), 8 "
                                   "(CycleGAN, lr held for half the budget, then linear to "
                                   "0); validation every 250 steps.")
    p.add_argument("--out", required=True, help="run directory (one per pair; both methods "
                                                "can train into it)")
    p.add_argument("--resume", action="store_true", help="continue --method in --out")
    add_section_flags(p, SECTIONS, {"task": "task", "data": "data", "training": "training",
                                    "model": "networks and losses"})
    args = p.parse_args(argv)
    file, typed = with_config(args, TASK, SECTIONS)
    merged = {name: {**file[name], **typed[name]} for name in SECTIONS}
    method = merged["task"].get("method")
    if method is None:
        raise UserError("translate train needs a method",
                        "pass --method pix2pix or --method cyclegan (or set method in [task] "
                        "of the --config file)")
    out = Path(args.out)
    if args.resume:  # typed model flags are refused by train_translate; the file's must
        if args.config:  # be the method's own
            check_resume_options(out, TASK, method, file["model"], args.config)
        merged["model"] = typed["model"]
    req = TranslateRequest(out=out, method=method, data=merged["data"],
                           train=merged["training"], model=merged["model"],
                           resume=args.resume,
                           command=" ".join(["genvision", TASK, "train", *argv]))
    train_translate(req)
    print(f"compare: genvision translate compare {args.out} --images heldout")
    return 0


def _apply(argv: list[str]) -> int:
    p = task_parser(TASK, "apply", "Translate image files with a trained run; writes "
                                   "OUT/NAME_DIRECTION.png and never replaces a file.")
    p.add_argument("run", help="run directory of `genvision translate train`")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="images of the source domain")
    p.add_argument("--method", choices=METHODS,
                   help="default: cyclegan when the run has it, else pix2pix")
    p.add_argument("--direction", choices=("a2b", "b2a"), default="a2b",
                   help="a2b (default) or b2a (CycleGAN only)")
    p.add_argument("--out", default=".", help="folder for the outputs (default: here)")
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    model = load_translator(args.run, args.method, device=resolve_device(args.device))
    if args.direction == "b2a" and model.name != "cyclegan":
        raise UserError(f"{model.name} translates a2b only", "pass --method cyclegan for "
                                                             "b2a (train it first)")
    c = model.config
    channels, domain = ((c.a_channels, "A") if args.direction == "a2b"
                        else (c.channels - c.a_channels, "B"))
    sources = check_sources(args.images, channels, domain, Path(args.out), args.direction)
    for path in translate_files(model, sources, args.direction):
        print(f"{args.direction} with {model.name}: {path}")
    h, w = c.image_size
    if any(tuple(s.x.shape[2:]) != (h, w) for s in sources):
        print(f"note: the run was trained on {w}x{h} images; other sizes translate, but "
              "outside what it learnt")
    return 0


def _compare(argv: list[str]) -> int:
    p = task_parser(TASK, "compare", "Identity vs pix2pix vs CycleGAN on held-out images, "
                                     "both directions: label preservation, PSNR/SSIM to the "
                                     "true counterpart, FID/KID, cycle error; table + figure.")
    p.add_argument("runs", nargs="+", metavar="RUN", help="translate runs of one pair")
    p.add_argument("--images", default="heldout",
                   help="heldout (the test split, never trained on; default) or val")
    p.add_argument("--n", type=int, default=500, help="test images per side (default 500)")
    p.add_argument("--classifier-steps", type=int, default=3000,
                   help="training steps of each domain's classifier (default 3000; kept in "
                        "OUT/classifiers and reused by later compares of the same pair)")
    p.add_argument("--out", help="folder for compare.md/.json/.png (default FIRST_RUN/compare)")
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    if not 1 <= args.classifier_steps <= 100_000:
        raise UserError(f"--classifier-steps {args.classifier_steps} is out of range",
                        "pass 1 to 100000")
    infos = [require_task(r, TASK) for r in args.runs]
    opts = parse_options(infos[0].get("pair_options", {}))
    for run, info in zip(args.runs[1:], infos[1:], strict=False):
        if info.get("pair_options") != infos[0].get("pair_options"):
            raise UserError(f"{run} was trained on other data than {args.runs[0]}",
                            "compare runs of the same pair and data options")
    device = resolve_device(args.device)
    models = {}
    for run, info in zip(args.runs, infos, strict=True):
        trained = trained_methods(run, info)
        if not trained:
            raise UserError(f"{run} has no trained method yet",
                            f"train one with `genvision translate train --out {run}`")
        for m in trained:
            label = m if len(args.runs) == 1 else f"{Path(run).name}/{m}"
            models[label] = load_translator(run, m, device=device)
    test = heldout_sides(opts, args.images, args.n)
    out = Path(args.out) if args.out else RunLayout(args.runs[0]).compare_dir
    results, outputs = compare_translations(models, test, classifiers(
        opts, test, args.classifier_steps, cache=out / "classifiers"))
    results.update(images_spec=args.images, pair=opts.name, runs=[str(r) for r in args.runs])
    paths = write_comparison(results, outputs, out)
    for run in args.runs:
        record_translation(run, results, opts.name, args.images)
    print(table(results))
    print(f"table: {paths['table']}  figure: {paths['figure']}  numbers: {paths['json']}")
    return 0
