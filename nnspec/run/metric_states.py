"""Mergeable metric states: a split is evaluated batch by batch, never concatenated as outputs.

A :class:`Metric` holds tensors declared with :meth:`Metric.add_state`: ``sum`` states (counts,
confusion matrices, sums of errors) are added on :meth:`~Metric.merge` and ``all_reduce``'d across
ranks; ``cat`` states keep rows (scores for AUROC/PR-AUC) and are concatenated, across ranks with
``all_gather``. ``update(target, prediction)`` sees one batch, ``compute()`` gives the value.

Why our own states and not torchmetrics: the sufficient statistics of nnspec's metrics are a few
small tensors (a confusion matrix, per-label counts, sums of errors), written here in a few lines
each; torchmetrics would be a new core dependency whose releases pin torch and
lightning-utilities; and its conventions differ from scikit-learn's in places nnspec keeps
(macro averages over the labels seen, ``zero_division=0``). Ranking metrics (AUROC, PR-AUC) keep
every score as a ``cat`` state and call scikit-learn at ``compute``: exact, not a binned
approximation, and still mergeable. Tests compare every metric with scikit-learn.

Every state receives the same ``(target, prediction)`` per batch (see
:class:`~nnspec.run.metrics.MetricSet`): class ids / 0-1 targets / values in the user's units,
and probabilities (classification, binary, multilabel) or values (regression).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

__all__ = [
    "Metric",
    "MetricContext",
    "MeanLoss",
    "ConfusionMatrix",
    "TopK",
    "Scores",
    "LabelCounts",
    "Moments",
    "FunctionMetric",
]


@dataclass(frozen=True)
class MetricContext:
    """What a metric may need to know about the outputs it is given.

    Attributes:
        task: classification, binary, multilabel or regression.
        n_outputs: classes (classification), labels (multilabel) or targets (regression); 1 for
            binary.
        threshold: binary/multilabel: a probability above it is a positive prediction.
        shift: regression: a value near each target's mean (the training mean), subtracted before
            sums of squares so they do not cancel.
    """

    task: str
    n_outputs: int
    threshold: float = 0.5
    shift: torch.Tensor | None = None


class Metric:
    """A metric accumulated over batches. Subclasses declare their state in ``__init__`` with
    :meth:`add_state` and implement :meth:`update` and :meth:`compute`; merging and the
    cross-rank reduction come from the declared states.

    Example:
        >>> class Mean(Metric):
        ...     def __init__(self, context=None):
        ...         super().__init__()
        ...         self.add_state("total", torch.zeros((), dtype=torch.float64), "sum")
        ...         self.add_state("n", torch.zeros((), dtype=torch.int64), "sum")
        ...     def update(self, target, prediction):
        ...         self.total += prediction.double().sum()
        ...         self.n += prediction.numel()
        ...     def compute(self):
        ...         return float(self.total / self.n)
        >>> a, b = Mean(), Mean()
        >>> a.update(None, torch.tensor([1.0, 2.0])); b.update(None, torch.tensor([6.0]))
        >>> a.merge(b); a.compute()
        3.0
    """

    def __init__(self, context: MetricContext | None = None) -> None:
        # ``context``: what the metric was built for; subclasses keep what they need of it
        self._reduce: dict[str, Literal["sum", "cat"]] = {}

    def add_state(
        self, name: str, default: torch.Tensor | None, reduce: Literal["sum", "cat"]
    ) -> None:
        """Declare ``self.<name>``: a tensor (``sum``) or a list of row blocks (``cat``)."""
        self._reduce[name] = reduce
        setattr(self, name, default if reduce == "sum" else [])

    def update(self, target: torch.Tensor, prediction: torch.Tensor) -> None:
        raise NotImplementedError

    def compute(self) -> float:
        raise NotImplementedError

    def to(self, device: torch.device) -> Metric:
        """Move the ``sum`` states (``cat`` rows stay where their batches were)."""
        for name, how in self._reduce.items():
            if how == "sum":
                setattr(self, name, getattr(self, name).to(device))
        return self

    def rows(self, name: str) -> torch.Tensor:
        """A ``cat`` state's rows as one tensor (empty when no batch was seen)."""
        blocks = getattr(self, name)
        return torch.cat(blocks) if blocks else torch.empty(0)

    def merge(self, other: Metric) -> None:
        """Add ``other``'s batches to this state (another worker's or rank's share)."""
        for name, how in self._reduce.items():
            mine, theirs = getattr(self, name), getattr(other, name)
            if how == "sum":
                setattr(self, name, mine + theirs.to(mine.device))
            else:
                mine.extend(theirs)

    def sync(self, group: Any = None) -> None:
        """Reduce this state over the ranks of ``group`` (``torch.distributed``), in place.

        ``sum`` states are ``all_reduce``'d; ``cat`` rows are ``all_gather``'ed in rank order.
        A no-op without an initialised process group of more than one rank. Every rank calls
        it (a collective), after its last ``update``.
        """
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size(group) < 2:
            return
        for name, how in self._reduce.items():
            if how == "sum":
                dist.all_reduce(getattr(self, name), op=dist.ReduceOp.SUM, group=group)
            else:
                setattr(self, name, [_gather_rows(self.rows(name), group)])


def _gather_rows(rows: torch.Tensor, group: Any) -> torch.Tensor:
    """Every rank's rows, concatenated in rank order (padded to one length for all_gather)."""
    import torch.distributed as dist

    world = dist.get_world_size(group)
    size = torch.tensor([rows.numel()], dtype=torch.int64, device=rows.device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size, group=group)
    counts = [int(s) for s in sizes]
    flat = torch.zeros(max(counts), dtype=rows.dtype, device=rows.device)
    flat[: rows.numel()] = rows.flatten()
    parts = [torch.empty_like(flat) for _ in range(world)]
    dist.all_gather(parts, flat, group=group)
    tail = rows.shape[1:]
    return torch.cat([p[:c].reshape(-1, *tail) for p, c in zip(parts, counts, strict=True)])


def _zeros(*shape: int, dtype: torch.dtype = torch.int64) -> torch.Tensor:
    return torch.zeros(shape, dtype=dtype)


class MeanLoss(Metric):
    """The loss of a split as the loss function's own mean over all of it: each batch's mean
    weighted by its normaliser (samples, elements, or the class weights of its targets)."""

    total: torch.Tensor
    weight: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.add_state("total", _zeros(dtype=torch.float64), "sum")
        self.add_state("weight", _zeros(dtype=torch.float64), "sum")

    def update(self, target: torch.Tensor, prediction: torch.Tensor) -> None:
        """``target``: the batch's normaliser; ``prediction``: the batch's mean loss."""
        w = target.double()
        self.total += prediction.double() * w
        self.weight += w

    def compute(self) -> float:
        return float(self.total / self.weight)


class ConfusionMatrix(Metric):
    """Counts of (true class, predicted class); binary: two classes at the threshold."""

    matrix: torch.Tensor

    def __init__(self, context: MetricContext) -> None:
        super().__init__()
        self.binary = context.task == "binary"
        self.n = 2 if self.binary else context.n_outputs
        self.threshold = context.threshold
        self.add_state("matrix", _zeros(self.n, self.n), "sum")

    def update(self, target: torch.Tensor, prediction: torch.Tensor) -> None:
        if self.binary:
            pred, true = (prediction > self.threshold).long(), (target > 0.5).long()
        else:
            pred, true = prediction.argmax(1), target.long()
        cells = torch.bincount(true * self.n + pred, minlength=self.n * self.n)
        self.matrix += cells.reshape(self.n, self.n)

    def compute(self) -> float:
        """Accuracy."""
        return float(self.matrix.diagonal().sum().double() / self.matrix.sum().clamp(min=1))


class TopK(Metric):
    """Samples whose target is among the ``k`` most probable classes."""

    correct: torch.Tensor
    count: torch.Tensor

    def __init__(self, context: MetricContext, k: int) -> None:
        super().__init__()
        if k >= context.n_outputs:  # as scikit-learn warns: the score is 1 whatever the model
            warnings.warn(
                f"top_{k}_accuracy with {context.n_outputs} classes is always 1; fix: choose "
                f"k < {context.n_outputs} in train.metrics",
                UserWarning,
                stacklevel=2,
            )
        self.k = min(k, context.n_outputs)
        self.add_state("correct", _zeros(), "sum")
        self.add_state("count", _zeros(), "sum")

    def update(self, target: torch.Tensor, prediction: torch.Tensor) -> None:
        top = prediction.topk(self.k, dim=1).indices
        self.correct += (top == target.long()[:, None]).any(1).sum()
        self.count += len(target)

    def compute(self) -> float:
        return float(self.correct.double() / self.count.clamp(min=1))


class Scores(Metric):
    """Every (target, score) row, for ranking metrics and functions of whole splits."""

    target: list[torch.Tensor]
    score: list[torch.Tensor]

    def __init__(self, context: MetricContext | None = None) -> None:
        super().__init__()
        self.add_state("target", None, "cat")
        self.add_state("score", None, "cat")

    def update(self, target: torch.Tensor, prediction: torch.Tensor) -> None:
        self.target.append(target.detach())
        self.score.append(prediction.detach())

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(targets, scores) as float64/int64 NumPy arrays on the CPU."""
        return self.rows("target").cpu().numpy(), self.rows("score").cpu().double().numpy()

    def compute(self) -> float:
        raise TypeError("Scores holds rows for other metrics; it has no value of its own")


class LabelCounts(Metric):
    """Multilabel: per-label true/false positives and false negatives, and exact rows."""

    tp: torch.Tensor
    fp: torch.Tensor
    fn: torch.Tensor
    support: torch.Tensor
    exact: torch.Tensor
    count: torch.Tensor

    def __init__(self, context: MetricContext) -> None:
        super().__init__()
        self.threshold = context.threshold
        n = context.n_outputs
        for name in ("tp", "fp", "fn", "support"):
            self.add_state(name, _zeros(n), "sum")
        self.add_state("exact", _zeros(), "sum")
        self.add_state("count", _zeros(), "sum")

    def update(self, target: torch.Tensor, prediction: torch.Tensor) -> None:
        pred, true = prediction > self.threshold, target > 0.5
        self.tp += (pred & true).sum(0)
        self.fp += (pred & ~true).sum(0)
        self.fn += (~pred & true).sum(0)
        self.support += true.sum(0)
        self.exact += (pred == true).all(1).sum()
        self.count += len(target)

    def compute(self) -> float:
        """Subset accuracy."""
        return float(self.exact.double() / self.count.clamp(min=1))


class Moments(Metric):
    """Regression: per-output sums of errors and of (shifted) targets, in float64."""

    count: torch.Tensor
    abs_err: torch.Tensor
    sq_err: torch.Tensor
    y: torch.Tensor
    yy: torch.Tensor

    def __init__(self, context: MetricContext) -> None:
        super().__init__()
        n, f64 = context.n_outputs, torch.float64
        shift = context.shift
        self.shift = shift.double().reshape(-1) if shift is not None else _zeros(n, dtype=f64)
        self.add_state("count", _zeros(), "sum")
        for name in ("abs_err", "sq_err", "y", "yy"):
            self.add_state(name, _zeros(n, dtype=f64), "sum")

    def update(self, target: torch.Tensor, prediction: torch.Tensor) -> None:
        y = target.double().reshape(len(target), -1)
        err = y - prediction.double().reshape(len(prediction), -1)
        centred = y - self.shift.to(y.device)
        self.count += len(y)
        self.abs_err += err.abs().sum(0)
        self.sq_err += (err * err).sum(0)
        self.y += centred.sum(0)
        self.yy += (centred * centred).sum(0)

    def compute(self) -> float:
        """Mean absolute error averaged over outputs."""
        return float((self.abs_err / self.count.clamp(min=1)).mean())


class FunctionMetric(Scores):
    """A user function ``fn(y_true, prediction) -> float`` on a whole split's NumPy arrays
    (scikit-learn's signature), fed by batches: the rows are kept and merged like ``Scores``."""

    def __init__(self, fn: Callable[[np.ndarray, np.ndarray], float]) -> None:
        super().__init__()
        self.fn = fn

    def compute(self) -> float:
        return float(self.fn(*self.arrays()))
