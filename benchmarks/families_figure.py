"""Draw the README's picture of samples from each family: one 6x6 grid per run, side by
side, each titled with its model and family. Not a claim: the runs it draws from are the
ten-minute runs of BENCHMARKS.md (MNIST-5k for ``docs/images/families.png``, the full
Fashion-MNIST for ``docs/images/families-fashion-mnist.png``).

    python benchmarks/families_figure.py RUN [RUN ...] -o docs/images/families.png

Sample k of every grid comes from seed ``--seed + k`` (the models' own samplers and
defaults); binary models show their {0, 1} draws, 8-bit ones their grey levels.
"""

from __future__ import annotations

import argparse
import io

import torch
from PIL import Image, ImageDraw

import genvision
from genvision.grids import make_grid
from genvision.models.sampling import SampleRNG
from genvision.storage import atomic_write_bytes

SCALE = 2   # nearest-neighbour upscaling of each grid, so 28x28 digits stay readable
TITLE = 34  # pixels above each grid for its two-line title


def panel(run: str, n: int, seed: int) -> Image.Image:
    """One titled grid of ``n`` samples of the run's model."""
    torch.manual_seed(seed)
    model = genvision.load(run)
    with torch.no_grad():
        x = model.sample(n, generator=SampleRNG(range(seed, seed + n)))
    arr = make_grid(x, nrow=int(n ** 0.5))
    grid = Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr).convert("RGB")
    grid = grid.resize((grid.width * SCALE, grid.height * SCALE), Image.NEAREST)
    out = Image.new("RGB", (grid.width, grid.height + TITLE), "white")
    out.paste(grid, (0, TITLE))
    draw = ImageDraw.Draw(out)
    draw.text((4, 2), model.name, fill="black")
    draw.text((4, 17), model.family, fill=(90, 90, 90))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="run directories, drawn left to right")
    p.add_argument("-n", type=int, default=36, help="samples per run (a square number)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cols", type=int, default=4, help="panels per row")
    p.add_argument("-o", "--output", required=True)
    args = p.parse_args()
    panels = [panel(r, args.n, args.seed) for r in args.runs]
    gap = 12
    w, h = max(q.width for q in panels), max(q.height for q in panels)
    cols = min(args.cols, len(panels))
    rows = -(-len(panels) // cols)
    fig = Image.new("RGB", (cols * w + gap * (cols - 1), rows * h + gap * (rows - 1)), "white")
    for i, q in enumerate(panels):
        r, c = divmod(i, cols)
        fig.paste(q, (c * (w + gap), r * (h + gap)))
    buf = io.BytesIO()
    fig.save(buf, format="PNG")
    atomic_write_bytes(args.output, buf.getvalue())


if __name__ == "__main__":
    main()
