"""``train.extensions``: the record of a run continued past its planned end.

``nnspec train RUN_DIR --extend train.epochs=N`` (and ``nnspec.train(RUN_DIR, [...],
extend=True)``) appends one :class:`ExtensionSpec` to the run's ``spec.yaml``. The run's epochs are
then split into *segments*: the first segment runs the spec's ``schedule`` over
``previous_epochs`` of the first extension (the plan it was started with), each extension runs its
own ``schedule``, restarted from the base learning rate, over the epochs from its ``from_epoch`` to
the next extension's ``previous_epochs`` (the last one: to ``train.epochs``).

Example:
    >>> ext = ExtensionSpec(from_epoch=3, previous_epochs=3, schedule={"kind": "cosine"},
    ...                     from_hash="0123456789abcdef", at="2026-01-01T00:00:00Z")
    >>> ext.schedule.kind
    'cosine'
"""

from __future__ import annotations

from pydantic import Field

from nnspec.spec.base import PosInt, Spec, field_error
from nnspec.spec.schedule import ScheduleSpec

__all__ = ["ExtensionSpec", "check_extensions"]


class ExtensionSpec(Spec):
    """One extension of a run: where it continued and the LR schedule of the added epochs."""

    from_epoch: PosInt = Field(description="The last epoch trained before the extension.")
    previous_epochs: PosInt = Field(
        description="train.epochs before the extension: the previous schedule spans up to it."
    )
    schedule: ScheduleSpec = Field(
        description="LR schedule of the added epochs, started afresh from the base LR."
    )
    from_hash: str = Field(
        pattern=r"^[0-9a-f]{16}$",
        description="Spec hash of the checkpoint the extension continued from.",
    )
    at: str = Field(description="When the run was extended (UTC, ISO 8601).")


def check_extensions(extensions: tuple[ExtensionSpec, ...], epochs: int) -> None:
    """The extensions form one history ending at ``epochs``.

    Raises:
        ValidationError: an extension starts after its plan ended, before the previous extension,
            or the last one at or after ``train.epochs``.
    """
    previous_start = 0
    for i, ext in enumerate(extensions):
        if ext.from_epoch > ext.previous_epochs:
            raise field_error(("extensions", i, "from_epoch"), f"from_epoch {ext.from_epoch} is "
                              f"after previous_epochs {ext.previous_epochs}: a run cannot have "
                              "trained past its plan (fix: spec.yaml as nnspec wrote it)",
                              ext.from_epoch)  # fmt: skip
        if ext.from_epoch <= previous_start:
            raise field_error(("extensions", i, "from_epoch"), f"from_epoch {ext.from_epoch} is "
                              f"not after the previous extension's ({previous_start}): "
                              "extensions are listed in the order they happened",
                              ext.from_epoch)  # fmt: skip
        previous_start = ext.from_epoch
    if extensions and extensions[-1].from_epoch >= epochs:
        last = extensions[-1].from_epoch
        raise field_error(("epochs",), f"train.epochs {epochs} must be larger than {last}, the "
                          "epoch the run's last extension started from (fix: train.epochs > "
                          f"{last})", epochs)  # fmt: skip
