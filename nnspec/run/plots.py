"""PNG plots of a run, written through the run's writer (see :mod:`nnspec.figures`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nnspec.figures import new_figure
from nnspec.run.outputs import RunWriter

__all__ = ["plot_curves", "plot_lr", "plot_confusion", "CURVES_PNG", "LR_PNG", "CONFUSION_PNG"]

# where a run's plots go (relative to the run directory)
CURVES_PNG = "plots/curves.png"
LR_PNG = "plots/lr.png"
CONFUSION_PNG = "plots/confusion.png"


def plot_curves(writer: RunWriter, rows: Sequence[dict[str, Any]], metric: str | None) -> None:
    """Loss curves (train/val) and one validation metric against the epoch (MON-1)."""
    if not rows:
        return
    fig, axes = new_figure(2 if metric else 1)
    epochs = [r["epoch"] for r in rows]
    marker = "." if len(rows) <= 50 else None  # dots help a short run, clutter a long one
    for key in ("train_loss", "val_loss"):
        if key in rows[0]:
            axes[0].plot(epochs, [r.get(key) for r in rows], marker=marker, label=key)
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("loss")
    axes[0].legend()
    if metric:
        axes[1].plot(epochs, [r.get(metric) for r in rows], marker=marker, color="C2")
        axes[1].set_xlabel("epoch")
        axes[1].set_ylabel(metric)
    writer.save_figure(CURVES_PNG, fig)


def plot_lr(writer: RunWriter, lrs: Sequence[float], rel: str = LR_PNG) -> None:
    """LR against the optimizer step."""
    fig, (ax,) = new_figure()
    ax.plot(range(len(lrs)), lrs)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("learning rate")
    writer.save_figure(rel, fig)


def plot_confusion(
    writer: RunWriter, matrix: list[list[int]], names: Sequence[str], rel: str = CONFUSION_PNG
) -> None:
    """Confusion matrix of the test split (classification): counts, rows = true class (``rel``:
    the file, one per classification output of a model with several).

    Drawn here rather than with scikit-learn's ConfusionMatrixDisplay, which goes through pyplot
    (see :mod:`nnspec.figures`); the matrix itself comes from scikit-learn.
    """
    n = len(matrix)
    side = min(3.0 + 0.35 * n, 9.0)
    fig, (ax,) = new_figure(width=side + 0.5, height=side)
    top = max((max(row) for row in matrix), default=0)
    ax.imshow(matrix, cmap="Blues", vmin=0, vmax=max(top, 1))
    if n <= 30:  # beyond that the numbers are unreadable: the colours carry it
        for i, row in enumerate(matrix):
            for j, count in enumerate(row):
                color = "white" if count > top / 2 else "black"
                ax.text(j, i, str(count), ha="center", va="center", color=color, fontsize=8)
    ticks = range(n)
    labels = [str(x) for x in names]
    crowded = n > 10 or max((len(x) for x in labels), default=0) * n > 40  # labels would overlap
    ax.set_xticks(ticks, labels, rotation=90 if crowded else 0)
    ax.set_yticks(ticks, labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("test confusion matrix")
    writer.save_figure(rel, fig)
