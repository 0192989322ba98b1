"""Optimizers and parameter groups (OPT-*, REG-8/9, TRAIN-8).

Parameter groups: weight decay only on weight matrices/kernels (biases and norm parameters are
excluded by default, REG-8), frozen layers (``trainable: false``) are left out of the optimizer, and
each layer's ``lr_scale`` multiplies the learning rate of its own group.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from nnspec.spec.layers import LayerBase
from nnspec.spec.model import ModelSpec
from nnspec.spec.optim import OptimKind

__all__ = ["OPTIMIZERS", "param_layers", "param_groups", "build_optimizer", "l1_penalty"]

OPTIMIZERS: Mapping[OptimKind, type[torch.optim.Optimizer]] = MappingProxyType(
    {
        "sgd": torch.optim.SGD,
        "adam": torch.optim.Adam,
        "adamw": torch.optim.AdamW,
        "nadam": torch.optim.NAdam,
        "radam": torch.optim.RAdam,
        "rmsprop": torch.optim.RMSprop,
        "adamax": torch.optim.Adamax,
        "adagrad": torch.optim.Adagrad,
    }
)
"""Optimizer kind -> torch class; every other spec field has the torch keyword's name."""

# Spec fields that are nnspec's, not the torch constructor's.
_NOT_TORCH = {"kind", "lr", "weight_decay", "l1", "decay_norm_and_bias"}


def param_layers(model: nn.Module, model_spec: ModelSpec) -> dict[str, LayerBase]:
    """Map each parameter name to the top-level layer spec that owns it.

    Parameter names start with the layer's module name: the user's ``name`` or the layer index,
    optionally under a ``layers.`` container (both schemes of the compiler are accepted).
    """
    by_key = {(layer.name or str(i)): layer for i, layer in enumerate(model_spec.layers)}
    owners: dict[str, LayerBase] = {}
    for pname, _ in model.named_parameters():
        parts = pname.split(".")
        for part in parts[:2]:
            if part in by_key:
                owners[pname] = by_key[part]
                break
    return owners


def _is_decayed(pname: str, param: torch.Tensor) -> bool:
    # Biases and norm scales/shifts are vectors; decaying them only hurts (REG-8).
    return param.ndim > 1


def param_groups(
    model: nn.Module, model_spec: ModelSpec, *, lr: float, weight_decay: float, decay_all: bool
) -> list[dict[str, Any]]:
    """Group trainable parameters by (lr_scale, decayed); frozen layers get requires_grad=False.

    Returns torch param-group dicts with ``lr``, ``weight_decay`` and a ``name`` for logs.
    """
    owners = param_layers(model, model_spec)
    groups: dict[tuple[float, bool], list[torch.Tensor]] = {}
    for pname, param in model.named_parameters():
        layer = owners.get(pname)
        if layer is not None and not layer.trainable:
            param.requires_grad_(False)  # TRAIN-8: frozen tensors never reach the optimizer
            continue
        if not param.requires_grad:
            continue
        scale = layer.lr_scale if layer is not None else 1.0
        decayed = decay_all or _is_decayed(pname, param)
        groups.setdefault((scale, decayed), []).append(param)
    return [
        {
            "params": params,
            "lr": lr * scale,
            "weight_decay": weight_decay if decayed else 0.0,
            "name": f"lr_x{scale:g}{'' if decayed else '_no_decay'}",
        }
        for (scale, decayed), params in sorted(groups.items())
    ]


def build_optimizer(
    optim_spec: Any, model: nn.Module, model_spec: ModelSpec, *, lr: float | None = None
) -> torch.optim.Optimizer:
    """Instantiate the spec's optimizer over the model's parameter groups.

    Args:
        optim_spec: the ``optim`` section (one of the OptimSpec classes).
        model: the compiled model.
        model_spec: its spec (trainable / lr_scale per layer).
        lr: overrides ``optim_spec.lr`` (used when it is ``auto`` and was resolved elsewhere).
    """
    base_lr = float(lr if lr is not None else optim_spec.lr)
    groups = param_groups(
        model,
        model_spec,
        lr=base_lr,
        weight_decay=optim_spec.weight_decay,
        decay_all=optim_spec.decay_norm_and_bias,
    )
    kwargs = optim_spec.model_dump(exclude=_NOT_TORCH)
    if "betas" in kwargs:
        kwargs["betas"] = tuple(kwargs["betas"])
    return OPTIMIZERS[optim_spec.kind](groups, lr=base_lr, **kwargs)


def l1_penalty(params: Iterable[torch.Tensor]) -> torch.Tensor:
    """Sum of absolute values of the given weight tensors (REG-9), as a loss term."""
    return torch.stack([p.abs().sum() for p in params]).sum()
