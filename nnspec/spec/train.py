"""The train section: loop length, stopping, clipping, checkpoints, devices."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from nnspec.spec.base import NonNegFloat, NonNegInt, PosFloat, PosInt, Spec

__all__ = ["EarlyStoppingSpec", "ClipGradSpec", "CheckpointSpec", "MonitorsSpec", "TrainSpec"]


class EarlyStoppingSpec(Spec):
    """Stop when the monitored metric stops improving and restore the best weights (TRAIN-3/4)."""

    enabled: bool = Field(True, description="Turn early stopping on.")
    monitor: str = Field("val_loss", description="Metric watched, e.g. val_loss or val_accuracy.")
    mode: Literal["min", "max", "auto"] = Field("auto", description="auto: max for accuracy-like.")
    patience: PosInt = Field(10, description="Epochs without improvement before stopping.")
    min_delta: NonNegFloat = Field(0.0, description="Smallest change that counts as improvement.")
    restore_best: bool = Field(True, description="Load the best epoch's weights at the end.")


class ClipGradSpec(Spec):
    """Gradient clipping; by global norm is the recommended kind (TRAIN-6)."""

    kind: Literal["none", "norm", "value"] = Field("none", description="none, norm or value.")
    max_norm: PosFloat = Field(1.0, description="Global-norm threshold (kind: norm).")
    value: PosFloat = Field(1.0, description="Per-element threshold (kind: value).")


class CheckpointSpec(Spec):
    """Checkpoint policy (CKPT-1..4)."""

    enabled: bool = Field(True, description="Write checkpoints.")
    every_epochs: PosInt = Field(1, description="Write a checkpoint every this many epochs.")
    keep_last: PosInt = Field(2, description="How many recent checkpoints to keep.")
    keep_best: bool = Field(True, description="Keep the best checkpoint as best.pt.")


class MonitorsSpec(Spec):
    """Opt-in training monitors (MON-2/3): cheap when off."""

    grad_norms: bool = Field(False, description="Log per-layer gradient norms each epoch.")
    dead_units: bool = Field(False, description="Log per-layer dead-ReLU fractions each epoch.")
    warn: bool = Field(True, description="Warn on vanishing/exploding gradients or divergence.")


class TrainSpec(Spec):
    """How the model is trained."""

    epochs: PosInt = Field(30, description="Maximum epochs (TRAIN-3).")
    early_stopping: EarlyStoppingSpec = Field(default_factory=EarlyStoppingSpec)
    clip_grad: ClipGradSpec = Field(default_factory=ClipGradSpec)
    accumulate: PosInt = Field(1, description="Gradient accumulation steps per optimizer step.")
    checkpoint: CheckpointSpec = Field(default_factory=CheckpointSpec)
    resume: str | None = Field(None, description="Run directory to continue, or 'auto'.")
    deterministic: bool = Field(False, description="torch deterministic algorithms (REPRO-1).")
    device: Literal["auto", "cpu", "cuda", "mps"] = Field("auto", description="auto: CUDA if present.")
    precision: Literal["fp32", "bf16"] = Field("fp32", description="bf16 autocast when supported.")
    compile: bool = Field(False, description="Wrap the model in torch.compile.")
    num_threads: PosInt | None = Field(None, description="torch intra-op threads; None = torch's.")
    monitors: MonitorsSpec = Field(default_factory=MonitorsSpec)
    progress: Literal["auto", "bar", "plain", "none"] = Field(
        "auto", description="Progress display: bar on a terminal, one line per epoch otherwise."
    )
    output_dir: str = Field("runs", description="Folder that receives run directories.")
    tensorboard: bool = Field(False, description="Also log to TensorBoard.")
    divergence_factor: PosFloat = Field(
        10.0, description="Stop when the loss stays above this many times its initial value."
    )
    divergence_steps: PosInt = Field(20, description="...for this many consecutive steps.")
    max_steps: NonNegInt | None = Field(None, description="Stop after this many optimizer steps.")
