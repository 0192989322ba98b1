"""Progress display and early stopping: small stateful helpers the loop calls once per epoch
(and, for the bar, every few batches).

Progress: a live rich bar on a terminal, one plain line per epoch otherwise (CI, log files).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Literal, TextIO

__all__ = ["EarlyStopping", "Progress", "make_progress", "format_row"]


@dataclass
class EarlyStopping:
    """Tracks the monitored metric (TRAIN-4); state is plain numbers for checkpoints."""

    monitor: str
    mode: Literal["min", "max"]
    patience: int
    min_delta: float
    enabled: bool
    best: float | None = None
    best_epoch: int = 0
    bad_epochs: int = 0

    def improved(self, value: float) -> bool:
        """Whether ``value`` beats the best by more than ``min_delta`` (updates the state)."""
        if value != value:  # NaN never improves
            better = False
        elif self.best is None:
            better = True
        elif self.mode == "min":
            better = value < self.best - self.min_delta
        else:
            better = value > self.best + self.min_delta
        return better

    def update(self, value: float, epoch: int) -> bool:
        """Record an epoch; returns True when it is the new best."""
        if self.improved(value):
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        """Patience exhausted (only when early stopping is enabled)."""
        return self.enabled and self.bad_epochs >= self.patience

    def state_dict(self) -> dict[str, Any]:
        """Plain-number state for checkpoints."""
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.bad_epochs = state["bad_epochs"]


def format_row(row: dict[str, Any]) -> str:
    """One log line for an epoch row: ``epoch 3/30  train_loss 0.41  val_loss 0.38 ...``."""
    parts = [f"epoch {row['epoch']}/{row['epochs']}"]
    for key, value in row.items():
        if key in ("epoch", "epochs", "step"):
            continue
        parts.append(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}")
    return "  ".join(parts)


class Progress:
    """Plain progress: one line per epoch on ``stream`` (nothing per batch)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def start(self, epoch: int, epochs: int, batches: int) -> None:
        """An epoch begins."""

    def advance(self, n: int) -> None:
        """``n`` more batches are done (the bar's update; plain output ignores it)."""

    def end_epoch(self, row: dict[str, Any]) -> None:
        """An epoch ended: print its row."""
        if self.stream is not None:
            print(format_row(row), file=self.stream, flush=True)

    def close(self) -> None:
        """Training ended."""

    def message(self, text: str) -> None:
        """A one-off line (resume notes, final metrics)."""
        if self.stream is not None:
            print(text, file=self.stream, flush=True)


class BarProgress(Progress):
    """A live rich progress bar with the last epoch's metrics."""

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
        self.bar.start()

    def start(self, epoch: int, epochs: int, batches: int) -> None:
        label = f"{epoch}/{epochs}"
        if self.task is None:
            self.task = self.bar.add_task("train", total=batches, epoch=label, info="")
        else:
            self.bar.reset(self.task, total=batches, epoch=label)

    def advance(self, n: int) -> None:
        self.bar.advance(self.task, n)

    def end_epoch(self, row: dict[str, Any]) -> None:
        info = "  ".join(
            f"{k} {v:.4g}" for k, v in row.items() if isinstance(v, float) and k != "time"
        )
        self.bar.update(self.task, info=info)
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
