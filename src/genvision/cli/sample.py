"""``genvision sample RUN -n 64 --seed 1 -o grid.png [--label 3] [--sampler-opt key=value]``.

Sample k uses seed SEED + k, whatever -n is; ``--complete IMAGE`` fills in an image's
lower rows instead (fully visible and diffusion models, :mod:`genvision.apps.completion`).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..apps.completion import complete_image
from ..data.config import DataConfig
from ..data.sources import load_dataset
from ..errors import UserError
from ..grids import save_grid
from ..models.base import load
from ..models.sampling import MAX_SAMPLES, SampleRNG, make_sampler
from ..runs.layout import RunLayout
from ..runs.records import read_run_info
from ..storage import atomic_write_bytes
from ..train.device import resolve_device
from .parser import Parser, add_sampler_opt_flag, sampler_opts


def cmd_sample(argv: list[str]) -> int:
    """Entry point of ``genvision sample``; returns the exit status."""
    p = Parser(prog="genvision sample", description="Draw samples from a trained model.")
    p.add_argument("run", help="run or model directory")
    p.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--seed", type=int, default=0,
                   help="sample k uses seed SEED + k, whatever -n is (default 0)")
    p.add_argument("--label", help="class of a conditional model: its number, or its name "
                                   "when the dataset names its classes (e.g. a folder: "
                                   "source's sub-folders)")
    p.add_argument("-o", "--output", default="samples.png", help="PNG grid or .npz file")
    p.add_argument("--nrow", type=int, help="images per row of the grid")
    p.add_argument("--complete", metavar="IMAGE",
                   help="fill in an image instead: keep its top rows, sample the rest "
                        "(fully visible and diffusion models)")
    p.add_argument("--keep-rows", type=int, help="rows kept with --complete (default: half)")
    p.add_argument("--sampler", help="the model's sampler (default: its first; an unknown "
                                     "name lists them)")
    add_sampler_opt_flag(p)
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    if not 1 <= args.n <= MAX_SAMPLES:
        raise UserError(f"-n must be in [1, {MAX_SAMPLES}], got {args.n}",
                        f"pass a smaller -n; for more, call again with --seed {MAX_SAMPLES} "
                        "and so on (sample k uses seed SEED + k)")
    out = Path(args.output)
    if out.suffix.lower() not in (".png", ".npz"):
        raise UserError(f"cannot write samples to {out.name}", "use a .png or .npz file name")
    if args.keep_rows is not None and not args.complete:
        raise UserError("--keep-rows only applies with --complete IMAGE",
                        "pass --complete image.png or drop --keep-rows")
    device = resolve_device(args.device)
    model = load(args.run, device=device)
    label = None if args.label is None else label_index(args.run, args.label)
    sampler = make_sampler(model, args.sampler, sampler_opts(args))
    if args.complete:
        x = complete_image(model, Path(args.complete), n=args.n, keep_rows=args.keep_rows,
                           label=label, seed=args.seed, device=device, sampler=sampler)
        write_images(x, None, out, args.nrow or (args.n + 2))
        print(f"wrote the original, its kept rows and {args.n} completions to {out}")
        return 0
    y = None
    if label is not None:
        y = torch.full((args.n,), label, dtype=torch.long, device=device)
    model.check_input(torch.zeros(1, *model.config.shape, device=device),
                      None if y is None else y[:1])
    if y is None and model.config.num_classes:
        y = torch.arange(args.n, device=device) % model.config.num_classes
    rng = SampleRNG(range(args.seed, args.seed + args.n))  # sample k: seed SEED + k
    with torch.no_grad():
        x = model.sample(args.n, y=y, generator=rng, sampler=sampler).cpu()
    write_images(x, y, out, args.nrow)
    print(f"wrote {args.n} samples to {out}")
    return 0


def _class_names(run: str) -> list[str] | None:
    """The class names a run was trained with: from its run.json, or (older runs) from
    its dataset; None for a model directory or a dataset without names."""
    layout = RunLayout(run)
    if not layout.run_json.is_file():
        return None
    info = read_run_info(run)
    if "class_names" in info.data or not info.data_config:
        return info.data.get("class_names")
    try:
        data = DataConfig(**info.data_config)
        return load_dataset(data.data, data.split, image_size=data.image_size,
                            grayscale=data.grayscale, split_seed=data.split_seed).class_names
    except (UserError, TypeError, ValueError):
        return None  # the data moved or the record is odd: numbers still work


def label_index(run: str, label: str) -> int:
    """``--label`` as a class index: an integer, or a class name of the run's dataset
    (case-insensitive when unambiguous)."""
    if label.lstrip("-").isdigit():
        return int(label)
    names = _class_names(run)
    if not names:
        raise UserError(f"--label {label!r} is not a number and {run} has no class names",
                        "pass the class number, e.g. --label 3")
    exact = [i for i, name in enumerate(names) if name == label]
    folded = [i for i, name in enumerate(names) if name.lower() == label.lower()]
    found = exact or folded
    if len(found) != 1:
        shown = ", ".join(names[:30]) + (", ..." if len(names) > 30 else "")
        raise UserError(f"--label {label!r} is not one of the run's classes",
                        f"pass a class number or one of: {shown}")
    return found[0]


def write_images(x: Tensor, y: Tensor | None, out: Path, nrow: int | None) -> None:
    """A PNG grid, or an .npz with ``x`` [N, C, H, W] (and ``y`` [N]), written atomically."""
    if out.suffix.lower() == ".npz":
        buf = io.BytesIO()
        arrays = {"x": x.numpy()} | ({} if y is None else {"y": y.cpu().numpy()})
        np.savez_compressed(buf, **arrays)
        atomic_write_bytes(out, buf.getvalue())
    else:
        save_grid(x, out, nrow=nrow)
