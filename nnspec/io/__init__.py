"""YAML in and out, with file:line:col on every error.

Reading goes through ruamel.yaml's round-trip parser (for line/column marks), refusing tags,
duplicate keys and instantiation keys (:mod:`nnspec.io.reader`); validation turns every pydantic
error into one :class:`~nnspec.errors.SpecError` holding all problems (:mod:`nnspec.io.problems`);
:func:`dump` writes canonical YAML that loads back equal (:mod:`nnspec.io.writer`).

Example:
    >>> spec = loads("model: {input_shape: [4], layers: [{linear: 8}, {linear: 2}]}")
    >>> loads(dump(spec)) == spec
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from nnspec.errors import SpecError
from nnspec.io.overrides import Override, apply_overrides, override_origins, parse_override
from nnspec.io.problems import problems_from_validation, show_value
from nnspec.io.reader import parse_yaml, read_yaml
from nnspec.io.source import FieldPath, SourceMap, attach_source
from nnspec.io.writer import dump, dump_data, dumps_data
from nnspec.spec.experiment import ExperimentSpec, partial_rule_errors

__all__ = [
    "loads",
    "load",
    "load_with_source",
    "read_yaml",
    "parse_yaml",
    "validate",
    "as_spec",
    "dump",
    "dump_data",
    "dumps_data",
    "apply_overrides",
    "parse_override",
    "override_origins",
    "Override",
    "SourceMap",
    "FieldPath",
    "attach_source",
    "show_value",
]

M = TypeVar("M", bound=BaseModel)


def validate(
    data: Any,
    source: SourceMap | None = None,
    *,
    model: type[M] = ExperimentSpec,  # type: ignore[assignment]
    prefix: FieldPath = (),
) -> M:
    """Validate plain data into ``model``; every problem is reported in one :class:`SpecError`.

    Args:
        data: Plain data, e.g. from :func:`read_yaml`.
        source: Where each path came from, for ``file:line:col`` in the problems.
        model: The spec class (default: the whole experiment).
        prefix: Path of ``data`` inside the file when validating a sub-section, e.g. ``("model",)``.

    Example:
        >>> try:
        ...     validate({"model": {"input_shape": [4], "layers": [{"linear": 0}]}})
        ... except SpecError as e:
        ...     print(e.problems[0].where, e.problems[0].message)
        model.layers.0.out_features must be greater than 0
    """
    try:
        return model.model_validate(data)
    except ValidationError as e:
        # spec objects in Python data are walked as their fields, so a path can point into them
        walk = _as_data(data)
        problems = problems_from_validation(e, walk, source, root=model, prefix=prefix)
        rules = partial_rule_errors(data) if model is ExperimentSpec else None
        if rules is not None:  # cross-section rules the field errors did not make moot
            problems += problems_from_validation(rules, walk, source, root=model, prefix=prefix)
            problems.sort(key=lambda p: (p.line is None, p.line or 0, p.col or 0))
        raise SpecError(problems) from e


def as_spec(value: M | Mapping[str, Any], model: type[M]) -> M:
    """``value`` as a ``model`` instance: a spec is returned as it is, a mapping is validated.

    The Python entry points (``nnspec.compile``) take either, so a caller who passes plain data
    gets one :class:`SpecError` with field paths and did-you-mean, as a YAML file would.

    Raises:
        SpecError: every problem of a mapping.
        TypeError: ``value`` is neither a ``model`` nor a mapping.

    Example:
        >>> from nnspec.spec import ModelSpec
        >>> as_spec({"input_shape": [4], "layers": [{"linear": 2}]}, ModelSpec).input_shape
        (4,)
        >>> try:
        ...     as_spec({"input_shape": [4], "layers": [{"linear": 2}], "laers": []}, ModelSpec)
        ... except SpecError as e:
        ...     print(e.problems[0].where, e.problems[0].message)
        laers unknown field 'laers'; did you mean 'layers'?
    """
    if isinstance(value, model):
        return value
    if not isinstance(value, Mapping):
        raise TypeError(
            f"expected {model.__name__} or a mapping of its fields; found {type(value).__name__}"
        )
    return validate(dict(value), model=model)


def _as_data(value: Any) -> Any:
    """Python arguments as YAML-like data: specs as mappings, tuples as lists."""
    if isinstance(value, BaseModel):
        return _as_data(value.model_dump())
    if isinstance(value, Mapping):
        return {k: _as_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_as_data(v) for v in value]
    return value


def load_with_source(path_or_text: str | Path) -> tuple[ExperimentSpec, SourceMap]:
    """Read and validate a spec; also return its :class:`SourceMap` (for later shape errors)."""
    data, source = read_yaml(path_or_text)
    return validate(data, source), source


def load(path_or_text: str | Path) -> ExperimentSpec:
    """Load an experiment spec from a file path or from YAML text.

    A string is a path when it names an existing file or ends with ``.yaml``/``.yml``.

    Raises:
        SpecError: with every problem of the file, each with ``file:line:col`` and field path.
    """
    return load_with_source(path_or_text)[0]


def loads(text: str, *, filename: str | None = None) -> ExperimentSpec:
    """Load an experiment spec from YAML text (``filename`` only labels the error messages)."""
    data, source = parse_yaml(text, filename=filename)
    return validate(data, source)
