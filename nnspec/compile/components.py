"""User-registered losses, optimizers and LR schedules (``nnspec.register_loss``, ...).

Each registration adds a spec class to the spec layer's table (so YAML naming the kind validates,
without torch, once the user's code has run) and a builder to the compile layer's table, all or
nothing. Built-in names cannot be taken or removed. A spec class subclasses the component's base
(:class:`~nnspec.spec.optim.LossBase`, :class:`~nnspec.spec.optim.OptimBase`,
:class:`~nnspec.spec.schedule.ScheduleBase`) and declares ``kind: Literal["<name>"] = "<name>"``;
without one, a class with only the base's fields is made.

How each is called:

* loss: ``factory(**fields)`` -> an ``nn.Module`` called ``loss(outputs, targets)`` (targets as
  the built-in losses get them: class indices for classification, floats otherwise);
* optimizer: ``factory(param_groups, lr=..., **fields)`` (a ``torch.optim.Optimizer`` subclass
  fits); nnspec's own fields (``l1``, ``decay_norm_and_bias``) are not passed, and
  ``weight_decay`` goes to each parameter group;
* schedule: ``builder(spec, optimizer, horizon)`` -> a torch LR scheduler stepped after every
  optimizer step, over ``horizon.total_steps`` steps (those after the spec's ``warmup``, which
  nnspec runs first).

Example:
    >>> from typing import Literal
    >>> import torch
    >>> from nnspec.spec.optim import LossBase
    >>> class Focal(LossBase):
    ...     kind: Literal["doc_focal"] = "doc_focal"
    ...     gamma: float = 2.0
    >>> class FocalLoss(torch.nn.Module):
    ...     def __init__(self, gamma: float) -> None:
    ...         super().__init__()
    ...         self.gamma = gamma
    ...     def forward(self, logits, y):
    ...         ce = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    ...         return ((1 - torch.exp(-ce)) ** self.gamma * ce).mean()
    >>> _ = register_loss("doc_focal", FocalLoss, Focal, tasks=("classification",))
    >>> unregister("loss", "doc_focal")
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal, get_args

import torch
from pydantic import BaseModel, create_model
from torch import nn

from nnspec.compile.losses import LOSSES
from nnspec.compile.optim import OPTIMIZERS
from nnspec.compile.schedules import SCHEDULES, Horizon
from nnspec.registry import Registry, RegistryError
from nnspec.spec.experiment import Task
from nnspec.spec.kinds import check_spec_class
from nnspec.spec.optim import LOGIT_LOSSES, LOSS_SPECS, LOSS_TASKS, OPTIM_SPECS, LossBase, OptimBase
from nnspec.spec.schedule import SCHEDULE_SPECS, ScheduleBase

__all__ = ["register_loss", "register_optimizer", "register_schedule", "unregister", "spec_class"]

ScheduleBuilder = Callable[[Any, torch.optim.Optimizer, Horizon], Any]


def spec_class(kind: str, base: type[BaseModel], given: type[BaseModel] | None, what: str) -> Any:
    """``given`` checked for ``kind``, or a class with the base's fields and that ``kind``."""
    if given is None:
        name = "".join(part.title() for part in kind.split("_")) + "Spec"
        given = create_model(name, __base__=base, kind=(Literal[kind], kind))  # type: ignore[call-overload]
    check_spec_class(kind, given, base, what)
    return given


def _free(kind: str, tables: Iterable[Registry[Any]], what: str) -> None:
    for table in tables:  # all checked first: a registration is all or nothing
        if kind in table:
            builtin = " (built in)" if table.is_builtin(kind) else ""
            raise RegistryError(
                f"{what} '{kind}' is already registered{builtin}; choose another name"
            )


def _fields(spec: BaseModel, skip: frozenset[str]) -> dict[str, Any]:
    data = spec.model_dump(exclude=set(skip))
    return {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}


def register_loss(
    kind: str,
    factory: Callable[..., nn.Module],
    spec: type[LossBase] | None = None,
    *,
    tasks: Iterable[str] = ("classification", "binary", "multilabel", "regression"),
    logits: bool = False,
) -> Callable[..., nn.Module]:
    """Add a loss ``kind`` usable as ``loss: {kind: <kind>, ...}``.

    Args:
        kind: the YAML name (snake_case).
        factory: ``factory(**fields)`` -> ``nn.Module`` (an ``nn.Module`` class fits).
        spec: its spec class (a ``LossBase`` subclass); default: no fields besides ``kind``.
        tasks: the tasks it fits (LOSS-1); another task is refused at validation.
        logits: it applies softmax/sigmoid itself (a squashing last activation is refused).

    Raises:
        RegistryError: the name is taken or not snake_case, the class does not fit, or a task
            is unknown.
    """
    cls = spec_class(kind, LossBase, spec, "loss")
    fits = frozenset(tasks)
    if not fits or not fits <= set(get_args(Task)):
        raise RegistryError(f"register_loss('{kind}'): tasks must be among "
                            f"{', '.join(get_args(Task))}; "
                            f"found {sorted(fits)}")  # fmt: skip
    _free(kind, (LOSS_SPECS, LOSSES, LOSS_TASKS), "loss")
    LOSS_SPECS.register(kind, cls)
    LOSS_TASKS.register(kind, fits)
    if logits:
        LOGIT_LOSSES.register(kind, True)
    LOSSES.register(kind, lambda s, stats, n_out: factory(**_fields(s, frozenset({"kind"}))))
    return factory


def register_optimizer(
    kind: str, factory: Callable[..., torch.optim.Optimizer], spec: type[OptimBase] | None = None
) -> Callable[..., torch.optim.Optimizer]:
    """Add an optimizer ``kind`` usable as ``optim: {kind: <kind>, lr: ..., ...}``.

    Args:
        kind: the YAML name (snake_case).
        factory: ``factory(param_groups, lr=..., **fields)`` (a torch Optimizer class fits).
        spec: its spec class (an ``OptimBase`` subclass, whose extra fields are the factory's
            keywords); default: the base's fields only (lr, weight_decay, l1, ...).
    """
    cls = spec_class(kind, OptimBase, spec, "optimizer")
    _free(kind, (OPTIM_SPECS, OPTIMIZERS), "optimizer")
    OPTIM_SPECS.register(kind, cls)
    OPTIMIZERS.register(kind, factory)
    return factory


def register_schedule(
    kind: str, builder: ScheduleBuilder, spec: type[ScheduleBase] | None = None
) -> ScheduleBuilder:
    """Add an LR schedule ``kind`` usable as ``schedule: {kind: <kind>, ...}``.

    Args:
        kind: the YAML name (snake_case).
        builder: ``builder(spec, optimizer, horizon)`` -> a torch LR scheduler stepped after
            every optimizer step; ``horizon.total_steps`` counts the steps after the warmup.
        spec: its spec class (a ``ScheduleBase`` subclass); default: ``warmup`` only.
    """
    cls = spec_class(kind, ScheduleBase, spec, "schedule")
    _free(kind, (SCHEDULE_SPECS, SCHEDULES), "schedule")

    def main(s: Any, opt: torch.optim.Optimizer, h: Horizon, warmup: int) -> Any:
        return builder(s, opt, Horizon(h.steps_per_epoch, max(1, h.total_steps - warmup)))

    SCHEDULE_SPECS.register(kind, cls)
    SCHEDULES.register(kind, main)
    return builder


_TABLES: dict[str, tuple[Registry[Any], ...]] = {
    "loss": (LOSS_SPECS, LOSSES, LOSS_TASKS, LOGIT_LOSSES),
    "optimizer": (OPTIM_SPECS, OPTIMIZERS),
    "schedule": (SCHEDULE_SPECS, SCHEDULES),
}


def unregister(what: Literal["loss", "optimizer", "schedule"], kind: str) -> None:
    """Remove a user-registered loss, optimizer or schedule (tests, notebooks).

    Raises:
        RegistryError: ``kind`` is built in.
    """
    for table in _TABLES[what]:
        table.unregister(kind)
