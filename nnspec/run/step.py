"""The device side of the training step: which device (``train.device``), the precision
(``train.precision``: autocast, and fp16's loss scaling), the memory format
(``train.channels_last``) and how a batch reaches the device.

Nothing here reads a value back to the host: a step queues its work and the loop reads the
losses every ``train.log_every_steps`` steps (:class:`nnspec.run.guards.LossLog`). One exception
is torch's own: ``GradScaler.step`` reads its inf flag on the host unless the optimizer is fused
(nnspec builds ``sgd``, ``adam``, ``adamw`` and ``adagrad`` fused on CPU and CUDA), so fp16 with
another optimizer syncs once per step.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from nnspec.errors import Problem, SpecError
from nnspec.spec.train import Precision, TrainSpec

__all__ = ["AUTOCAST", "MixedPrecision", "resolve_device", "use_channels_last", "to_device"]

AUTOCAST: MappingProxyType[Precision, torch.dtype | None] = MappingProxyType(
    {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
)
"""``train.precision`` -> the autocast dtype (None: no autocast)."""

# LRScheduler warns when its first step follows no optimizer.step(); with fp16 the scaler skips
# the first step(s) while it calibrates its scale, and the schedule counts those steps on purpose.
_SKIPPED_FIRST_STEP = "Detected call of `lr_scheduler.step()` before `optimizer.step()`"


def resolve_device(name: str) -> torch.device:
    """The torch device of ``train.device`` (``auto``: the current CUDA device when there is one,
    else the CPU); a device this machine lacks is a :class:`SpecError` at ``train.device``.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    found: str | None = None
    if device.type == "cuda" and not torch.cuda.is_available():
        found = f"no CUDA device (torch {torch.__version__}, CUDA build: {torch.version.cuda})"
    elif device.type == "cuda" and device.index is not None:
        count = torch.cuda.device_count()
        if device.index >= count:
            found = f"{count} CUDA device(s): cuda:0 to cuda:{count - 1}"
    elif device.type == "mps" and not torch.backends.mps.is_available():
        found = "no MPS device"
    if found is None:
        return device
    raise SpecError(
        Problem(
            ("train", "device"),
            f"device '{name}' is not available on this machine",
            expected=f"a device this machine has ({name})",
            found=found,
            fix="use train.device=auto (CUDA when present, else the CPU) or train.device=cpu",
        )
    )


def use_channels_last(train: TrainSpec, model: nn.Module, sample: torch.Tensor,
                      device: torch.device) -> bool:  # fmt: skip
    """Whether the run trains in channels_last (``train.channels_last``).

    ``auto`` turns it on for a model with a ``Conv2d`` on CUDA, where cuDNN's NHWC kernels are
    the fast ones (mixed precision above all); on the CPU it stays off, so a CPU run is not
    changed by the setting. ``yes`` needs image inputs (one sample ``(C, H, W)``).
    """
    if train.channels_last == "no":
        return False
    image = sample.dim() == 3
    if train.channels_last == "auto":
        conv = any(isinstance(m, nn.Conv2d) for m in model.modules())
        return image and conv and device.type == "cuda"
    if not image:
        raise SpecError(
            Problem(
                ("train", "channels_last"),
                "channels_last applies to image inputs (one sample (C, H, W))",
                expected="samples of 3 dimensions",
                found=f"samples of shape {tuple(sample.shape)}",
                fix="set train.channels_last: auto (or no)",
            )
        )
    return True


def to_device(
    tensor: torch.Tensor, device: torch.device, channels_last: bool = False
) -> torch.Tensor:
    """``tensor`` on ``device`` without waiting for the copy (``non_blocking``: asynchronous from
    pinned host memory), in channels_last when asked; the tensor itself when nothing changes."""
    if channels_last:
        return tensor.to(device, non_blocking=True, memory_format=torch.channels_last)
    return tensor.to(device, non_blocking=True)


class MixedPrecision:
    """Autocast and, for fp16, a :class:`torch.amp.GradScaler` around one optimizer.

    Args:
        precision: ``train.precision``.
        device: The training device (autocast and the scaler run there; fp16 runs on the CPU
            too, slowly).
        params: The trained parameters (fp16 checks their unscaled gradients for the skipped-step
            count).
    """

    def __init__(
        self, precision: Precision, device: torch.device, params: Sequence[torch.Tensor]
    ) -> None:
        self.dtype, self.device_type, self.params = AUTOCAST[precision], device.type, params
        self.scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
        self.no_cast = contextlib.nullcontext()  # one reusable null context: nothing per step

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The forward pass's autocast context (a null context in fp32)."""
        if self.dtype is None:
            return self.no_cast
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        """Backpropagate ``loss`` (scaled by the loss scale in fp16)."""
        if self.scaler is None:
            loss.backward()
        else:
            self.scaler.scale(loss).backward()

    def unscale(self, optimizer: torch.optim.Optimizer) -> torch.Tensor | None:
        """fp16: divide the gradients by the loss scale (so clipping and the per-step hooks see
        true gradients) and return a device flag, True when the scaler will skip this step (a
        non-finite gradient); None in fp32 and bf16."""
        if self.scaler is None:
            return None
        self.scaler.unscale_(optimizer)
        grads = [p.grad for p in self.params if p.grad is not None]
        largest = torch.nn.utils.get_total_norm(grads, norm_type=float("inf"))
        return ~torch.isfinite(largest)

    def step(self, optimizer: torch.optim.Optimizer, schedule: Any, first: bool) -> None:
        """The optimizer step (skipped by the scaler on non-finite gradients in fp16), the
        gradients' reset and the per-step schedule's step (``first``: the run's first step)."""
        if self.scaler is None:
            optimizer.step()
        else:
            self.scaler.step(optimizer)
            self.scaler.update()
        optimizer.zero_grad(set_to_none=True)
        if first and self.scaler is not None:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=_SKIPPED_FIRST_STEP, category=UserWarning)
                schedule.step_batch()
        else:
            schedule.step_batch()

    def state_dict(self) -> dict[str, Any] | None:
        """The scaler's state (plain numbers) for checkpoints; None without a scaler."""
        return None if self.scaler is None else self.scaler.state_dict()

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """Restore :meth:`state_dict` (a checkpoint without a scaler state leaves it fresh)."""
        if self.scaler is not None and state is not None:
            self.scaler.load_state_dict(state)

    def scale(self) -> float | None:
        """The current loss scale (fp16; reads it from the device), None otherwise."""
        return None if self.scaler is None else float(self.scaler.get_scale())
