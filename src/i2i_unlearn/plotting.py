"""The one way a figure is made and written: matplotlib without a display, saved atomically as PNG."""
from __future__ import annotations

from pathlib import Path

from i2i_unlearn.checkpoints import atomic_write


def pyplot():
    """matplotlib's pyplot, drawing to files only (no display on a server or in CI)."""
    import matplotlib  # deferred for start-up time: most commands draw nothing
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_figure(figure, path: str | Path, *, tight: bool = False, **savefig_options) -> Path:
    """Write `figure` to `path` as PNG through a temporary file and close it. `tight`: lay it out first
    (figure.tight_layout); `savefig_options` go to savefig (e.g. dpi, bbox_inches)."""
    path = Path(path)
    if tight:
        figure.tight_layout()
    atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", **savefig_options))
    pyplot().close(figure)
    return path
