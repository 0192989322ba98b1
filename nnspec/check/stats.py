"""Facts about the training split for the data-aware lint rules (DATA-4, INIT-8)."""

from __future__ import annotations

from pathlib import Path

import torch

from nnspec.lint.finding import DataStats
from nnspec.spec.experiment import ExperimentSpec

__all__ = ["data_stats"]


def data_stats(spec: ExperimentSpec, *, base: Path | None = None) -> DataStats:
    """Load the data the way training will (trainer's loader) and summarise the training split.

    Args:
        spec: The experiment.
        base: Folder that relative data paths resolve against (the spec file's folder).

    Returns:
        Class counts (classification/binary) and per-feature mean/std of the inputs as the model
        sees them (after the spec's standardisation, if any).
    """
    from nnspec.run.data import prepare_data

    train = prepare_data(spec, base=base).train
    x = train.x.reshape(len(train), -1).double()
    counts = None
    if spec.task == "classification":
        counts = tuple(int(c) for c in torch.bincount(train.y.long().reshape(-1)))
    elif spec.task == "binary":
        pos = int(train.y.sum())
        counts = (len(train) - pos, pos)
    return DataStats(
        class_counts=counts,
        feature_mean=tuple(x.mean(0).tolist()),
        feature_std=tuple(x.std(0, unbiased=False).tolist()),
    )
