"""The whole experiment: the top-level shape of every nnspec spec."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, TypeAdapter, ValidationError, model_validator

from nnspec.spec.base import NonNegInt, Spec
from nnspec.spec.data import DataSpec
from nnspec.spec.heads import Task
from nnspec.spec.model import ModelSpec
from nnspec.spec.optim import AdamW, LossField, LossSpec, OptimSpec
from nnspec.spec.schedule import Constant, ScheduleSpec
from nnspec.spec.sequence import needs_clipping
from nnspec.spec.train import ClipGradSpec, TrainSpec
from nnspec.spec.training_rules import check_training_rules, training_rule_errors

__all__ = ["Task", "LintSpec", "ExperimentSpec", "SPEC_VERSION", "partial_rule_errors"]

SPEC_VERSION = 1

MAX_NAME = 100
"""Longest experiment ``name``: it becomes a folder name, and a sweep's job folders and Hydra's
files are nested below it [nnspec choice]."""
# letters/digits of any script and a few marks; inner spaces; no separators or control characters
_SAFE_NAME = re.compile(r"\w(?:[\w .+=@-]*[\w.+=@-])?")


def _safe_name(name: str) -> str:
    """The experiment name is one folder: no path separators, ``..``, control characters (NUL,
    newlines, ANSI escapes) or edge spaces, and not too long for the file system."""
    if len(name) > MAX_NAME or not _SAFE_NAME.fullmatch(name):
        shown = ascii(name[:40]) + ("..." if len(name) > 40 else "")
        raise ValueError(
            f"the name {shown} ({len(name)} characters) cannot be a run folder's name; expected "
            f"1 to {MAX_NAME} letters, digits, inner spaces or _ . - + = @, starting with a "
            "letter, digit or _ (no '/', '..' or control characters). fix: e.g. name: "
            "my_experiment"
        )
    return name


SafeName = Annotated[str, AfterValidator(_safe_name)]


class LintSpec(Spec):
    """Lint settings: rule ids silenced for this spec (shown in the summary)."""

    ignore: tuple[str, ...] = Field(
        default=(), description="Rule ids to silence, e.g. [REG-4, OPT-9]."
    )


class ExperimentSpec(Spec):
    """A complete experiment: data, model, loss, optimizer, schedule, training loop."""

    spec_version: Literal[1] = Field(
        default=SPEC_VERSION, description="Schema version of this spec."
    )
    name: SafeName = Field(
        default="experiment",
        min_length=1,
        description=f"Experiment name: the run folder's parent (1 to {MAX_NAME} letters, digits "
        "inner spaces or _ . - + = @).",
    )
    seed: NonNegInt = Field(
        default=0, lt=2**32, description="Seeds every generator (REPRO-1; NumPy's limit: < 2^32)."
    )
    task: Task = Field(
        default="classification", description="Decides head, loss and metrics (OUT/LOSS)."
    )
    data: DataSpec = Field(default_factory=DataSpec)
    model: ModelSpec
    loss: LossField = Field(default_factory=LossSpec)
    optim: OptimSpec = Field(default_factory=AdamW, description="Optimizer (OPT-1: AdamW).")
    schedule: ScheduleSpec = Field(default_factory=Constant, description="LR schedule.")
    train: TrainSpec = Field(default_factory=TrainSpec)
    lint: LintSpec = Field(default_factory=LintSpec)

    @model_validator(mode="after")
    def _training_rules(self) -> ExperimentSpec:
        check_training_rules(self)  # loss/task, double activation, monitors, ... (training_rules)
        return self

    @model_validator(mode="after")
    def _clip_sequence_models(self) -> ExperimentSpec:
        # TRAIN-6: recurrent/attention models clip the global gradient norm at 1.0 unless the spec
        # sets train.clip_grad itself (the resolved value is what `dump` writes).
        if "clip_grad" in self.train.model_fields_set or not needs_clipping(self.model):
            return self
        clip = ClipGradSpec(kind="norm", max_norm=1.0)
        return self.model_copy(update={"train": self.train.model_copy(update={"clip_grad": clip})})


@functools.cache
def _section_adapter(name: str) -> TypeAdapter[Any]:
    info = ExperimentSpec.model_fields[name]
    if not info.metadata:
        return TypeAdapter(info.annotation)
    return TypeAdapter(Annotated[info.annotation, *info.metadata])  # constraints, discriminator


def partial_rule_errors(data: object) -> ValidationError | None:
    """The cross-section problems of experiment data that failed validation elsewhere.

    Pydantic runs the experiment's model validators only when every field is valid, so a bad
    ``optim.lr`` would hide a loss that does not fit the task until it is fixed. Here each
    top-level section is validated on its own (a missing one takes its default) and every rule
    whose sections are all valid runs on them (``spec.training_rules.TRAINING_RULES``).
    """
    if not isinstance(data, Mapping):
        return None
    valid: dict[str, Any] = {}
    for name, info in ExperimentSpec.model_fields.items():
        try:
            if name in data:
                valid[name] = _section_adapter(name).validate_python(data[name])
            elif not info.is_required():
                valid[name] = info.get_default(call_default_factory=True)
        except ValidationError:
            continue  # reported by the full validation
    if len(valid) == len(ExperimentSpec.model_fields) and set(data) <= set(valid):
        return None  # every section is valid: the model validators ran and said it all
    found = training_rule_errors(SimpleNamespace(**valid), frozenset(valid))
    return ValidationError.from_exception_data("ExperimentSpec", found) if found else None
