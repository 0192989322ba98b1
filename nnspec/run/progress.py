"""Progress display, a training callback: a live rich bar on a terminal, one plain line per epoch
otherwise (CI, log files), or nothing.

The run layer also prints through it (resume notes, the final line, callbacks' messages via
``FitState.message``), and closes it after the run's final line.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, TextIO

from nnspec.run.callbacks import Callback, FitState

__all__ = ["Progress", "BarProgress", "make_progress", "format_row", "BAR_EVERY"]

BAR_EVERY = 8  # optimizer steps between bar updates: a redraw per step costs more than it shows


def format_row(row: Mapping[str, Any]) -> str:
    """One log line for an epoch row: ``epoch 3/30  train_loss 0.41  val_loss 0.38 ...``."""
    parts = [f"epoch {row['epoch']}/{row['epochs']}"]
    for key, value in row.items():
        if key in ("epoch", "epochs", "step"):
            continue
        parts.append(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}")
    return "  ".join(parts)


class Progress(Callback):
    """Plain progress: one line per epoch on ``stream`` (nothing per step); ``None``: silent."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def on_epoch_end(self, state: FitState) -> None:
        if self.stream is not None:
            print(format_row(state.metrics), file=self.stream, flush=True)

    def message(self, text: str) -> None:
        """A one-off line (resume notes, monitor warnings, final metrics)."""
        if self.stream is not None:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        """The run is over (after its final line)."""


class BarProgress(Progress):
    """A live rich progress bar (optimizer steps of the epoch) with the last epoch's metrics."""

    every_n_steps = BAR_EVERY

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress

        super().__init__(sys.stdout)
        self.console = Console()
        self.bar = RichProgress(
            TextColumn("[bold]epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"),
            console=self.console,
            transient=False,
        )
        self.task: Any = None
        self.first_step = 0  # the run's step count when the epoch began
        self.total = 0  # the epoch's steps
        self.info = ""  # the last epoch's metrics
        self.bar.start()

    def on_epoch_start(self, state: FitState) -> None:
        label = f"{state.epoch}/{state.max_epochs}"
        total, self.first_step = state.steps_per_epoch, state.step
        self.total = total
        if self.task is None:
            self.task = self.bar.add_task("train", total=total, epoch=label, info="")
        else:
            # reset replaces the task's fields: the last epoch's metrics go with it again
            self.bar.reset(self.task, total=total, epoch=label, info=self.info)

    def on_step_end(self, state: FitState) -> None:
        # the steps done this epoch (hooks fire at multiples of the run's step count, not the
        # epoch's, and an epoch's steps need not be a multiple of BAR_EVERY)
        self.bar.update(self.task, completed=min(state.step - self.first_step, self.total))

    def on_epoch_end(self, state: FitState) -> None:
        row = state.metrics
        info = "  ".join(
            f"{k} {v:.4g}" for k, v in row.items() if isinstance(v, float) and k != "time"
        )
        self.info = info
        self.bar.update(self.task, completed=state.step - self.first_step, info=info)
        self.console.print(format_row(row), highlight=False)

    def message(self, text: str) -> None:
        self.console.print(text, highlight=False)

    def close(self) -> None:
        self.bar.stop()


def make_progress(kind: str) -> Progress:
    """``auto`` -> bar on a TTY, plain lines otherwise; ``none`` prints nothing."""
    if kind == "auto":
        kind = "bar" if sys.stdout.isatty() else "plain"
    if kind == "bar":
        return BarProgress()
    return Progress(sys.stdout if kind == "plain" else None)
