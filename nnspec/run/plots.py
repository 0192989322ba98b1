"""PNG plots of a run (matplotlib, Agg backend, written through the run's writer)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nnspec.run.outputs import RunWriter

__all__ = ["plot_curves", "plot_lr", "plot_confusion"]


def _figure(ncols: int = 1) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")  # files only: never open a window, works without a display
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(5 * ncols, 3.6))
    return fig, axes


def _close(fig: Any) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)


def plot_curves(writer: RunWriter, rows: Sequence[dict[str, Any]], metric: str | None) -> None:
    """Loss curves (train/val) and one validation metric against the epoch (MON-1)."""
    if not rows:
        return
    fig, axes = _figure(2 if metric else 1)
    ax_loss = axes[0] if metric else axes
    epochs = [r["epoch"] for r in rows]
    for key in ("train_loss", "val_loss"):
        if key in rows[0]:
            ax_loss.plot(epochs, [r.get(key) for r in rows], marker=".", label=key)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.legend()
    if metric:
        axes[1].plot(epochs, [r.get(metric) for r in rows], marker=".", color="C2")
        axes[1].set_xlabel("epoch")
        axes[1].set_ylabel(metric)
    writer.save_figure("plots/curves.png", fig)
    _close(fig)


def plot_lr(writer: RunWriter, lrs: Sequence[float], rel: str = "plots/lr.png") -> None:
    """LR against the optimizer step."""
    fig, ax = _figure()
    ax.plot(range(len(lrs)), lrs)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("learning rate")
    writer.save_figure(rel, fig)
    _close(fig)


def plot_confusion(writer: RunWriter, matrix: list[list[int]], names: Sequence[str]) -> None:
    """Confusion matrix of the test split (classification)."""
    import numpy as np
    from sklearn.metrics import ConfusionMatrixDisplay

    fig, ax = _figure()
    ConfusionMatrixDisplay(np.array(matrix), display_labels=list(names)).plot(ax=ax, colorbar=False)
    ax.set_title("test confusion matrix")
    writer.save_figure("plots/confusion.png", fig)
    _close(fig)
