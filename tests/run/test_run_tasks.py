"""nnspec.run.tasks: one entry per task, and the head-bias priors they give (INIT-7/8)."""

from __future__ import annotations

import typing

import torch

from nnspec.run.tasks import TASKS
from nnspec.spec.experiment import Task


def test_every_task_of_the_spec_has_an_entry() -> None:
    assert set(TASKS) == set(typing.get_args(Task))


def test_prior_logits_reproduce_the_training_frequencies() -> None:
    cls = TASKS["classification"]
    y = torch.tensor([0, 0, 0, 1, 2, 2])
    assert cls.counts is not None and cls.prior_logits is not None
    probs = torch.softmax(cls.prior_logits(cls.counts(y, 3), len(y)), 0)
    assert torch.allclose(probs, torch.tensor([3, 1, 2]) / 6)
    multi = TASKS["multilabel"]
    y2 = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [1.0, 0.0]])
    assert multi.counts is not None and multi.prior_logits is not None
    rates = torch.sigmoid(multi.prior_logits(multi.counts(y2, 2), len(y2)))
    assert torch.allclose(rates, torch.tensor([0.75, 0.25]))


def test_labels_from_probabilities() -> None:
    p = torch.tensor([[0.2, 0.7, 0.1], [0.6, 0.3, 0.1]])
    assert TASKS["classification"].labels(p).tolist() == [1, 0]  # type: ignore[misc]
    assert TASKS["binary"].labels(torch.tensor([[0.7], [0.2]])).tolist() == [1, 0]  # type: ignore[misc]
    assert TASKS["multilabel"].labels(torch.tensor([[0.7, 0.2]])).tolist() == [[1, 0]]  # type: ignore[misc]
    assert TASKS["regression"].probabilities is None and not TASKS["regression"].single_label
