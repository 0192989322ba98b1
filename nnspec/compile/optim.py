"""Optimizers and parameter groups (OPT-*, REG-8/9, TRAIN-8).

Parameter groups: weight decay only on weight matrices/kernels (biases and norm parameters are
excluded by default, REG-8), frozen layers (``trainable: false``) are left out of the optimizer, and
each layer's ``lr_scale`` multiplies the learning rate of its own group.

Kernels: where torch has a fused kernel for the optimizer (sgd, adam, adamw, adagrad on CPU and
CUDA), nnspec uses it. One fused kernel per parameter group replaces a Python loop of a dozen
small ops per tensor; on small models that overhead is much of the step (bench_trainer W3).
The update is the same rule, computed in one pass, so results agree with the default
implementation to rounding (not bitwise); runs stay bitwise reproducible and resumable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from nnspec.registry import Registry
from nnspec.spec.layers import LayerBase
from nnspec.spec.model import ModelSpec
from nnspec.spec.optim import OptimKind

__all__ = [
    "OPTIMIZERS",
    "FUSED",
    "param_layers",
    "param_groups",
    "build_optimizer",
    "l1_penalty",
]

OptimizerFactory = Callable[..., torch.optim.Optimizer]
OPTIMIZERS: Registry[OptimizerFactory] = Registry("optimizer")
"""Optimizer kind -> torch class (or factory) called ``(param_groups, lr=..., **fields)``: every
spec field but nnspec's own (``kind``, ``l1``, ...) has the torch keyword's name. User kinds are
added by :func:`nnspec.register_optimizer`."""
for _kind, _cls in (
    ("sgd", torch.optim.SGD),
    ("adam", torch.optim.Adam),
    ("adamw", torch.optim.AdamW),
    ("nadam", torch.optim.NAdam),
    ("radam", torch.optim.RAdam),
    ("rmsprop", torch.optim.RMSprop),
    ("adamax", torch.optim.Adamax),
    ("adagrad", torch.optim.Adagrad),
    ("adadelta", torch.optim.Adadelta),
    ("asgd", torch.optim.ASGD),
    ("rprop", torch.optim.Rprop),
    ("adafactor", torch.optim.Adafactor),
):
    OPTIMIZERS.register(_kind, _cls)
OPTIMIZERS.seal()

FUSED: frozenset[OptimKind] = frozenset({"sgd", "adam", "adamw", "adagrad"})
"""Optimizer kinds built with ``fused=True`` when every parameter is on a fused-capable device."""

# Devices with fused optimizer kernels in torch >= 2.4 (CPU and CUDA); others use the default.
_FUSED_DEVICES = frozenset({"cpu", "cuda"})

# Spec fields that are nnspec's, not the torch constructor's.
_NOT_TORCH = {"kind", "lr", "weight_decay", "l1", "decay_norm_and_bias"}


def param_layers(model: nn.Module, model_spec: ModelSpec) -> dict[str, LayerBase]:
    """Map each parameter name to the layer spec that owns it.

    Sequential models: parameter names start with the layer's module name (the user's ``name`` or
    the layer index), optionally under a ``layers.`` container. Graph models (blocks, branches):
    the innermost expanded node whose id prefixes the name, so ``lr_scale`` and ``trainable``
    set on a layer inside a block template count (multiplied through the block uses around it).
    """
    owners: dict[str, LayerBase] = {}
    if model_spec.is_graph:
        nodes = {node.id: node.layer for node in model_spec.graph().nodes}
        for pname, _ in model.named_parameters():
            parts = pname.split(".")
            for k in range(len(parts) - 1, 0, -1):
                layer = nodes.get(".".join(parts[:k]))
                if layer is not None:
                    owners[pname] = layer
                    break
        return owners
    by_key = {(layer.name or str(i)): layer for i, layer in enumerate(model_spec.layers)}
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
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    if optim_spec.kind == "rprop":
        for group in groups:  # torch's Rprop has no weight decay (the spec refuses one)
            group.pop("weight_decay")
    if optim_spec.kind in FUSED and _fusable(groups):
        kwargs["fused"] = True
    return OPTIMIZERS[optim_spec.kind](groups, lr=base_lr, **kwargs)


def _fusable(groups: list[dict[str, Any]]) -> bool:
    """Whether torch's fused kernels accept every parameter (dense floats on CPU/CUDA)."""
    params = [p for g in groups for p in g["params"]]
    return bool(params) and all(
        p.device.type in _FUSED_DEVICES and p.is_floating_point() and not p.is_sparse
        for p in params
    )


def l1_penalty(params: Iterable[torch.Tensor]) -> torch.Tensor:
    """Sum of absolute values of the given weight tensors (REG-9), as a loss term."""
    return torch.stack([p.abs().sum() for p in params]).sum()
