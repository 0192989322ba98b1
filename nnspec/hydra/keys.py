"""Checks on override keys and composed data before nnspec validates them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nnspec.errors import Problem, SpecError, did_you_mean

__all__ = ["check_override_keys", "refuse_targets"]


def _walk(node: Any, parts: Sequence[str]) -> tuple[int, Any]:
    """How many leading parts of a dotted key exist in ``node``, and the last node reached."""
    for i, part in enumerate(parts):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return i, node
    return len(parts), node


def check_override_keys(keys: Sequence[str], container: Mapping[str, Any]) -> None:
    """Refuse ``key=value`` overrides naming a field that does not exist, with a did-you-mean.

    Runs before Hydra sees the overrides, so ``optim.lrr=1`` gets nnspec's message instead of
    Hydra's "Could not override".

    Raises:
        SpecError: one problem per unknown key, each naming the override text.
    """
    problems = []
    for text in keys:
        if text.startswith(("+", "~")):
            continue  # explicit adds/deletes: validation after composition judges them
        key = text.split("=", 1)[0]
        parts = key.split(".")
        depth, node = _walk(container, parts)
        if depth == len(parts):
            continue
        bad = parts[depth]
        choices = list(node) if isinstance(node, Mapping) else []
        hint = did_you_mean(bad, choices)
        msg = f"{text}: unknown field '{bad}'" + (f"; {hint}" if hint else "")
        fix = f"fields here: {', '.join(map(str, choices))}" if choices else None
        problems.append(Problem(tuple(parts[: depth + 1]), msg, fix=fix))
    if problems:
        raise SpecError(problems)


def refuse_targets(node: Any, path: tuple[str | int, ...] = ()) -> list[Problem]:
    """Configs never execute code: ``_target_``-style keys are refused wherever they appear."""
    found: list[Problem] = []
    items = (
        node.items()
        if isinstance(node, Mapping)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for k, v in items:
        if k in ("_target_", "_partial_", "_args_", "_component_"):
            found.append(
                Problem((*path, k), f"'{k}' is not allowed: nnspec configs never execute code")
            )
        found += refuse_targets(v, (*path, k))
    return found
