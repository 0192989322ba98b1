"""The row split of a source (DATA-7) and the standardisation of regression targets, shared by
every kind of source (:mod:`nnspec.run.data`, :mod:`nnspec.run.named`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from nnspec.errors import DataError, Problem
from nnspec.run.tasks import TASKS
from nnspec.spec.experiment import ExperimentSpec

__all__ = ["split_indices", "target_moments"]


def split_indices(
    n: int, y: np.ndarray, spec: ExperimentSpec, task: str | None = None
) -> list[np.ndarray]:
    """Train, validation and test row indices (DATA-7): seeded, shuffled, stratified on ``y``
    for a single-label ``task`` (default: the spec's) unless ``data.split.stratify`` says."""
    from sklearn.model_selection import train_test_split

    s = spec.data.split
    stratify = s.stratify if s.stratify is not None else TASKS[task or spec.task].single_label
    idx = np.arange(n)
    labels = y if stratify and y.ndim == 1 else None
    parts: list[np.ndarray] = []
    rest, rest_labels = idx, labels
    for frac in (s.test, s.val):  # DATA-7: seeded, shuffled, stratified for classification
        size = round(frac * n)  # an integer count: 0.2 of 1000 is exactly 200
        if size == 0:
            parts.append(np.array([], dtype=np.int64))
            continue
        try:
            rest, part = train_test_split(
                rest,
                test_size=size,
                random_state=spec.seed,
                shuffle=True,
                stratify=rest_labels,
            )
        except ValueError as e:
            raise DataError(
                Problem(("data", "split"), f"cannot split {n} samples: {e}", fix="use more data")
            ) from e
        rest_labels = labels[rest] if labels is not None else None
        parts.append(part)
    return [rest, parts[1], parts[0]]  # train, val, test


def target_moments(y: np.ndarray, train: np.ndarray, on: bool) -> tuple[np.ndarray, Any, Any]:
    """Regression targets standardised with the training split's float64 mean and std."""
    if not on:
        return y, None, None
    part = y[train].astype(np.float64)
    mean, std = part.mean(axis=0), part.std(axis=0)
    mean, std = mean.astype(np.float32), np.where(std > 1e-8, std, 1.0).astype(np.float32)
    return ((y - mean) / std).astype(np.float32), torch.from_numpy(mean), torch.from_numpy(std)
