"""The train section: loop length, stopping, clipping, checkpoints, devices."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from nnspec.errors import did_you_mean
from nnspec.spec.base import NonNegFloat, NonNegInt, PosFloat, PosInt, Spec
from nnspec.spec.model import head_index
from nnspec.spec.optim import LOGIT_LOSSES, LOSS_TASKS, resolve_loss_kind

if TYPE_CHECKING:  # experiment.py imports this module
    from nnspec.spec.experiment import ExperimentSpec

__all__ = ["EarlyStoppingSpec", "ClipGradSpec", "CheckpointSpec", "MonitorsSpec", "TrainSpec"]
__all__ += ["Device", "Precision", "device_error"]

Precision = Literal["fp32", "bf16", "fp16"]
_DEVICE_KINDS = ("auto", "cpu", "cuda", "mps")


def device_error(value: str) -> str | None:
    """Why ``value`` is not a ``train.device`` (None when it is one).

    Example:
        >>> device_error("cuda:1") is None
        True
        >>> device_error("gpu")
        "unknown device 'gpu'; expected auto, cpu, cuda, cuda:N (N = 0, 1, ...) or mps"
    """
    kind, sep, index = value.partition(":")
    if kind in _DEVICE_KINDS and not sep:
        return None
    if kind == "cuda" and sep and index.isdigit() and index.isascii():
        return None
    spelled = value.lower().replace("gpu", "cuda")  # GPU, gpu:1, CUDA
    if spelled != value and device_error(spelled) is None:
        hint: str | None = f"did you mean '{spelled}'?"
    else:
        digits = "".join(c for c in value if c.isdigit()) or "0"
        hint = did_you_mean(value, [*_DEVICE_KINDS, f"cuda:{digits}"])
    message = f"unknown device '{value}'; expected auto, cpu, cuda, cuda:N (N = 0, 1, ...) or mps"
    return f"{message}; {hint}" if hint else message


def _device(value: str) -> str:
    problem = device_error(value)
    if problem is not None:
        raise PydanticCustomError("nnspec_rule", problem)
    return value


Device = Annotated[str, AfterValidator(_device)]


class EarlyStoppingSpec(Spec):
    """Stop when the monitored metric stops improving and restore the best weights (TRAIN-3/4)."""

    enabled: bool = Field(default=True, description="Turn early stopping on.")
    monitor: str = Field(
        default="val_loss", description="Metric watched, e.g. val_loss or val_accuracy."
    )
    mode: Literal["min", "max", "auto"] = Field(
        default="auto", description="auto: max for accuracy-like."
    )
    patience: PosInt = Field(default=10, description="Epochs without improvement before stopping.")
    min_delta: NonNegFloat = Field(
        default=0.0, description="Smallest change that counts as improvement."
    )
    restore_best: bool = Field(
        default=True, description="Load the best epoch's weights at the end."
    )


class ClipGradSpec(Spec):
    """Gradient clipping; by global norm is the recommended kind (TRAIN-6)."""

    kind: Literal["none", "norm", "value"] = Field(
        default="none", description="none, norm or value."
    )
    max_norm: PosFloat = Field(default=1.0, description="Global-norm threshold (kind: norm).")
    value: PosFloat = Field(default=1.0, description="Per-element threshold (kind: value).")


class CheckpointSpec(Spec):
    """Checkpoint policy (CKPT-1..4)."""

    enabled: bool = Field(default=True, description="Write checkpoints.")
    every_epochs: PosInt = Field(
        default=1, description="Write a checkpoint every this many epochs."
    )
    keep_last: PosInt = Field(default=2, description="How many recent checkpoints to keep.")
    keep_best: bool = Field(default=True, description="Keep the best checkpoint as best.pt.")


class MonitorsSpec(Spec):
    """Opt-in training monitors (MON-2/3): cheap when off."""

    grad_norms: bool = Field(default=False, description="Log per-layer gradient norms each epoch.")
    dead_units: bool = Field(
        default=False, description="Log per-layer dead-ReLU fractions each epoch."
    )
    warn: bool = Field(
        default=True, description="Warn on vanishing/exploding gradients or divergence."
    )


class TrainSpec(Spec):
    """How the model is trained."""

    epochs: PosInt = Field(default=30, description="Maximum epochs (TRAIN-3).")
    early_stopping: EarlyStoppingSpec = Field(default_factory=EarlyStoppingSpec)
    clip_grad: ClipGradSpec = Field(default_factory=ClipGradSpec)
    accumulate: PosInt = Field(
        default=1, description="Gradient accumulation steps per optimizer step."
    )
    checkpoint: CheckpointSpec = Field(default_factory=CheckpointSpec)
    resume: str | None = Field(default=None, description="Run directory to continue, or 'auto'.")
    deterministic: bool = Field(
        default=False, description="torch deterministic algorithms (REPRO-1)."
    )
    device: Device = Field(
        default="auto",
        description="auto (CUDA if present), cpu, cuda, cuda:N (the N-th GPU) or mps.",
    )
    precision: Precision = Field(
        default="fp32",
        description="fp32; bf16 (autocast); fp16 (autocast with a GradScaler: steps with "
        "non-finite gradients are skipped, counted in skipped_steps).",
    )
    log_every_steps: PosInt = Field(
        default=50,
        description="Optimizer steps between reads of the training loss from the device: the NaN "
        "and divergence guards check then (naming the exact step); 1 reads every step (a host "
        "sync per step on a GPU).",
    )
    channels_last: Literal["auto", "yes", "no"] = Field(
        default="auto",
        description="channels_last memory format for image models (4-D inputs): auto = on CUDA "
        "when the model has a conv2d; yes = always; no = never.",
    )
    compile: bool = Field(default=False, description="Wrap the model in torch.compile.")
    num_threads: PosInt | None = Field(
        default=None, description="torch intra-op threads; None = torch's."
    )
    monitors: MonitorsSpec = Field(default_factory=MonitorsSpec)
    progress: Literal["auto", "bar", "plain", "none"] = Field(
        default="auto",
        description="Progress display: bar on a terminal, one line per epoch otherwise.",
    )
    output_dir: str = Field(default="runs", description="Folder that receives run directories.")
    tensorboard: bool = Field(default=False, description="Also log to TensorBoard.")
    divergence_factor: PosFloat = Field(
        default=10.0,
        description="Stop when the loss stays above this many times its initial value.",
    )
    divergence_steps: PosInt = Field(default=20, description="...for this many consecutive steps.")
    max_steps: NonNegInt | None = Field(
        default=None, description="Stop after this many optimizer steps."
    )


# ---- metric names (DATA-14): pure data shared by the spec rules, the plan and the runner ----

TASK_METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "macro_f1"),
    "binary": ("accuracy", "f1", "auroc"),
    "multilabel": ("accuracy", "micro_f1"),
    "regression": ("mae", "rmse", "r2"),
}
"""Per-epoch metrics of each task, logged as ``val_<name>`` (and ``test_<name>`` at the end)."""
LOWER_IS_BETTER: frozenset[str] = frozenset({"loss", "mae", "rmse"})


def monitor_names(task: str) -> tuple[str, ...]:
    """Every name a monitor (early stopping, plateau) may watch for this task."""
    return ("val_loss", "train_loss", *(f"val_{m}" for m in TASK_METRICS[task]))


def resolve_mode(monitor: str, mode: str) -> Literal["min", "max"]:
    """``auto`` -> min for losses and errors, max for scores (TRAIN-4).

    Example:
        >>> resolve_mode("val_accuracy", "auto")
        'max'
    """
    natural: Literal["min", "max"] = (
        "min" if monitor.split("_", 1)[-1] in LOWER_IS_BETTER else "max"
    )
    return natural if mode == "auto" else mode  # type: ignore[return-value]


__all__ += ["TASK_METRICS", "LOWER_IS_BETTER", "monitor_names", "resolve_mode"]


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
    found: list[InitErrorDetails] = []
    names = monitor_names(exp.task)
    watchers: list[tuple[tuple[str, ...], str, str, bool]] = []
    es = exp.train.early_stopping
    if es.enabled:
        watchers.append((("train", "early_stopping"), es.monitor, es.mode, True))
    if exp.schedule.kind == "reduce_on_plateau":
        sch = exp.schedule
        watchers.append((("schedule",), sch.monitor, sch.mode, True))
    for loc, monitor, mode, _ in watchers:
        if monitor not in names:
            hint = did_you_mean(monitor, names)
            found.append(
                _rule(
                    (*loc, "monitor"),
                    f"unknown metric '{monitor}' for task '{exp.task}'"
                    + (f"; {hint}" if hint else "")
                    + f" (choices: {', '.join(names)})",
                    monitor,
                )
            )
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
    when something monitors it (DATA-7).
    """
    found = training_rule_errors(exp)
    if found:
        raise ValidationError.from_exception_data("ExperimentSpec", found)


__all__ += ["check_training_rules"]
