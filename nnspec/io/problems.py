"""Pydantic's validation errors -> nnspec :class:`~nnspec.errors.Problem` records.

Pydantic's ``loc`` describes its own schema, not the user's file: it contains union branch labels
(``('optim', 'adam', 'lr', 'constrained-float')``), and a value that fails a union yields one error
per branch. This module maps each ``loc`` back onto the user's data path, merges a union's errors
into one "expected X or Y" problem, attaches ``file:line:col`` and adds a "did you mean".
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, ValidationError

from nnspec.errors import Problem, did_you_mean, format_path
from nnspec.io.source import FieldPath, SourceMap
from nnspec.io.walk import UNKNOWN, field_info_at, kind_choices, spec_class_at

__all__ = ["problems_from_validation", "show_value"]

# pydantic's names for union members that are not models: 'constrained-float', "literal['auto']",
# 'tuple[constrained-int, ...]', 'function-after[...]', or a bare type name.
_LABEL_RE = re.compile(r"[\[\]\-'(), ]")
_TYPE_LABELS = frozenset({"int", "float", "str", "bool", "none", "list", "tuple", "dict", "set"})

# What a field's values are called in messages: `unknown activation 'rleu'`.
_WHAT: Mapping[str, str] = MappingProxyType(
    {"activation": "activation", "init": "init rule", "optim": "optimizer", "schedule": "schedule",
     "loss": "loss", "task": "task", "norm": "norm", "source": "data source",
     "spec_version": "spec version", "callbacks": "callback"}
)  # fmt: skip


def show_value(value: object, limit: int = 60) -> str:
    """A short rendering of a user's value for messages: ``'rleu'``, ``-3``, ``[1, 2]``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        text = repr(value)
    else:
        text = json.dumps(value, default=str, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _tag_labels() -> frozenset[str]:
    """Branch tags of nnspec's discriminated unions (they appear in pydantic's ``loc``)."""
    from nnspec.spec.activations import ACTIVATION_CLASSES
    from nnspec.spec.optim import OPTIM_CLASSES
    from nnspec.spec.schedule import SCHEDULE_CLASSES

    init_tags = {"preset", "variance_scaling", "orthogonal_gain", "constant"}
    return frozenset({*ACTIVATION_CLASSES, *OPTIM_CLASSES, *SCHEDULE_CLASSES, *init_tags})


def _translate(
    loc: Sequence[str | int], data: Any, tags: frozenset[str]
) -> tuple[FieldPath, int | None, str | None]:
    """Map pydantic's ``loc`` onto the user's data path.

    Returns ``(path, union_at, label)``: where a non-discriminated union's branch label was dropped
    (the errors of its branches are merged there), and that label.
    """
    out: list[str | int] = []
    node: Any = data
    union_at: int | None = None
    label: str | None = None
    for item in loc:
        if isinstance(node, dict) and item in node:
            out.append(item)
            node = node[item]
        elif isinstance(node, list) and isinstance(item, int) and 0 <= item < len(node):
            out.append(item)
            node = node[item]
        elif isinstance(item, str) and (_LABEL_RE.search(item) or item in _TYPE_LABELS):
            if union_at is None:
                union_at, label = len(out), item
        elif isinstance(item, str) and (item in tags or _kind_of(node) == item):
            continue  # a discriminated union's tag: the data's `kind` already says it
        elif node is not UNKNOWN and not isinstance(node, (dict, list)):
            break  # below a bare name (`relu`) pydantic validated the normalised mapping
        else:
            out.append(item)
            node = UNKNOWN
    return tuple(out), union_at, label


def _kind_of(node: Any) -> Any:
    return node.get("kind") if isinstance(node, dict) else None


def _value_at(data: Any, path: FieldPath) -> Any:
    node = data
    for item in path:
        if isinstance(node, dict) and item in node:
            node = node[item]
        elif isinstance(node, list) and isinstance(item, int) and 0 <= item < len(node):
            node = node[item]
        else:
            return UNKNOWN
    return node


def _field_name(path: FieldPath) -> str:
    names = [p for p in path if isinstance(p, str) and p != "kind"]
    if path and path[-1] == "kind" and names:
        return names[-1]
    return names[-1] if names else "value"


def _choices(text: str) -> list[str]:
    """The quoted names in pydantic's ``'a', 'b' or 'c'``."""
    return re.findall(r"'([^']*)'", text)


# -- one function per pydantic error type: (error, path, data, root) -> (message, expected, fix) -
# `root` is the spec class that was validated (None: the whole experiment); field names and
# kinds are looked up from it.
Rendered = tuple[str, str | None, str | None]
Root = type[BaseModel] | None


def _extra(err: Mapping[str, Any], path: FieldPath, data: Any, root: Root) -> Rendered:
    name = str(path[-1])
    cls = spec_class_at(path[:-1], data, root)
    fields = sorted(cls.model_fields) if cls is not None else []
    hint = did_you_mean(name, fields) or _nested_hint(name, path[:-1], fields, data, root)
    expected = f"one of {', '.join(fields)}" if fields else None
    return f"unknown field '{name}'" + (f"; {hint}" if hint else ""), expected, None


def _nested_hint(
    name: str, parent: FieldPath, fields: list[str], data: Any, root: Root
) -> str | None:
    """``train.patience`` -> "did you mean 'early_stopping.patience'?" (one level down)."""
    for field in fields:
        cls = spec_class_at((*parent, field), data, root)
        if cls is not None and name in cls.model_fields:
            return f"did you mean '{field}.{name}'?"
    return None


def _missing(err: Mapping[str, Any], path: FieldPath, data: Any, root: Root) -> Rendered:
    name = str(path[-1]) if path else "value"
    info = field_info_at(path, data, root)
    about = f" ({info.description.rstrip('.')})" if info and info.description else ""
    return f"missing required field '{name}'", None, f"add `{name}: ...`{about}"


def _unknown_name(found: Any, choices: list[str], path: FieldPath) -> Rendered:
    field = _field_name(path)
    what = _WHAT.get(field, f"{field} value")
    hint = did_you_mean(found, choices)
    message = f"unknown {what} {show_value(found)}" + (f"; {hint}" if hint else "")
    expected = ", ".join(repr(c) for c in choices)
    return message, (f"one of {expected}" if len(choices) > 1 else expected), None


def _literal(err: Mapping[str, Any], path: FieldPath, data: Any, root: Root) -> Rendered:
    expected = str(err.get("ctx", {}).get("expected", ""))
    choices = _choices(expected)
    if choices or not expected:
        return _unknown_name(err["input"], choices, path)
    # non-string literals (`spec_version: Literal[1]`): pydantic writes them unquoted, `1 or 2`
    field = _field_name(path)
    message = f"unknown {_WHAT.get(field, f'{field} value')} {show_value(err['input'])}"
    return message, expected, None


def _tag_invalid(err: Mapping[str, Any], path: FieldPath, data: Any, root: Root) -> Rendered:
    ctx = err.get("ctx", {})
    return _unknown_name(ctx.get("tag"), _choices(ctx.get("expected_tags", "")), path)


def _tag_missing(err: Mapping[str, Any], path: FieldPath, data: Any, root: Root) -> Rendered:
    kinds, default = kind_choices(path, data, root)
    expected = "a mapping with a 'kind' field"
    if kinds:
        expected += ": one of " + ", ".join(repr(k) for k in kinds)
    fix = f"add `kind: {default}` (the default) or another kind" if default else None
    return "needs a 'kind' naming what it is", expected, fix


def _layer_kind(err: Mapping[str, Any], path: FieldPath, data: Any, root: Root) -> Rendered:
    expected = err.get("ctx", {}).get("expected")
    return err["msg"], (f"one of {expected}" if expected else None), None


def _layer_type(err: Mapping[str, Any], path: FieldPath, data: Any, root: Root) -> Rendered:
    return err["msg"], "a layer mapping such as {kind: linear, out_features: 64}", None


def _bare_activation_fix(value: Any, path: FieldPath, data: Any, prefix: FieldPath) -> str | None:
    """``- relu`` as a layer: the activation belongs on the layer before it."""
    from nnspec.spec.activations import ACTIVATION_CLASSES

    if not isinstance(value, str) or value not in ACTIVATION_CLASSES:
        return None
    what = f"'{value}' is an activation, not a layer"
    index = path[-1] if path else None
    if not isinstance(index, int) or index == 0:
        return f"{what}: write {{kind: activation, activation: {value}}}"
    before = _value_at(data, (*path[:-1], index - 1))
    kind = before.get("kind") or next(iter(before), "layer") if isinstance(before, dict) else None
    where = format_path((*prefix, *path[:-1], index - 1)) + (f" ({kind})" if kind else "")
    return f"{what}: set `activation: {value}` on {where}, the layer before it; remove this item"


def _plain(message: str, expected: str | None = None) -> Callable[..., Rendered]:
    def render(err: Mapping[str, Any], path: FieldPath, data: Any, root: Root) -> Rendered:
        ctx = {k: _number(v) for k, v in err.get("ctx", {}).items()}
        return message.format(**ctx), expected.format(**ctx) if expected else None, None

    return render


def _number(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else show_value(value)


def _own(err: Mapping[str, Any], path: FieldPath, data: Any, root: Root) -> Rendered:
    return err["msg"], None, None  # nnspec's own rules already write a full sentence


_RENDER: Mapping[str, Callable[..., Rendered]] = MappingProxyType({
    "extra_forbidden": _extra,
    "missing": _missing,
    "literal_error": _literal,
    "union_tag_invalid": _tag_invalid,
    "union_tag_not_found": _tag_missing,
    "unknown_layer_kind": _layer_kind,
    "layer_type": _layer_type,
    "nnspec_rule": _own,
    "greater_than": _plain("must be greater than {gt}", "a number > {gt}"),
    "greater_than_equal": _plain("must be at least {ge}", "a number >= {ge}"),
    "less_than": _plain("must be less than {lt}", "a number < {lt}"),
    "less_than_equal": _plain("must be at most {le}", "a number <= {le}"),
    "int_type": _plain("must be an integer", "an integer"),
    "int_parsing": _plain("must be an integer", "an integer"),
    "int_from_float": _plain("must be a whole number", "an integer"),
    "float_type": _plain("must be a number", "a number"),
    "float_parsing": _plain("must be a number", "a number"),
    "finite_number": _plain("must be a finite number", "a finite number"),
    "bool_type": _plain("must be true or false", "true or false"),
    "bool_parsing": _plain("must be true or false", "true or false"),
    "string_type": _plain("must be a string", "a string"),
    "string_too_short": _plain("must not be empty", "a non-empty string"),
    "string_pattern_mismatch": _plain("is not a valid name", "letters, digits and _ (not first)"),
    "tuple_type": _plain("must be a list", "a list"),
    "list_type": _plain("must be a list", "a list"),
    "too_short": _plain("needs at least {min_length} item(s)", "at least {min_length} item(s)"),
    "too_long": _plain("has too many items", "at most {max_length} item(s)"),
    "dict_type": _plain("must be a mapping", "a mapping"),
    "model_type": _plain("must be a mapping", "a mapping"),
    "model_attributes_type": _plain("must be a mapping", "a mapping"),
})  # fmt: skip


def _render(err: Mapping[str, Any], path: FieldPath, data: Any, root: Root) -> Rendered:
    renderer = _RENDER.get(err["type"])
    if renderer is None:
        msg = str(err.get("msg", "invalid value"))
        return msg[:1].lower() + msg[1:], None, None
    return renderer(err, path, data, root)


def _label_phrase(label: str | None) -> str:
    if label is None:
        return "a valid value"
    if label.startswith(("tuple", "list")):
        return "a list"
    if label.startswith("dict"):
        return "a mapping"
    if label.startswith("literal"):
        return " or ".join(repr(c) for c in _choices(label))
    return label


def problems_from_validation(
    exc: ValidationError,
    data: Any,
    source: SourceMap | None = None,
    *,
    root: type[BaseModel] | None = None,
    prefix: FieldPath = (),
) -> list[Problem]:
    """One :class:`Problem` per user-visible problem of ``exc`` (union errors merged).

    ``data`` is what was validated (the paths are looked up in it); ``prefix`` is prepended to every
    path when a sub-section (e.g. a ModelSpec at ``("model",)``) was validated on its own.
    """
    tags = _tag_labels()
    groups: dict[tuple[FieldPath, bool], list[tuple[Mapping[str, Any], FieldPath, str | None]]] = {}
    for err in exc.errors(include_url=False):
        path, union_at, label = _translate(err["loc"], data, tags)
        key = (path[:union_at], True) if union_at is not None else (path, False)
        groups.setdefault(key, []).append((err, path, label if union_at is not None else None))
    problems = [
        _problem(errs, base, merged, data, source, prefix, root)
        for (base, merged), errs in groups.items()
    ]
    return sorted(problems, key=lambda p: (p.line is None, p.line or 0, p.col or 0))


_KIND_ERRORS = frozenset({"union_tag_invalid", "unknown_layer_kind"})


def _problem(errs: list[Any], base: FieldPath, merged: bool, data: Any,
             source: SourceMap | None, prefix: FieldPath, root: Root) -> Problem:  # fmt: skip
    value = _value_at(data, base)
    found = None if value is UNKNOWN else show_value(value)
    if merged and len(errs) > 1:
        phrases: list[str] = []
        for err, path, label in errs:
            phrase = _render(err, path, data, root)[1] if path == base else _label_phrase(label)
            if phrase and phrase not in phrases:
                phrases.append(phrase)
        message, expected, fix = "invalid value", " or ".join(phrases) or None, None
    else:
        err, base, _ = errs[0]
        if err["type"] in _KIND_ERRORS and isinstance(value, dict) and "kind" in value:
            base, value = (*base, "kind"), value["kind"]  # point at the misspelt kind itself
            found = show_value(value)
        message, expected, fix = _render(err, base, data, root)
        if err["type"] == "layer_type":
            fix = _bare_activation_fix(value, base, data, prefix)
        if err["type"] in ("extra_forbidden", "missing"):
            found = None
        elif found is None and err["type"] != "nnspec_rule":
            found = show_value(err.get("input"))
    path = (*prefix, *base)
    file, line, col = None, None, None
    if source is not None:
        at_key = errs[0][0]["type"] == "extra_forbidden"  # an unknown field: point at its name
        file, line, col = source.locate_key(path) if at_key else source.locate(path)
    return Problem(path, message, expected, found, fix, file=file, line=line, col=col)
