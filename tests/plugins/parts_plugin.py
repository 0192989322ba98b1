"""A user's plugin module for the plugin tests: one component of every registrable kind.

Loaded with ``nnspec train --plugins tests/plugins/parts_plugin.py``; each component leaves a
trace (a file, a metric column) so the tests can see it was used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch

import nnspec
from nnspec.optim import LossBase, OptimBase
from nnspec.schedules import ScheduleBase


class FocalSpec(LossBase):
    kind: Literal["focal"] = "focal"
    gamma: float = 2.0


class FocalLoss(torch.nn.Module):
    def __init__(self, gamma: float) -> None:
        super().__init__()
        self.gamma = gamma

    def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        ce = torch.nn.functional.cross_entropy(logits, y, reduction="none")
        return ((1 - torch.exp(-ce)) ** self.gamma * ce).mean()


class HeavyBallSpec(OptimBase):
    kind: Literal["heavy_ball"] = "heavy_ball"
    lr: float = 0.05
    momentum: float = 0.9


def heavy_ball(groups, *, lr: float, momentum: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(groups, lr=lr, momentum=momentum)


class HalvingSpec(ScheduleBase):
    kind: Literal["halving"] = "halving"
    times: int = 2


def halving(spec: HalvingSpec, optimizer: torch.optim.Optimizer, horizon) -> object:
    step = max(1, horizon.total_steps // (spec.times + 1))
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step, gamma=0.5)


def blobs(arg: str, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian blobs; ``arg`` is the number of samples."""
    rng = np.random.default_rng(seed)
    n = int(arg or 200)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 4)).astype(np.float32) + y[:, None] * 2.0
    return x, y


class MarkSpec(nnspec.CallbackBase):
    kind: Literal["mark_epochs"] = "mark_epochs"
    file: str = "marks.txt"


class MarkEpochs(nnspec.Callback):
    """Logs a column and writes one line per epoch into the run directory."""

    def __init__(self, file: str) -> None:
        self.file = file

    def on_validation_end(self, state: nnspec.FitState) -> None:
        state.log({"plugin_mark": float(state.epoch)})

    def on_epoch_end(self, state: nnspec.FitState) -> None:
        if state.is_main_process:
            with Path(state.run_dir, self.file).open("a") as f:
                f.write(f"{state.epoch}\n")


nnspec.register_loss("focal", FocalLoss, FocalSpec, tasks=("classification",), logits=True)
nnspec.register_optimizer("heavy_ball", heavy_ball, HeavyBallSpec)
nnspec.register_schedule("halving", halving, HalvingSpec)
nnspec.register_source("blobs", blobs)
nnspec.register_callback("mark_epochs", MarkEpochs, MarkSpec)


def error_rate(y: np.ndarray, p: np.ndarray) -> float:
    """Share of wrong predictions (``p``: class probabilities)."""
    return float((p.argmax(axis=1) != y).mean())


nnspec.register_metric("error_rate", tasks=["classification"], higher_is_better=False)(error_rate)
