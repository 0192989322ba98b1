"""PNG plots of a run, written through the run's writer (see :mod:`nnspec.figures`), and
:func:`plot_run`, which draws a finished run's plots (a plot that fails is a warning)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nnspec.figures import new_figure
from nnspec.run.outputs import RunWriter

if TYPE_CHECKING:
    from nnspec.run.data import DataInfo
    from nnspec.run.guards import LoopState

__all__ = [
    "plot_run",
    "plot_curves",
    "plot_lr",
    "plot_confusion",
    "CURVES_PNG",
    "LR_PNG",
    "CONFUSION_PNG",
]

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


def plot_run(
    writer: RunWriter,
    state: LoopState,
    report: Mapping[str, Any],
    info: DataInfo,
    metric: str | None,
) -> list[str]:
    """The run's PNG plots: curves (``metric``: the validation column drawn beside the losses),
    LR and, per classification report, a confusion matrix. A plot that fails is a warning, listed
    in ``summary.json`` as ``plot_errors``, never a failed run: the model and the metrics are saved
    by then."""
    plots: list[tuple[str, Callable[..., None], tuple[Any, ...]]] = []
    if state.rows:  # none when a callback stopped the run before its first epoch
        plots.append((CURVES_PNG, plot_curves, (writer, state.rows, metric)))
        plots.append((LR_PNG, plot_lr, (writer, state.lrs)))
    if "confusion_matrix" in report:
        args = (writer, report["confusion_matrix"], info.class_names)
        plots.append((CONFUSION_PNG, plot_confusion, args))
    for name, head in info.outputs.items():  # several outputs: a report each
        if "confusion_matrix" in report.get(name, {}):
            rel = CONFUSION_PNG.replace(".png", f"_{name}.png")
            args = (writer, report[name]["confusion_matrix"], head.class_names, rel)
            plots.append((rel, plot_confusion, args))
    errors = []
    for rel, draw, draw_args in plots:
        try:
            draw(*draw_args)
        except Exception as e:  # a figure is not worth the run
            errors.append(f"{rel}: {type(e).__name__}: {e}")
            warnings.warn(
                f"{rel} was not written ({type(e).__name__}: {e}); the run's other outputs are "
                "complete; fix: check matplotlib's installation (import matplotlib.figure)",
                stacklevel=2,
            )
    return errors
