"""Several model outputs: what each one is trained for.

A model with one output keeps the experiment's ``task``, ``loss`` and ``train.metrics``. A model
whose ``outputs`` is a mapping declares, per output (the name of the layer whose output it is):
its ``task``, its ``target`` column (default: the output's name), its ``loss``, the loss's
``weight`` in the total and its ``metrics``::

    outputs:
      segment: {task: classification, target: segment, metrics: [accuracy]}
      spend: {task: regression, weight: 0.5}

The total loss is ``sum(weight * loss)`` over the outputs; metric and monitor names are
``val_<output>_<metric>`` and ``val_<output>_loss``, plus the weighted total ``val_loss``.
Pure data: no torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from nnspec.spec.base import NonNegFloat, Spec
from nnspec.spec.metrics import TASK_METRICS, metric_column, metric_info, metric_names
from nnspec.spec.optim import LOSS_TASKS, LossField, LossSpec, resolve_loss_kind

__all__ = [
    "Task",
    "OutputSpec",
    "declared_outputs",
    "output_metrics",
    "output_monitor_names",
    "output_mode",
    "output_problems",
]

Task = Literal["classification", "binary", "multilabel", "regression"]


class OutputSpec(Spec):
    """One output of a model with several: its task, target, loss, loss weight and metrics."""

    task: Task = Field(default="classification", description="This output's task.")
    target: str | None = Field(
        default=None, description="The table column this output predicts (default: its name)."
    )
    loss: LossField = Field(default_factory=LossSpec, description="auto: from the task.")
    weight: NonNegFloat = Field(default=1.0, description="Weight of this loss in the total.")
    metrics: tuple[str, ...] | None = Field(
        default=None, description="Metrics logged as val_<output>_<metric> (default: the task's)."
    )

    def target_column(self, name: str) -> str:
        """The column this output (named ``name``) predicts."""
        return self.target if self.target is not None else name


def declared_outputs(model: Any) -> Mapping[str, OutputSpec] | None:
    """``model.outputs`` when it declares tasks per output, else None (one output)."""
    outputs = getattr(model, "outputs", None)
    return outputs if isinstance(outputs, Mapping) else None


def output_metrics(name: str, out: OutputSpec, monitors: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The metrics of output ``name``: its own (or the task's), then each monitored one."""
    names = out.metrics if out.metrics is not None else TASK_METRICS[out.task]
    prefix = metric_column("val", "", name)
    extra = (m[len(prefix) :] for m in monitors if m.startswith(prefix))
    return (*names, *(m for m in dict.fromkeys(extra) if m not in names and m != "loss"))


def output_monitor_names(outputs: Mapping[str, OutputSpec]) -> tuple[str, ...]:
    """What a monitor may watch: the total losses, then per output its loss and every metric of
    its task (``val_<output>_<metric>``)."""
    names = ["val_loss", "train_loss"]
    for name, out in outputs.items():
        names.append(metric_column("val", "loss", name))
        names += [metric_column("val", m, name) for m in metric_names(out.task)]
    return tuple(names)


def output_mode(
    monitor: str, mode: str, outputs: Mapping[str, OutputSpec]
) -> Literal["min", "max"]:
    """``auto`` -> min for losses and errors, max for scores, for a per-output monitor too."""
    if mode != "auto":
        return mode  # type: ignore[return-value]
    for name in outputs:
        prefix = metric_column("val", "", name)
        if monitor.startswith(prefix):
            info = metric_info(monitor[len(prefix) :])
            return "max" if info is not None and info.higher_is_better else "min"
    return "min"  # val_loss, train_loss


def output_problems(exp: Any) -> list[tuple[tuple[str | int, ...], str, Any]]:
    """Cross-section problems of a model with several outputs: each loss fits its task, each
    metric its task, the monitors name an output's metric; metrics and targets are per output."""
    outputs = declared_outputs(exp.model)
    if outputs is None:
        return []
    found: list[tuple[tuple[str | int, ...], str, Any]] = []
    for name, out in outputs.items():
        loc: tuple[str | int, ...] = ("model", "outputs", name)
        loss = resolve_loss_kind(out.task, out.loss)
        if loss in LOSS_TASKS and out.task not in LOSS_TASKS[loss]:
            why = f"loss '{loss}' does not fit task '{out.task}' (LOSS-1)"
            found.append(((*loc, "loss", "kind"), why, loss))
        for i, metric in enumerate(out.metrics or ()):
            info = metric_info(metric)
            if info is None or out.task not in info.tasks:
                found.append(((*loc, "metrics", i), f"unknown metric '{metric}' for task "
                              f"'{out.task}'; expected one of {', '.join(metric_names(out.task))}",
                              metric))  # fmt: skip
    data = getattr(exp, "data", None)
    if data is not None and data.target is not None:
        found.append((("data", "target"), "a model with several outputs names each output's "
                      "target column in model.outputs.<name>.target (default: the output's "
                      "name); fix: remove data.target", data.target))  # fmt: skip
    if exp.train.metrics is not None:
        found.append((("train", "metrics"), "a model with several outputs lists metrics per "
                      "output; fix: move them to model.outputs.<name>.metrics",
                      list(exp.train.metrics)))  # fmt: skip
    choices = output_monitor_names(outputs)
    es = exp.train.early_stopping
    if es.enabled and es.monitor not in choices:
        found.append((("train", "early_stopping", "monitor"),
                      f"unknown monitor '{es.monitor}' for outputs {', '.join(outputs)} "
                      f"(choices: {', '.join(choices)})", es.monitor))  # fmt: skip
    return found
