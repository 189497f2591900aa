"""Reports of a training run: image grids, loss curves and a static HTML page.

    from genvision.report import write_report
    write_report("runs/vae")          # -> runs/vae/report.html (and runs/vae/loss.png)
"""

from ..grids import make_grid, save_grid
from .html import write_report
from .plots import plot_loss_curves

__all__ = ["make_grid", "plot_loss_curves", "save_grid", "write_report"]
