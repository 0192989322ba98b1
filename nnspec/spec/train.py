"""The train section: loop length, stopping, clipping, checkpoints, devices."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

from pydantic import AfterValidator, Field, field_validator, model_validator

from nnspec.spec.averaging import EmaSpec, SwaSpec
from nnspec.spec.base import NonNegFloat, PosFloat, PosInt, Spec, field_error
from nnspec.spec.callbacks import CallbackField, TrackerName, unique
from nnspec.spec.device import Device, Precision, device_error
from nnspec.spec.extension import ExtensionSpec, check_extensions
from nnspec.spec.metrics import (
    LOWER_IS_BETTER,
    TASK_METRICS,
    chosen_metrics,
    metric_info,
    metric_names,
    monitor_names,
    resolve_mode,
    suggest,
)
from nnspec.spec.parallel import LRScaling, Strategy, scaled_lr

if TYPE_CHECKING:  # experiment.py imports this module
    pass

__all__ = [
    "EarlyStoppingSpec", "ClipGradSpec", "CheckpointSpec", "MonitorsSpec", "TrainSpec", "Strategy",
    "LRScaling", "scaled_lr",
]  # fmt: skip
__all__ += ["Device", "Precision", "device_error"]


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
    keep_top_k: int = Field(
        default=0, ge=0,
        description="Also keep the checkpoints of the k best epochs by the monitored metric "
        "(checkpoints/top-epoch-NNNN.pt; 0: none).",
    )  # fmt: skip


class MonitorsSpec(Spec):
    """Opt-in training monitors (MON-2/3): cheap when off."""

    grad_norms: bool = Field(default=False, description="Log per-layer gradient norms each epoch.")
    dead_units: bool = Field(
        default=False, description="Log per-layer dead-ReLU fractions each epoch."
    )
    warn: bool = Field(
        default=True, description="Warn on vanishing/exploding gradients or divergence."
    )


def _unique_trackers(names: tuple[str, ...]) -> tuple[str, ...]:
    return unique(names, "tracker")


def _unique_callbacks(items: tuple[Any, ...]) -> tuple[Any, ...]:
    return unique(items, "callback")


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
    trackers: Annotated[tuple[TrackerName, ...], AfterValidator(_unique_trackers)] = Field(
        default=(),
        description="Experiment trackers the run logs to: tensorboard, mlflow, wandb (each an "
        "extra: pip install 'nnspec[NAME]').",
    )
    callbacks: Annotated[tuple[CallbackField, ...], AfterValidator(_unique_callbacks)] = Field(
        default=(),
        description="Callbacks registered by user code (nnspec.register_callback), each a name "
        "or {kind: NAME, field: value}.",
    )
    divergence_factor: PosFloat = Field(
        default=10.0,
        description="Stop when the loss stays above this many times its initial value.",
    )
    divergence_steps: PosInt = Field(default=20, description="...for this many consecutive steps.")
    max_steps: PosInt | None = Field(
        default=None,
        description="Stop after this many optimizer steps (at least 1; null: no limit).",
    )
    ema: EmaSpec | None = Field(
        default=None,
        description="Exponential moving average of the weights, used for validation, the best "
        "epoch, test metrics and model.pt (torch.optim.swa_utils).",
    )
    swa: SwaSpec | None = Field(
        default=None,
        description="Stochastic weight averaging from `start_epoch` with the SWALR schedule; its "
        "average is validated, tested and saved (torch.optim.swa_utils).",
    )
    strategy: Strategy = Field(
        default="auto",
        description="Data parallelism under torchrun/SLURM: ddp (DistributedDataParallel), fsdp "
        "(FSDP2 fully_shard, sharded checkpoints), auto (ddp when launched with several "
        "processes), none (one process only).",
    )
    sync_batchnorm: bool = Field(
        default=False,
        description="Under ddp, BatchNorm layers become SyncBatchNorm (statistics over the "
        "global batch instead of each rank's part).",
    )
    lr_scaling: LRScaling = Field(
        default="none",
        description="Scale optim.lr with data.batch_size / lr_reference_batch_size: linear "
        "(lr x ratio) or sqrt (lr x sqrt(ratio)); none keeps optim.lr as written.",
    )
    lr_reference_batch_size: PosInt | None = Field(
        default=None,
        description="The batch size optim.lr was chosen for (needed by lr_scaling).",
    )
    extensions: tuple[ExtensionSpec, ...] = Field(
        default=(),
        description="Written by `nnspec train RUN_DIR --extend`: each time the run was continued "
        "past its plan, and the LR schedule of the added epochs (nnspec.spec.extension).",
    )

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        if isinstance(data, dict) and "tensorboard" in data:
            raise field_error(
                ("tensorboard",),
                "train.tensorboard was replaced by train.trackers; fix: write "
                "`trackers: [tensorboard]` (or remove the key)",
                data["tensorboard"],
            )
        return data

    @model_validator(mode="after")
    def _scaling_reference(self) -> Self:
        if self.lr_scaling != "none" and self.lr_reference_batch_size is None:
            raise field_error(
                ("lr_reference_batch_size",),
                f"lr_scaling '{self.lr_scaling}' needs the batch size optim.lr was chosen for; "
                "fix: set train.lr_reference_batch_size (e.g. 256), or lr_scaling: none",
                None,
            )
        return self

    @model_validator(mode="after")
    def _one_average(self) -> Self:
        if self.ema is not None and self.swa is not None:
            raise field_error(("swa",), "train.ema and train.swa each keep an averaged model; "
                              "choose one (fix: remove one of them)")  # fmt: skip
        if self.swa is not None and self.swa.start_epoch > self.epochs:
            raise field_error(
                ("swa", "start_epoch"),
                f"start_epoch {self.swa.start_epoch} is after the last epoch ({self.epochs}): "
                "nothing would be averaged (fix: an epoch within train.epochs)",
                self.swa.start_epoch,
            )
        check_extensions(self.extensions, self.epochs)
        return self

    metrics: tuple[str, ...] | None = Field(
        default=None,
        description="Metrics logged per epoch as val_<name> and at the end as test_<name>, e.g. "
        "[accuracy, top_5_accuracy, macro_f1, auroc, pr_auc]; null: the task's defaults "
        "(nnspec list metrics). A monitored metric is computed even when not listed.",
    )
    threshold: float = Field(
        default=0.5, gt=0, lt=1,
        description="binary/multilabel: a probability above this is a positive prediction "
        "(accuracy, precision, recall, F1 and the test report).",
    )  # fmt: skip

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, names: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if names is None:
            return None
        problems = [_unknown_metric(n) for n in names if metric_info(n) is None]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            problems.append(f"listed twice: {', '.join(repeated)}; fix: list each metric once")
        if problems:
            raise ValueError("; ".join(problems))
        return names


def _unknown_metric(name: str) -> str:
    hint = suggest(name, metric_names())
    return (
        f"unknown metric '{name}'" + (f"; {hint}" if hint else "")
        + f" (choices: {', '.join(metric_names())})"
    )  # fmt: skip


# re-exported: the metric names moved to spec/metrics.py
__all__ += ["TASK_METRICS", "LOWER_IS_BETTER", "chosen_metrics", "monitor_names", "resolve_mode"]
