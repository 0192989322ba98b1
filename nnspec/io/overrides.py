"""``key.path=value`` overrides on plain spec data (the CLI's ``nnspec validate SPEC k=v``).

Values are YAML scalars or flow collections read with the safe loader (``optim.lr=3e-4``,
``model.input_shape=[1,8,8]``, ``model.layers.0.activation={kind: leaky_relu}``); list items are
addressed by number (``model.layers.3.out_features=64``); ``~key.path`` deletes a key. Unknown
fields are refused with the override's text and a "did you mean". Hydra composition replaces this
for ``nnspec train``; validate/summary/schema and the tests use it directly.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from nnspec.errors import Problem, SpecError, did_you_mean
from nnspec.io.source import FieldPath
from nnspec.io.walk import spec_class_at

__all__ = ["Override", "parse_override", "apply_overrides", "override_origins"]


@dataclass(frozen=True)
class Override:
    """One parsed override: the field path, its new value, or a deletion."""

    text: str
    path: FieldPath
    value: Any = None
    delete: bool = False


def _fail(text: str, path: FieldPath, message: str, fix: str | None = None) -> SpecError:
    return SpecError(Problem(path, message, fix=fix, file=f"override '{text}'"))


def parse_override(text: str) -> Override:
    """Parse ``key.path=value`` (or ``~key.path``) into an :class:`Override`.

    Example:
        >>> o = parse_override("model.layers.3.out_features=64")
        >>> o.path, o.value
        (('model', 'layers', 3, 'out_features'), 64)
    """
    delete = text.startswith("~")
    key, sep, raw = text.lstrip("~+").partition("=")
    if not delete and not sep:
        raise _fail(text, (), "an override needs the form key.path=value",
                    "e.g. optim.lr=3e-4 or model.layers.0.out_features=64")  # fmt: skip
    parts = key.strip().split(".")
    if not all(parts):
        raise _fail(text, (), f"empty field name in '{key}'", "write key.path=value")
    path = tuple(int(p) if p.lstrip("-").isdigit() else p for p in parts)
    return Override(text, path, None if delete else _parse_value(text, raw), delete)


def _parse_value(text: str, raw: str) -> Any:
    from nnspec.io.reader import parse_value

    try:
        return parse_value(raw)
    except SpecError as e:
        problem = e.problems[0]
        fix = problem.fix or "quote it, e.g. key='a: b'"
        raise _fail(text, (), f"the value is not valid: {problem.message}", fix) from None


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of ``data`` with every override applied in order.

    Example:
        >>> apply_overrides({"optim": {"kind": "sgd"}}, ["optim.lr=0.1"])
        {'optim': {'kind': 'sgd', 'lr': 0.1}}

    Raises:
        SpecError: bad syntax, an unknown field (with a "did you mean"), or a list index out of
            range; the problem names the override's text.
    """
    out = copy.deepcopy(data)
    for text in overrides:
        _apply(out, parse_override(text))
    return out


def override_origins(overrides: list[str]) -> dict[FieldPath, str]:
    """``path -> override text`` for a :class:`~nnspec.io.source.SourceMap`'s ``origins``."""
    return {parse_override(text).path: text for text in overrides}


def _apply(data: dict[str, Any], ov: Override) -> None:
    node: Any = data
    for depth, item in enumerate(ov.path):
        _check_field(data, ov, depth)
        last = depth == len(ov.path) - 1
        if isinstance(node, list):
            if not isinstance(item, int) or not -len(node) <= item < len(node):
                raise _fail(ov.text, ov.path[: depth + 1], f"no item {item} in a list of "
                            f"{len(node)}", f"use an index from 0 to {len(node) - 1}")  # fmt: skip
        elif not isinstance(node, dict):
            raise _fail(ov.text, ov.path[:depth], f"cannot set '{item}' inside {node!r}",
                        "replace the whole value instead")  # fmt: skip
        if last:
            if ov.delete:
                if isinstance(node, dict):
                    node.pop(item, None)
                else:
                    del node[item]
            else:
                node[item] = ov.value
            return
        node = _descend(data, node, item, ov.path[: depth + 1])


def _descend(data: dict[str, Any], node: Any, item: str | int, path: FieldPath) -> Any:
    """The child at ``item``, created or expanded into a mapping so a field can be set in it."""
    from nnspec.spec.layers import normalize_layer

    child = node.get(item) if isinstance(node, dict) else node[item]
    if child is None:
        # A section the user left out: start from its default's kind (schedule -> constant).
        cls = spec_class_at(path, data)
        default_kind = (
            cls.model_fields["kind"].default if cls and "kind" in cls.model_fields else None
        )
        child = {"kind": default_kind} if isinstance(default_kind, str) else {}
    elif isinstance(child, str) and _has_kind(path, data):
        child = {"kind": child}  # a bare name (`activation: relu`) becomes its mapping form
    elif (
        isinstance(child, dict) and "kind" not in child and len(path) >= 2 and path[-2] == "layers"
    ):
        try:
            child = normalize_layer(child)  # `{linear: 128}` -> {kind: linear, out_features: 128}
        except ValueError:
            pass  # a bad shorthand: validation reports it
    node[item] = child
    return child


def _has_kind(path: FieldPath, data: dict[str, Any]) -> bool:
    cls = spec_class_at(path, data)
    return cls is not None and "kind" in cls.model_fields


def _check_field(data: dict[str, Any], ov: Override, depth: int) -> None:
    item = ov.path[depth]
    if not isinstance(item, str):
        return
    cls = spec_class_at(ov.path[:depth], data)
    if cls is None or item in cls.model_fields:
        return
    hint = did_you_mean(item, cls.model_fields)
    raise _fail(ov.text, ov.path[: depth + 1],
                f"unknown field '{item}'" + (f"; {hint}" if hint else ""),
                "fields here: " + ", ".join(sorted(cls.model_fields)))  # fmt: skip
