"""The one override grammar of nnspec: Hydra's override parser.

Every command line (``nnspec validate``, ``train``, ...) and the Python API's ``overrides=`` are
read by Hydra's own parser (``optim.lr=3e-4``, ``model.input_shape=[1,8,8]``, ``~key.path``,
``name=${optim.kind}``, quoted values), so a value means the same everywhere. Layers and blocks
may be addressed by ``name`` as well as by index (``model.layers.hidden.out_features=64``): the
name is rewritten to the index first (layer names are unique and never integer-like).

The CLI composes through Hydra (:mod:`nnspec.hydra.compose`); :func:`apply_overrides` applies
``key=value`` overrides to a spec's plain data for the Python API (``nnspec.train(spec,
overrides=...)``), with nnspec's did-you-mean for unknown fields.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nnspec.errors import Problem, SpecError, did_you_mean
from nnspec.io.source import FieldPath
from nnspec.io.walk import spec_class_at

__all__ = [
    "Override",
    "parse_overrides",
    "parse_override",
    "apply_overrides",
    "override_origins",
    "rewrite_names",
]

_FORM = "write key.path=value, group=option or ~key.path; quote a value holding spaces or commas"


@dataclass(frozen=True)
class Override:
    """One parsed ``key=value`` override: the field path, its new value, or a deletion."""

    text: str
    path: FieldPath
    value: Any = None
    delete: bool = False


def _fail(text: str, path: FieldPath, message: str, fix: str | None = None) -> SpecError:
    return SpecError(Problem(path, message, fix=fix, file=f"override '{text}'"))


def parse_overrides(overrides: Sequence[str]) -> list[Any]:
    """Hydra's parsed ``Override`` objects, one per text.

    Raises:
        SpecError: every override the grammar cannot parse at once, each naming its text.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    out, problems = [], []
    for text in overrides:
        try:
            out.append(parser.parse_override(text))
        except HydraException as e:  # the parser's own errors, and its lexer's
            msg = " ".join(str(e).split()) or "not an override"
            problems.append(Problem((), f"an override needs the form key.path=value: {msg}",
                                    fix=_FORM, file=f"override '{text}'"))  # fmt: skip
    if problems:
        raise SpecError(problems)
    return out


def _path(key: str) -> FieldPath:
    return tuple(int(p) if p.lstrip("-").isdigit() else p for p in key.split("."))


def parse_override(text: str) -> Override:
    """Parse ``key.path=value`` (or ``~key.path``) with Hydra's grammar.

    Example:
        >>> o = parse_override("model.layers.3.out_features=64")
        >>> o.path, o.value
        (('model', 'layers', 3, 'out_features'), 64)
    """
    (ov,) = parse_overrides([text])
    if ov.is_sweep_override():
        raise _fail(text, _path(ov.key_or_group), "a sweep is a value of `nnspec train -m`",
                    "give one value here")  # fmt: skip
    delete = ov.is_delete()
    return Override(text, _path(ov.key_or_group), None if delete else ov.value(), delete)


def override_origins(overrides: Sequence[str]) -> dict[FieldPath, str]:
    """``path -> override text`` for a :class:`~nnspec.io.source.SourceMap`'s ``origins``."""
    return {_path(ov.key_or_group): text
            for text, ov in zip(overrides, parse_overrides(overrides), strict=True)}  # fmt: skip


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
    renamed = rewrite_names(list(overrides), out)
    for text in overrides:
        ov = parse_override(renamed.get(text, text))
        _apply(out, Override(text, ov.path, ov.value, ov.delete))
    return out


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


def rewrite_names(keys: Sequence[str], config: Mapping[str, Any]) -> dict[str, str]:
    """``override text -> the same override with layer names replaced by indices``.

    Example:
        >>> cfg = {"model": {"layers": [{"kind": "linear", "name": "hidden"}]}}
        >>> rewrite_names(["model.layers.hidden.out_features=64"], cfg)
        {'model.layers.hidden.out_features=64': 'model.layers.0.out_features=64'}

    Raises:
        SpecError: every segment that names no item of its list, with the names there.
    """
    out: dict[str, str] = {}
    problems: list[Problem] = []
    for text, ov in zip(keys, parse_overrides(keys), strict=True):
        raw = ov.key_or_group
        parts, changed = raw.split("."), False
        node: Any = config
        for i, part in enumerate(parts):
            if isinstance(node, list) and not part.lstrip("-").isdigit():
                index = _index(node, part)
                if index is None:
                    problems.append(_unknown(text, parts[: i + 1], node))
                    break
                parts[i], changed = str(index), True
            node = _child(node, parts[i])
        if changed:
            start = text.index(raw)
            out[text] = text[:start] + ".".join(parts) + text[start + len(raw) :]
    if problems:
        raise SpecError(problems)
    return out


def _index(items: list[Any], name: str) -> int | None:
    for i, item in enumerate(items):
        if isinstance(item, Mapping) and item.get("name") == name:
            return i
    return None


def _child(node: Any, part: str) -> Any:
    if isinstance(node, Mapping):
        return node.get(part)
    if (
        isinstance(node, list)
        and part.lstrip("-").isdigit()
        and -len(node) <= int(part) < len(node)
    ):
        return node[int(part)]
    return None


def _unknown(text: str, path: list[str], items: list[Any]) -> Problem:
    names = [str(x["name"]) for x in items if isinstance(x, Mapping) and x.get("name")]
    hint = did_you_mean(path[-1], names)
    msg = f"no item named '{path[-1]}' in {'.'.join(path[:-1])}" + (f"; {hint}" if hint else "")
    fix = (
        f"names here: {', '.join(names)}; or an index from 0 to {len(items) - 1}"
        if names
        else f"these items have no name: use an index from 0 to {len(items) - 1}"
    )
    return Problem(tuple(path), msg, fix=fix, file=f"override '{text}'")
