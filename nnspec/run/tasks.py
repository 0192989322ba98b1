"""What each task means once a model has outputs: one table instead of a chain of ``if task ==``.

The spec's ``task`` fixes the head and the loss (OUT-*, LOSS-*, in nnspec/compile); here it fixes
what the run does with targets and outputs: how logits become probabilities, how probabilities
become labels, what the training targets count (class or positive counts, for 'balanced' loss
weights and the head's bias, INIT-7/8) and whether targets are class labels (stratified splits,
class names, the per-class report).

Example:
    >>> import torch
    >>> TASKS["binary"].labels(TASKS["binary"].probabilities(torch.tensor([[2.0], [-1.0]])), 0.5)
    tensor([1, 0])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import torch

__all__ = ["TaskKind", "TASKS"]


def _softmax(out: torch.Tensor) -> torch.Tensor:
    return torch.softmax(out, dim=1)


def _argmax(p: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    return p.argmax(1)  # the most probable class: no threshold


def _first_over(p: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    return (p[:, 0] > threshold).long()


def _each_over(p: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    return (p > threshold).long()


def _class_counts(y: torch.Tensor, n_outputs: int) -> torch.Tensor:
    return torch.bincount(y, minlength=n_outputs)


def _positive_counts(y: torch.Tensor, n_outputs: int) -> torch.Tensor:
    return y.sum(0)


def _log_priors(counts: torch.Tensor, n: int) -> torch.Tensor:
    """INIT-8: log class priors (softmax of them gives the class frequencies)."""
    c = counts.float().clamp(min=1)  # an empty class keeps a finite bias
    return torch.log(c / c.sum())


def _log_odds(counts: torch.Tensor, n: int) -> torch.Tensor:
    """INIT-8: log(positives / negatives) per output (sigmoid of it gives the positive rate)."""
    pos = counts.float()
    return torch.log(pos.clamp(min=1) / (n - pos).clamp(min=1))


@dataclass(frozen=True)
class TaskKind:
    """One task's handling of targets and outputs.

    Attributes:
        single_label: each target is one class label (classification, binary): stratified
            split, class names, per-class report. Multilabel targets are 0/1 per label.
        probabilities: model outputs -> probabilities; ``None`` for regression (values).
        labels: (probabilities, threshold) -> predicted label per sample (multilabel: one 0/1
            per output); binary and multilabel compare with ``train.threshold``.
        counts: (training targets, outputs) -> class (or positive) counts per output, for
            balanced loss weights and the head's bias; ``None`` for regression.
        prior_logits: (counts, samples) -> the head bias that makes the initial outputs the
            training frequencies (INIT-8); ``None`` for regression (target mean, INIT-7).
        squeeze_targets: targets are one column that metrics take as a vector (binary).
    """

    single_label: bool
    probabilities: Callable[[torch.Tensor], torch.Tensor] | None
    labels: Callable[[torch.Tensor, float], torch.Tensor] | None
    counts: Callable[[torch.Tensor, int], torch.Tensor] | None
    prior_logits: Callable[[torch.Tensor, int], torch.Tensor] | None
    squeeze_targets: bool = False


TASKS: Mapping[str, TaskKind] = MappingProxyType(
    {
        "classification": TaskKind(True, _softmax, _argmax, _class_counts, _log_priors),
        "binary": TaskKind(
            True, torch.sigmoid, _first_over, _positive_counts, _log_odds, squeeze_targets=True
        ),
        "multilabel": TaskKind(False, torch.sigmoid, _each_over, _positive_counts, _log_odds),
        "regression": TaskKind(False, None, None, None, None),
    }
)
