"""The one base class of every spec model, and shared field types (STYLE §2)."""

# No `from __future__ import annotations` in the schema modules on the model's build path: pydantic
# would eval every field's annotation string one by one at import (bench/bench_import.py);
# forward references are quoted where needed.

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

__all__ = [
    "field_error",
    "Spec",
    "PosInt",
    "NonNegInt",
    "PosFloat",
    "NonNegFloat",
    "Prob",
    "Fraction",
]


class Spec(BaseModel):
    """Frozen, strict base: a misspelt field is an error, never silently dropped.

    A spec class called from Python (``Linear(out_features=-1)``) raises pydantic's
    ``ValidationError`` (a ``ValueError``), as any pydantic model does. The entry points that take
    user input (``nnspec.load``/``loads``, ``nnspec.io.validate``, ``nnspec.train``,
    ``nnspec.compile`` and the CLI) validate with ``model_validate`` and translate that error into
    one :class:`~nnspec.errors.SpecError` with field paths, did-you-mean and, for files, line
    numbers (:mod:`nnspec.io.problems`).
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        validate_default=False,
        # Descriptions live on Field(description=...) (STYLE §2); reading attribute docstrings made
        # pydantic parse every class's source at import and added nothing to the JSON Schema.
        use_attribute_docstrings=False,
        protected_namespaces=(),
        # Validators are built on first use, not at import: `import nnspec` + build_model stays
        # close to `import torch` (bench/bench_import.py); the first validation pays it once.
        defer_build=True,
        # Keep the user's ints as ints and floats as floats: `lr: 1` is a float 1.0, `epochs: 1.5`
        # is refused rather than truncated.
        strict=False,
    )


PosInt = Annotated[int, Field(gt=0)]
NonNegInt = Annotated[int, Field(ge=0)]
PosFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]  # `.inf` is no value to train with
NonNegFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Prob = Annotated[float, Field(ge=0, lt=1)]
Fraction = Annotated[float, Field(gt=0, lt=1)]


def field_error(loc: tuple[str | int, ...], message: str, value: object = None) -> ValidationError:
    """A ValidationError at ``loc`` (relative to the model being validated).

    Raised from a ``model_validator``, it keeps its location, so a cross-field rule can point at the
    exact field (``model.layers.5.dropout``) instead of the whole section.
    """
    # No context: pydantic fills `{name}` placeholders from a context only and has no `{{` escape,
    # so without one the text (braces included) is shown as written.
    err = PydanticCustomError("nnspec_rule", message)
    return ValidationError.from_exception_data(
        "spec", [InitErrorDetails(type=err, loc=loc, input=value)]
    )
