"""The one base class of every spec model, and shared field types (STYLE §2)."""

# No `from __future__ import annotations` in the schema modules on the model's build path: pydantic
# would eval every field's annotation string one by one at import (~5 ms of `import nnspec` +
# build_model, bench/bench_import.py); forward references are quoted where needed.

from typing import TYPE_CHECKING, Annotated, Any, dataclass_transform

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

# pydantic exports no name for BaseModel's metaclass (it is type(BaseModel)); this module path has
# held it since pydantic 2.0, and a named class keeps type checkers' view of it
from pydantic._internal._model_construction import ModelMetaclass
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


@dataclass_transform(kw_only_default=True, field_specifiers=(Field, PrivateAttr))  # as pydantic's
class _SpecMeta(ModelMetaclass):
    """Spec classes called from Python (``Linear(out_features=-1)``) raise :class:`SpecError`.

    Only the explicit call is wrapped: pydantic validates nested specs and ``model_validate``
    input without calling the class, so validators keep pydantic's ValidationError (with its
    location) for ``nnspec.load`` to translate with file and line. A validator that builds a spec
    itself should use ``X.model_validate({...})``: a SpecError raised inside validation is only a
    ValueError to pydantic, which reports it at the enclosing spec.
    """

    if not TYPE_CHECKING:  # type checkers keep the per-class signatures pydantic synthesises

        def __call__(cls, *args: Any, **kwargs: Any) -> Any:
            try:
                return super().__call__(*args, **kwargs)
            except ValidationError as e:
                raise _spec_error(e, kwargs, cls) from e


def _spec_error(exc: ValidationError, kwargs: dict[str, Any], cls: type[BaseModel]) -> Exception:
    from nnspec.errors import Problem, SpecError
    from nnspec.io.problems import problems_from_validation

    try:
        return SpecError(problems_from_validation(exc, _plain(kwargs), root=cls))
    except Exception:  # odd arguments (a cyclic list): fall back to pydantic's own wording
        return SpecError([Problem(tuple(e["loc"]), e["msg"]) for e in exc.errors()])


def _plain(value: Any) -> Any:
    """Python arguments as YAML-like data (specs as mappings, tuples as lists), so that an error's
    path can be followed into them as into a loaded file."""
    if isinstance(value, BaseModel):
        return _plain(value.model_dump())
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class Spec(BaseModel, metaclass=_SpecMeta):
    """Frozen, strict base: a misspelt field is an error, never silently dropped."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        validate_default=False,
        # Descriptions live on Field(description=...) (STYLE §2); reading attribute docstrings made
        # pydantic parse every class's source at import (~0.13 s of `import nnspec.spec`) and
        # added nothing to the JSON Schema (checked: identical schema).
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
PosFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
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
