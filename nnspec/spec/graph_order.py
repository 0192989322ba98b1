"""Ordering and reachability of an expanded layer graph (pure, no torch).

Split from :mod:`nnspec.spec.expand`: once names are resolved, the nodes are sorted
topologically (a cycle is reported by name), unused inputs and branches are found, and the head
of each output is marked. Problems are appended to the caller's issue list, not raised.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from nnspec.spec.graph import Issue, Node
from nnspec.spec.layers import WeightLayer

if TYPE_CHECKING:
    from nnspec.spec.model import ModelSpec

__all__ = ["check_used", "find_cycle", "label", "mark_heads", "toposort"]


def toposort(issues: list[Issue], nodes: list[Node], inputs: Mapping[str, Any]) -> list[Node]:
    """Kahn's algorithm, keeping list order among ready nodes; a cycle is reported by name."""
    by_id = {n.id: n for n in nodes}
    done = {f"inputs.{name}" for name in inputs}
    ordered: list[Node] = []
    pending = list(nodes)
    while pending:
        ready = [n for n in pending if all(i in done for i in (*n.inputs, *n.refs))]
        if not ready:
            cycle = find_cycle(pending, by_id)
            text = " -> ".join(label(by_id[i]) for i in cycle)
            first = by_id[cycle[0]]
            issues.append(((*first.path, "inputs"), f"cycle in the layer graph: {text}", None))
            return ordered
        ordered += ready
        done |= {n.id for n in ready}
        pending = [n for n in pending if n.id not in done]
    return ordered


def find_cycle(pending: list[Node], by_id: Mapping[str, Node]) -> list[str]:
    blocked = {n.id for n in pending}
    start = pending[0].id
    path: list[str] = []
    cur = start
    while cur not in path:  # follow a blocked producer until a node repeats
        path.append(cur)
        node = by_id[cur]
        cur = next(i for i in (*node.inputs, *node.refs) if i in blocked)
    cycle = path[path.index(cur) :]
    cycle.reverse()  # producer -> consumer order reads as data flow
    order = {n.id: k for k, n in enumerate(pending)}
    start_at = min(range(len(cycle)), key=lambda k: order[cycle[k]])  # earliest in the list
    cycle = cycle[start_at:] + cycle[:start_at]
    return [*cycle, cycle[0]]


def label(node: Node) -> str:
    return node.layer.name or node.id


def check_used(
    issues: list[Issue],
    model_inputs: Mapping[str, Any] | None,
    nodes: list[Node],
    outputs: Mapping[str, str],
) -> None:
    """Report model inputs and node outputs that no output depends on."""
    used = set(outputs.values())
    for n in reversed(nodes):
        if n.id in used:
            used |= {*n.inputs, *n.refs}
    for name in model_inputs or ():
        if f"inputs.{name}" not in used:
            msg = f"model input '{name}' is never used; name it in a layer's inputs: [{name}]"
            issues.append((("inputs", name), msg, name))
    for n in nodes:
        if n.id not in used:
            msg = (
                f"the output of {label(n)} ({n.layer.kind}) is never used; "
                "feed it to a later layer (inputs: [...]) or list it in model.outputs"
            )
            issues.append((n.path, msg, n.layer.name))


def mark_heads(model: ModelSpec, nodes: list[Node], outputs: Mapping[str, str]) -> list[Node]:
    """The head of each output: the last top-level weight layer feeding it (INIT-9, OUT-5)."""
    by_id = {n.id: n for n in nodes}
    heads: set[str] = set()
    for out in outputs.values():
        cur = by_id.get(out)
        while cur is not None and cur.depth == 0 and not isinstance(cur.layer, WeightLayer):
            cur = by_id.get(cur.inputs[0]) if len(cur.inputs) == 1 else None
        if cur is not None and cur.depth == 0 and isinstance(cur.layer, WeightLayer):
            heads.add(cur.id)
    return [replace(n, head=True) if n.id in heads else n for n in nodes]
