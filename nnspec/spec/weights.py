"""``model.init_from``: start from weights saved elsewhere (another run, a ``.pt`` state dict or a
``.safetensors`` file), matched by key through a declared rename map.

The map is data: ordered ``regular expression -> replacement`` pairs applied to every source key
in turn (Python's ``re.sub`` syntax, ``\\1`` for a group), so a checkpoint written with another
layout (torchvision's ``layer1.0.conv1.weight``) finds nnspec's keys (``layers.2.0.body.0.op.
weight``). Loading happens in the run layer (:mod:`nnspec.run.weights`), after nnspec's own
initialisation, so every tensor not loaded keeps its rule-based init; ``trainable: false`` and
``lr_scale`` of the layers apply to loaded weights as to any others.
"""

# No `from __future__ import annotations` in the schema modules (see nnspec.spec.base).

import re
from typing import Self

from pydantic import Field, model_validator

from nnspec.spec.base import Spec, field_error

__all__ = ["InitFrom", "WEIGHT_SUFFIXES"]

# what a file path may end with (a folder is a finished run: its model.pt)
WEIGHT_SUFFIXES = (".pt", ".pth", ".safetensors")


class InitFrom(Spec):
    """Weights to load into the built model before training."""

    path: str = Field(
        description="A finished run's folder (its model.pt), a .pt/.pth file holding a state dict "
        "(weights only: loaded with weights_only=True) or a .safetensors file; relative to the "
        "spec file's folder.",
        min_length=1,
    )
    map: dict[str, str] = Field(
        default_factory=dict,
        description="Key renames, applied in order to every source key: regular expression -> "
        "replacement (re.sub syntax). E.g. {'^fc\\\\.': 'layers.8.op.'}.",
    )
    exclude: tuple[str, ...] = Field(
        default=(),
        description="Regular expressions of model keys (after renaming) never loaded, e.g. a "
        "head whose class count differs: ['^layers\\\\.8\\\\.'].",
    )
    strict: bool = Field(
        default=False,
        description="True: every model key must be loaded and every source key used, with equal "
        "shapes. False: mismatched and missing keys are skipped and reported.",
    )

    @model_validator(mode="after")
    def _patterns_compile(self) -> Self:
        named = [*(("map", p) for p in self.map), *(("exclude", p) for p in self.exclude)]
        for loc, pattern in named:
            try:
                re.compile(pattern)
            except re.error as e:
                message = f"not a regular expression ({e}): {pattern!r}"
                raise field_error((loc,), message, pattern) from e
        return self
