"""Cross-section rules of an experiment: checks that read several top-level sections (task and
loss, model and loss, train/schedule/data monitors, metrics, outputs, LR scaling), called by
:class:`~nnspec.spec.experiment.ExperimentSpec`'s model validator and, section by section, by
``nnspec.io.validate`` when some field of a spec is invalid."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from nnspec.spec.heads import declared_outputs, output_problems
from nnspec.spec.metrics import (
    THRESHOLD_TASKS,
    is_monitor,
    metric_info,
    metric_names,
    monitor_names,
    resolve_mode,
    suggest,
)
from nnspec.spec.model import head_index
from nnspec.spec.optim import LOGIT_LOSSES, LOSS_TASKS, LossSpec, resolve_loss_kind
from nnspec.spec.parallel import scaling_needs_lr

if TYPE_CHECKING:
    from nnspec.spec.experiment import ExperimentSpec

__all__ = ["TRAINING_RULES", "TrainingRule", "check_training_rules", "training_rule_errors"]


# ---- cross-section rules of an experiment (called by ExperimentSpec's model validator) ----

_SQUASHING = frozenset({"softmax", "sigmoid", "log_softmax"})


def _rule(loc: tuple[str | int, ...], message: str, value: object) -> InitErrorDetails:
    err = PydanticCustomError("nnspec_rule", message)
    return InitErrorDetails(type=err, loc=loc, input=value)


def _loss_fits_task(exp: Any) -> list[InitErrorDetails]:
    loss = resolve_loss_kind(exp.task, exp.loss)
    if exp.task in LOSS_TASKS[loss]:
        return []
    message = (
        f"loss '{loss}' does not fit task '{exp.task}' (LOSS-1); expected one of: "
        + ", ".join(k for k, tasks in LOSS_TASKS.items() if exp.task in tasks)
        + " (or auto)"
    )
    return [_rule(("loss", "kind"), message, loss)]


def _loss_weights(exp: Any) -> list[InitErrorDetails]:
    # Class weights a loss would silently ignore are refused: cross_entropy takes class_weights,
    # bce_with_logits takes pos_weight (where `class_weights: balanced` means the same as
    # `pos_weight: balanced`), and the regression losses take neither.
    loss, spec = resolve_loss_kind(exp.task, exp.loss), exp.loss
    if not isinstance(spec, LossSpec):
        return []  # a user-registered loss has its own fields
    weights, pos = spec.class_weights, spec.pos_weight
    on = f"loss '{loss}' (task '{exp.task}')"
    if loss == "cross_entropy" and pos != "none":
        field, why = "pos_weight", f"pos_weight applies to bce_with_logits, not to {on}"
        fix = "use loss.class_weights (balanced, or one weight per class)"
    elif loss == "bce_with_logits" and isinstance(weights, tuple):
        field = "class_weights"
        why = f"explicit class_weights apply to cross_entropy; {on} weighs its positives"
        fix = "set loss.pos_weight (the positives' weight relative to the negatives) or balanced"
    elif loss == "bce_with_logits" and weights == "balanced" and pos != "none":
        field = "class_weights"
        why = "class_weights: balanced sets pos_weight (n_neg / n_pos), and pos_weight is set too"
        fix = "keep one of them"
    elif loss not in LOGIT_LOSSES and (weights != "none" or pos != "none"):
        field = "class_weights" if weights != "none" else "pos_weight"
        why, fix = f"{field} weighs classes, and {on} has none", f"remove loss.{field}"
    else:
        return []
    value = getattr(spec, field)
    return [
        _rule(
            ("loss", field),
            f"{why}; fix: {fix}",
            list(value) if isinstance(value, tuple) else value,
        )
    ]


def _double_activation(exp: Any) -> list[InitErrorDetails]:
    # OUT-3/4, CONF-20: logit losses apply softmax/sigmoid themselves; a second one in the model
    # squashes the logits twice and training silently stalls.
    loss = resolve_loss_kind(exp.task, exp.loss)
    if loss not in LOGIT_LOSSES:
        return []
    layers = exp.model.layers
    head = head_index(layers)
    found: list[InitErrorDetails] = []
    for i in range(head if head is not None else 0, len(layers)):
        act = getattr(layers[i], "activation", None)
        kind = getattr(act, "kind", None)
        if kind in _SQUASHING:
            found.append(
                _rule(
                    ("model", "layers", i, "activation"),
                    f"double activation: {kind} on the output with loss '{loss}', which applies "
                    f"{'softmax' if loss == 'cross_entropy' else 'sigmoid'} itself on raw logits "
                    "(OUT-3/4); fix: remove the activation from the last layer "
                    "(predict_proba applies it at inference)",
                    kind,
                )
            )
    return found


def _monitor_rules(exp: Any) -> list[InitErrorDetails]:
    if declared_outputs(getattr(exp, "model", None)) is not None:
        return []  # per-output monitors: _output_rules
    found: list[InitErrorDetails] = []
    names = monitor_names(exp.task, exp.train.metrics)
    watchers: list[tuple[tuple[str, ...], str, str, bool]] = []
    es = exp.train.early_stopping
    if es.enabled:
        watchers.append((("train", "early_stopping"), es.monitor, es.mode, True))
    if exp.schedule.kind == "reduce_on_plateau":
        sch = exp.schedule
        watchers.append((("schedule",), sch.monitor, sch.mode, True))
    for loc, monitor, mode, _ in watchers:
        if not is_monitor(exp.task, monitor):
            info = metric_info(monitor[len("val_") :]) if monitor.startswith("val_") else None
            hint = suggest(monitor, names)
            why = (
                f"'{monitor}' is defined for {', '.join(sorted(info.tasks))}, not for task "
                f"'{exp.task}'" if info is not None else
                f"unknown metric '{monitor}' for task '{exp.task}'" + (f"; {hint}" if hint else "")
            )  # fmt: skip
            found.append(_rule((*loc, "monitor"), f"{why} (choices: {', '.join(names)})", monitor))
        elif mode != "auto" and mode != resolve_mode(monitor, "auto"):
            found.append(
                _rule(
                    (*loc, "mode"),
                    f"mode '{mode}' contradicts '{monitor}', which is better when "
                    f"{'lower' if resolve_mode(monitor, 'auto') == 'min' else 'higher'} (TRAIN-4); "
                    "fix: use mode auto",
                    mode,
                )
            )
        if monitor.startswith("val_") and exp.data.split.val == 0:
            found.append(
                _rule(
                    ("data", "split", "val"),
                    f"'{monitor}' is monitored but the validation split is empty (DATA-7); "
                    "fix: give data.split.val > 0 or disable early stopping",
                    0.0,
                )
            )
    return found


def _metric_rules(exp: Any) -> list[InitErrorDetails]:
    """Each listed metric is defined for the task; a threshold is set only where one applies."""
    found: list[InitErrorDetails] = []
    for i, name in enumerate(exp.train.metrics or ()):
        info = metric_info(name)
        if info is not None and exp.task not in info.tasks:
            found.append(
                _rule(
                    ("train", "metrics", i),
                    f"metric '{name}' is defined for {', '.join(sorted(info.tasks))}, not for task "
                    f"'{exp.task}'; fix: choose among {', '.join(metric_names(exp.task))}",
                    name,
                )
            )
    if exp.train.threshold != 0.5 and exp.task not in THRESHOLD_TASKS:
        found.append(
            _rule(
                ("train", "threshold"),
                f"train.threshold applies to binary and multilabel tasks, not to '{exp.task}' "
                "(its predictions are the most probable class or values); fix: remove it",
                exp.train.threshold,
            )
        )
    return found


def _output_rules(exp: Any) -> list[InitErrorDetails]:
    """A model with several outputs: per-output losses, metrics and monitors (spec/heads.py)."""
    return [_rule(loc, message, value) for loc, message, value in output_problems(exp)]


# Each cross-section rule with the top-level sections it reads. When some field of a spec is
# invalid, pydantic skips the experiment's model validators; nnspec.io.validate then runs the rules
# whose sections are all valid on their own (ExperimentSpec's `partial_rule_errors`), so a bad
# `optim.lr` does not hide a loss that does not fit the task.
TrainingRule = tuple[frozenset[str], Callable[[Any], list[InitErrorDetails]]]
TRAINING_RULES: tuple[TrainingRule, ...] = (
    (frozenset({"task", "loss"}), _loss_fits_task),  # LOSS-1
    (frozenset({"task", "loss"}), _loss_weights),
    (frozenset({"task", "loss", "model"}), _double_activation),  # OUT-3/4
    (frozenset({"task", "train", "schedule", "data"}), _monitor_rules),  # TRAIN-4, DATA-7
    (frozenset({"task", "train"}), _metric_rules),
    (frozenset({"model", "train", "data"}), _output_rules),
    (frozenset({"train", "optim"}), scaling_needs_lr),
)


def training_rule_errors(
    exp: Any, sections: frozenset[str] | None = None
) -> list[InitErrorDetails]:
    """The problems of every cross-section rule (only those reading ``sections``, when given)."""
    return [
        err
        for needs, rule in TRAINING_RULES
        if sections is None or needs <= sections
        for err in rule(exp)
    ]


def check_training_rules(exp: ExperimentSpec) -> None:
    """Raise one ValidationError listing every cross-section problem of an experiment.

    Rules: task/loss compatibility (LOSS-1), class weights the loss would ignore, double
    softmax/sigmoid (OUT-3/4), known monitors and consistent modes (TRAIN-4), a validation split
    when something monitors it (DATA-7), metrics and a threshold that fit the task.
    """
    found = training_rule_errors(exp)
    if found:
        raise ValidationError.from_exception_data("ExperimentSpec", found)
