"""Matplotlib figures for files, without pyplot.

Every PNG nnspec writes (run curves, LR schedule, confusion matrix, sweep report, LR range test)
is drawn on a :class:`matplotlib.figure.Figure` rendered by the Agg canvas directly. pyplot is
never imported: a library must not switch the user's backend (``matplotlib.use("Agg")`` would turn
off a notebook's inline plots) nor leave figures in pyplot's global registry, and it skips
pyplot's import. The constrained layout sizes the margins to the labels (long class names
included) in one pass, where ``bbox_inches="tight"`` draws every figure twice.
"""

from __future__ import annotations

import io
from typing import Any

__all__ = ["new_figure", "png_bytes"]


def new_figure(ncols: int = 1, *, width: float = 5.0, height: float = 3.6) -> tuple[Any, list[Any]]:
    """``ncols`` side-by-side axes (``width`` inches each), margins fitted to the labels."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def png_bytes(fig: Any, dpi: int = 100) -> bytes:
    """Render ``fig`` as PNG bytes (Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
