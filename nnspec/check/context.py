"""What every sanity check works on: the real data, fresh models, the plan's loss and optimizer.

Everything is built through the trainer's own code (``prepare_data``, ``build_for_data``,
``compile_plan``), so a check exercises exactly what ``nnspec train`` would run. Models are built
fresh per check from ``spec.seed``; nothing here touches the global RNG.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from nnspec.spec.experiment import ExperimentSpec

__all__ = [
    "Status",
    "CheckResult",
    "CheckContext",
    "InputProbe",
    "input_probe",
    "cycle_batches",
    "cycle_named",
    "train_steps",
]

Status = Literal["pass", "warn", "fail", "skip"]


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check.

    Attributes:
        name: Check name, e.g. ``overfit-batch``.
        rule: Catalog id, e.g. ``CHECK-1``.
        status: pass / warn / fail / skip.
        summary: One line with the measured numbers.
        numbers: The measurements (plain floats/ints/strings, JSON-able).
        meaning: On warn/fail: what this usually means.
        tries: On warn/fail: what to try, most likely first.
        table: Optional per-layer rows (gradient flow).
    """

    name: str
    rule: str
    status: Status
    summary: str
    numbers: dict[str, object] = field(default_factory=dict)
    meaning: str = ""
    tries: tuple[str, ...] = ()
    table: tuple[dict[str, object], ...] = ()

    @property
    def ok(self) -> bool:
        return self.status in ("pass", "skip")


def _refuse_named(spec: ExperimentSpec) -> None:
    """The checks of ``nnspec check`` feed one input tensor and score one output (the LR range
    test takes named inputs and several outputs: :func:`cycle_named`)."""
    from nnspec.errors import Problem, SpecError
    from nnspec.run.named import is_named

    if is_named(spec):
        raise SpecError(Problem(
            ("model", "inputs" if spec.model.inputs is not None else "outputs"),
            "nnspec check runs models with one input tensor and one output; this model has "
            "named inputs or several outputs",
            fix="train it (the LR range test, optim.lr: auto and nnspec lr-find, takes such "
            "models); nnspec plan and nnspec data show what the run will do",
        ))  # fmt: skip


class CheckContext:
    """Data, plan and model factory shared by the checks of one ``nnspec check`` run."""

    def __init__(
        self,
        spec: ExperimentSpec,
        bundle: object | None = None,
        *,
        base: Path | None = None,
        raw: object | None = None,
        named_ok: bool = False,
    ) -> None:
        from nnspec.compile.plan import compile_plan
        from nnspec.run.data import prepare_data
        from nnspec.run.named import is_named

        self.spec, self.named = spec, is_named(spec)
        if not named_ok:
            _refuse_named(spec)
        # A prepared bundle wins; else the user's raw arrays or spec.data, split and scaled
        # exactly as the trainer does.
        self.bundle = bundle if bundle is not None else prepare_data(spec, raw=raw, base=base)
        self.plan = compile_plan(spec)

    @property
    def task(self) -> str:
        return self.spec.task

    @property
    def classification(self) -> bool:
        return self.task in ("classification", "binary", "multilabel")

    @cached_property
    def loss_fn(self) -> nn.Module:
        from nnspec.run.evaluation import target_stats
        from nnspec.run.heads import output_loss

        if self.plan.outputs:  # several outputs: the trainer's weighted sum of their losses
            return output_loss(self.plan, self.bundle.info, self.bundle.train)
        return self.plan.make_loss(self.bundle.info.n_outputs, target_stats(self.bundle))

    def model(self, *, seed_offset: int = 0) -> nn.Module:
        """A freshly built and head-initialised model (the trainer's ``build_for_data``)."""
        from nnspec.run.heads import train_targets
        from nnspec.run.model import build_for_data

        spec = self.spec
        if seed_offset:
            spec = spec.model_copy(update={"seed": spec.seed + seed_offset})
        return build_for_data(spec, self.bundle.info,
                              train_targets(self.bundle) or self.bundle.train.y)  # fmt: skip

    def optimizer(self, model: nn.Module, *, lr: float | None = None) -> torch.optim.Optimizer:
        """The spec's optimizer; ``lr: auto`` falls back to the optimizer's default rate."""
        if lr is None and self.spec.optim.lr == "auto":
            lr = type(self.spec.optim).model_fields["lr"].default
        return self.plan.make_optimizer(model, lr=lr)

    def eval_split(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Validation split, or the training split when there is none."""
        split = self.bundle.val if self.bundle.val is not None else self.bundle.train
        return split.x, split.y

    def accuracy(self, out: torch.Tensor, y: torch.Tensor) -> float:
        """Fraction of correct predictions (classification tasks)."""
        if self.task == "classification":
            return float((out.argmax(-1) == y).float().mean())
        return float(((out > 0).float() == y).float().mean())


@dataclass
class InputProbe:
    """A batch to feed the model and the tensor to take input gradients on (see
    :func:`input_probe`); ``leaf`` is set once the model has run forward."""

    x: torch.Tensor
    leaf: torch.Tensor | None = None


@contextlib.contextmanager
def input_probe(model: nn.Module, x: torch.Tensor) -> Iterator[InputProbe]:
    """Make the inputs of ``model`` differentiable for the duration of one forward pass.

    Float features: ``x`` itself becomes a leaf that requires grad. Token ids (int64, for an
    input embedding) have no gradient, so the leaf is the output of the first embedding called:
    a gradient there still says which samples' inputs an output depends on.

    Example:
        >>> m = nn.Sequential(nn.Embedding(5, 2), nn.Flatten(), nn.Linear(6, 1))
        >>> with input_probe(m, torch.zeros(4, 3, dtype=torch.long)) as probe:
        ...     out = m(probe.x)
        >>> tuple(probe.leaf.shape), probe.leaf.requires_grad
        ((4, 3, 2), True)
    """
    if x.is_floating_point():
        leaf = x.detach().clone().requires_grad_(True)
        yield InputProbe(leaf, leaf)
        return
    probe = InputProbe(x)

    def hook(_m: nn.Module, _inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> torch.Tensor:
        if probe.leaf is not None:  # a later embedding reads tokens again: not the input's
            return out
        probe.leaf = out.detach().requires_grad_(True)
        return probe.leaf

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Embedding)]
    try:
        yield probe
    finally:
        for h in hooks:
            h.remove()


def cycle_batches(ctx: CheckContext, x: torch.Tensor, y: torch.Tensor) -> Iterator[tuple]:
    """Endless shuffled training batches (order from the trainer's ``epoch_order``)."""
    from nnspec.run.data import Split

    return _cycle(ctx, Split(x, y), x.device)


def cycle_named(ctx: CheckContext) -> Iterator[tuple]:
    """Endless shuffled training batches of a model with named inputs or several outputs, as
    the trainer feeds them: (the model's inputs, the loss's targets)."""
    return _cycle(ctx, ctx.bundle.train, torch.device("cpu"))


def _cycle(ctx: CheckContext, split: object, device: torch.device) -> Iterator[tuple]:
    from nnspec.run.batches import INPUT, EpochBatches, batch_targets, model_inputs

    inputs = tuple(ctx.bundle.info.inputs) or (INPUT,)
    outputs = tuple(ctx.plan.outputs)
    sampler = EpochBatches(len(split), ctx.spec.data.batch_size, seed=ctx.spec.seed, shuffle=True)  # type: ignore[arg-type]
    batches = split.batches(sampler, device, workers=ctx.spec.data.num_workers)  # type: ignore[attr-defined]
    for epoch in itertools.count():
        sampler.set_epoch(epoch)
        yield from ((model_inputs(b, inputs), batch_targets(b, outputs)) for b in batches)


def train_steps(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    loss_fn: nn.Module,
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
    steps: int,
) -> float:
    """Take ``steps`` optimizer steps; returns the last loss (``nan`` once it is not finite)."""
    model.train()
    loss = math.nan
    for xb, yb in itertools.islice(batches, steps):
        opt.zero_grad(set_to_none=True)
        out = loss_fn(model(xb), yb)
        loss = float(out.detach())
        if not math.isfinite(loss):
            return math.nan
        out.backward()
        opt.step()
    return loss
